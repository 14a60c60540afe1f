"""What scaptool writes, sysdig reads: each corpus capture rewritten (any version in, current
version out) prints in sysdig 0.29.3 exactly as the original does."""
import os
import re
import subprocess

import numpy as np
import pytest

from scaptool import scap
from conftest import corpus_captures, corpus_path, need_capture, require_tool

ENV = dict(os.environ, TZ="UTC", LC_ALL="C")


def _small(params, limit=300_000):
    """The gzip variant runs on the small captures only, to keep the suite quick."""
    return [p for p in params if p.values[0] is None or p.values[0].stat().st_size <= limit]


@pytest.mark.parametrize("path", corpus_captures())
def test_sysdig_reads_our_rewrite(path, tmp_path):
    check_rewrite(path, False, tmp_path)


@pytest.mark.parametrize("path", _small(corpus_captures()))
def test_sysdig_reads_our_gzip_rewrite(path, tmp_path):
    check_rewrite(path, True, tmp_path)


def check_rewrite(path, compress, tmp_path):
    path = need_capture(path)
    sysdig = require_tool("sysdig")
    out = tmp_path / "rewritten.scap"
    scap.write_capture(out, scap.open(path), compress=compress)
    assert (out.read_bytes()[:2] == b"\x1f\x8b") == compress
    r = subprocess.run([sysdig, "-r", str(out)], capture_output=True, env=ENV)
    assert r.returncode == 0 and r.stderr == b""
    expected_dir = corpus_path() / "expected" / path.stem
    readme = (expected_dir / "README.md").read_text()
    got = r.stdout
    m = re.search(r"- default\.txt: .*?\(cut to the first (\d+)\)", readme)
    if m:
        got = b"".join(got.splitlines(True)[:int(m.group(1))])
    assert got == (expected_dir / "default.txt").read_bytes()


@pytest.mark.parametrize("name, event", [
    ("libs-curl-google", "read"),             # its fds were opened by events left out
    ("sysflow-tcp-client-server", "connect"),
    ("falco-cat-write", "execve"),            # the process list must still resolve
])
def test_selected_events_keep_their_context(name, event, tmp_path):
    """Writing some events keeps the state changes around them as state-only events: sysdig
    shows exactly the selected events, rendered as in the original (names resolved)."""
    sysdig = require_tool("sysdig")
    path = need_capture(corpus_path() / "captures" / f"{name}.scap")
    cap = scap.open(path)
    types = scap.eventtable.sysdig_0293().ids_named(event)
    out = tmp_path / "selected.scap"
    scap.write_capture(out, cap, rows=np.isin(cap.headers.type, types))
    r = subprocess.run([sysdig, "-r", str(out)], capture_output=True, env=ENV)
    assert r.returncode == 0 and r.stderr == b""
    expected = (corpus_path() / "expected" / name / "default.txt").read_bytes().splitlines()
    numbers = set(int(n) for n in cap.event_numbers[np.isin(cap.headers.type, types)] if n)
    expected = [line.split(b" ", 1)[1] for line in expected if int(line.split(b" ")[0])
                in numbers]
    got = [line.split(b" ", 1)[1] for line in r.stdout.splitlines()]
    assert expected and got == expected


def test_cli_write_with_filter_shows_matching_events_only(tmp_path):
    """scaptool -r IN -w OUT FILTER: sysdig reads OUT and shows exactly the matching events,
    rendered as in the original."""
    import sys
    sysdig = require_tool("sysdig")
    src = need_capture(corpus_path() / "captures" / "sysflow-tcp-client-server.scap")
    out = tmp_path / "matching.scap"
    r = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(src), "-w", str(out),
                        "fd.sport=8080 or evt.type=connect"], capture_output=True, env=ENV)
    assert r.returncode == 0, r.stderr
    ours = subprocess.run([sysdig, "-r", str(out)], capture_output=True, env=ENV)
    theirs = subprocess.run([sysdig, "-r", str(src), "fd.sport=8080 or evt.type=connect"],
                            capture_output=True, env=ENV)
    assert ours.returncode == 0 and theirs.stdout
    strip = lambda text: [line.split(b" ", 1)[1] for line in text.splitlines()]  # noqa: E731
    assert strip(ours.stdout) == strip(theirs.stdout)
