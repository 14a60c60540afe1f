"""Shared test helpers.

Tests that need the real-capture corpus or Debian's sysdig skip with a reason on a developer's
machine, and fail in CI, where SCAPTOOL_REQUIRE_CORPUS=1 and SCAPTOOL_REQUIRE_TOOLS=1 are set.
"""
import os
import pathlib
import shutil
import time

import pytest


def _missing(what, env):
    if os.environ.get(env) == "1":
        pytest.fail(f"{what} is required here ({env}=1) but missing")
    pytest.skip(f"{what} not available")


def require_tool(name):
    """Path of an installed tool, or skip (fail when SCAPTOOL_REQUIRE_TOOLS=1)."""
    path = shutil.which(name)
    if path is None:
        _missing(f"the {name} binary", "SCAPTOOL_REQUIRE_TOOLS")
    return path


def corpus_path():
    """The real-capture corpus directory, or skip (fail when SCAPTOOL_REQUIRE_CORPUS=1)."""
    value = os.environ.get("SCAPTOOL_CORPUS")
    if not value:
        _missing("the real-capture corpus (set SCAPTOOL_CORPUS)", "SCAPTOOL_REQUIRE_CORPUS")
    path = pathlib.Path(value)
    if not (path / "captures").is_dir():
        _missing(f"the corpus at {path} (no captures/ folder)", "SCAPTOOL_REQUIRE_CORPUS")
    return path


@pytest.fixture
def corpus_dir():
    return corpus_path()


def corpus_captures():
    """pytest params, one per corpus capture; without a corpus, one param that skips (or fails
    in CI) when the test calls need_capture() on it, so that no test vanishes silently."""
    value = os.environ.get("SCAPTOOL_CORPUS")
    if not value or not (pathlib.Path(value) / "captures").is_dir():
        return [pytest.param(None, id="no-corpus")]
    return [pytest.param(p, id=p.stem)
            for p in sorted((pathlib.Path(value) / "captures").glob("*.scap"))]


def corpus_capture(name):
    """The corpus capture called `name` (without .scap), or skip / fail as corpus_path()."""
    return need_capture(corpus_path() / "captures" / f"{name}.scap")


@pytest.fixture(scope="module")
def utc():
    """In-process runs read the local zone: make it UTC for the module using this."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def need_capture(capture):
    if capture is None:
        corpus_path()
    return capture


def require_live_capture():
    """Skip (fail when SCAPTOOL_REQUIRE_TOOLS=1) unless a live capture can run here: root, a
    kernel with BTF, and the tools that build the libbpf helper (clang, bpftool, libbpf-dev)."""
    from scaptool.scap import live
    problems = live.run_problems() + live.build_problems()
    if problems:
        _missing("live capture (needs " + ", ".join(problems) + ")", "SCAPTOOL_REQUIRE_TOOLS")


# comparisons with sysdig run both tools in UTC and the C locale
COMPARE_ENV = dict(os.environ, TZ="UTC", LC_ALL="C")


def sysdig_output(*args):
    """What `sysdig ARGS` prints (it must succeed), as text."""
    import subprocess
    r = subprocess.run([require_tool("sysdig"), *map(str, args)], capture_output=True,
                       env=COMPARE_ENV, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode("utf-8", "replace")


def scaptool_output(*args):
    """What `scaptool ARGS` prints (it must succeed), run in-process by click's test runner so
    that many runs stay fast."""
    from click.testing import CliRunner

    from scaptool.cli.main import cli
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def on_a_terminal(command):
    """What a command prints on a pseudo-terminal (util-linux script), NO_COLOR unset."""
    import subprocess
    env = {k: v for k, v in COMPARE_ENV.items() if k != "NO_COLOR"}
    r = subprocess.run(["script", "-qec", " ".join(command), "/dev/null"], capture_output=True,
                       env=env, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout
