"""The command line: sysdig's invocations, our subcommands, one-line errors without tracebacks."""
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import corpus_captures, corpus_path, need_capture

ENV = dict(os.environ, TZ="UTC", LC_ALL="C")


def scaptool(*args):
    return subprocess.run([sys.executable, "-m", "scaptool", *map(str, args)],
                          capture_output=True, env=ENV)


def cut(text, kind, readme):
    """The expected outputs were cut to their first N lines for some captures."""
    m = re.search(rf"- {kind}\.txt: .*?\(cut to the first (\d+)\)", readme)
    return b"".join(text.splitlines(True)[:int(m.group(1))]) if m else text


@pytest.mark.parametrize("path", corpus_captures())
def test_summary_is_sysdigs(path):
    path = need_capture(path)
    r = scaptool("-r", path, "-S", "-q")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (corpus_path() / "expected" / path.stem / "summary.txt").read_bytes()


def test_info_json(tmp_path):
    path = corpus_path() / "captures" / "libs-curl-google.scap"
    r = scaptool("info", path, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["format_version"] == "1.0" and d["compressed"] is True
    assert d["events"] == 1536
    assert d["blocks"]["PL_V5"] == 1 and d["blocks"]["FDL"] == 54
    assert d["machine"]["hostname"] == "ip-10-0-0-79"
    assert d["threads"] == 54 and d["users"] == 31


def test_info_text_names_what_matters():
    r = scaptool("info", corpus_path() / "captures" / "libs-sample.scap")
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    for word in ("format", "machine", "blocks", "events", "first", "last", "threads", "fds",
                 "users"):
        assert re.search(rf"^{word}\s", text, re.M), word
    assert "EV_V2" in text and "PL_V9" in text


@pytest.mark.parametrize("args, message", [
    (["-r", "/nonexistent/trace.scap", "-S", "-q"], "/nonexistent/trace.scap: no such file"),
    (["info", "/nonexistent/trace.scap"], "no such file"),
    (["-r", "{here}", "-S", "-q"], "not a scap capture"),
    (["-r", "{fixture}", "-p", "%evt.num %foo.bar"], "invalid formatting token foo.bar"),
    (["-r", "{fixture}", "-j", "-p", "%fd.ino"], "invalid formatting token fd.ino"),
    (["-r", "{fixture}", "fd.ino=3"], "unknown field 'fd.ino' at position 0"),
])
def test_bad_input_one_line_no_traceback(args, message):
    fixture = str(pathlib.Path(__file__).resolve().parent.parent / "fixtures" /
                  "php-database-error.scap")
    args = [a.replace("{here}", __file__).replace("{fixture}", fixture) for a in args]
    r = scaptool(*args)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert message in err


def test_truncated_capture_keeps_events_says_where_and_fails(tmp_path):
    data = (corpus_path() / "captures" / "libs-sample.scap").read_bytes()
    cut_file = tmp_path / "cut.scap"
    cut_file.write_bytes(data[: len(data) - 1000])
    r = scaptool("-r", cut_file, "-S", "-q")
    assert r.returncode == 1   # scripts can tell the capture was not read to its end
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "truncated" in err and str(cut_file) in err
    assert "Traceback" not in err
    assert r.stdout.startswith(b"----------------------\nEvent")


def test_write_then_read_back(tmp_path):
    src = corpus_path() / "captures" / "libs-curl-google.scap"
    out = tmp_path / "copy.scap"
    r = scaptool("-r", src, "-w", out)
    assert r.returncode == 0, r.stderr
    r2 = scaptool("info", out, "--json")
    d = json.loads(r2.stdout)
    assert d["format_version"] == "1.2" and d["events"] == 1536
    assert d["blocks"]["PL_V9"] == 1 and d["blocks"]["IL_V2"] == 1
    assert not list(tmp_path.glob(".scaptool-*")), "temporary file left behind"


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "missing-dir" / "x.scap"
    r = scaptool("-r", corpus_path() / "captures" / "libs-sample.scap", "-w", out)
    assert r.returncode != 0 and "Traceback" not in r.stderr.decode()
    assert len(r.stderr.decode().strip().splitlines()) == 1


def test_list_events_is_sysdigs():
    from conftest import require_tool
    sysdig = require_tool("sysdig")
    ours = scaptool("-L")
    theirs = subprocess.run([sysdig, "-L"], capture_output=True, env=ENV)
    assert ours.returncode == 0 and ours.stdout == theirs.stdout


def test_list_fields_names_types_and_descriptions():
    r = scaptool("-l")
    assert r.returncode == 0
    text = r.stdout.decode()
    assert "Field Class: proc" in text and "Field Class: fd" in text
    assert re.search(r"^evt\.num\s+\(UINT64\) \w", text, re.M)
    assert re.search(r"^evt\.rawarg\[NAME\]", text, re.M) or "evt.rawarg" in text


def test_summary_path_stays_light():
    """-S -q must not load polars, pyarrow, construct or the filter grammar: on big captures
    their import alone would make it slower than sysdig (a regression test on what is loaded,
    not on time)."""
    r = _command_then(["-S", "-q"],
                      "heavy = [m for m in ('polars', 'pyarrow', 'construct', 'pyparsing') "
                      "if m in sys.modules]\n"
                      "print(' '.join(heavy))\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == b""


def _command_then(args, code):
    """Run scaptool ARGS on the fixture in a fresh interpreter (output discarded), then `code`
    in the same one (to look at what the command loaded)."""
    command = ("import sys, io, contextlib\n"
               "from scaptool.cli.main import cli\n"
               "with contextlib.redirect_stdout(io.StringIO()):\n"
               f"    cli.main(args=['-r', sys.argv[1], *{args!r}], standalone_mode=False)\n")
    fixture = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / \
        "php-database-error.scap"
    return subprocess.run([sys.executable, "-c", command + code, str(fixture)],
                          capture_output=True, env=ENV)


@pytest.mark.parametrize("args", [[], ["-j"], ["-X"], ["evt.type=write"]], ids=" ".join)
def test_printing_does_not_load_pyarrow_compute(args):
    """Columns reach Polars through the Arrow C interface: Polars' own pyarrow glue imports
    pyarrow.compute, 0.15-0.3 s of every cold start (a regression test on what is loaded)."""
    r = _command_then(args, "print('pyarrow.compute' in sys.modules)\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == b"False"


def test_commands_load_polars_without_asyncio():
    """A filter run loads Polars but not asyncio (cli.polars_import); an `import asyncio`
    afterwards gets the real package, which works."""
    r = _command_then(["evt.type=write"],
                      "assert 'polars' in sys.modules and 'asyncio' not in sys.modules, "
                      "'loaded'\n"
                      "import asyncio\n"
                      "async def two():\n"
                      "    return 2\n"
                      "print(asyncio.run(two()))\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"2\n"


def test_asyncio_stand_ins_give_way_to_the_real_package():
    """Asked for anything beyond iscoroutinefunction while in place, the stand-ins load the
    real asyncio and leave sys.modules to it. (typing_extensions.deprecated, which Polars
    uses when it is installed, asks for asyncio.coroutines._is_coroutine to mark a
    deprecated coroutine function: done here by hand, since typing_extensions is not one of
    our dependencies.)"""
    code = ("import sys, inspect\n"
            "from scaptool.cli import polars_import as p\n"
            "co = p._AsyncioStandIn('asyncio.coroutines')\n"
            "co.iscoroutinefunction = inspect.iscoroutinefunction\n"
            "pkg = p._AsyncioStandIn('asyncio')\n"
            "pkg.coroutines = co\n"
            "sys.modules.update({'asyncio': pkg, 'asyncio.coroutines': co})\n"
            "async def f():\n"
            "    pass\n"
            "import asyncio.coroutines\n"
            "assert asyncio.coroutines.iscoroutinefunction(f)\n"
            "f._is_coroutine = asyncio.coroutines._is_coroutine\n"
            "import asyncio\n"
            "assert not isinstance(asyncio, p._AsyncioStandIn)\n"
            "assert not isinstance(sys.modules['asyncio.coroutines'], p._AsyncioStandIn)\n"
            "print(asyncio.iscoroutinefunction(f))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"True\n"


def test_write_to_standard_output_and_read_from_standard_input(tmp_path):
    """-w - writes the capture to standard output, as -w FILE would write the file, and
    -r - reads one from standard input."""
    source = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / \
        "php-database-error-live.scap"
    command = [sys.executable, "-m", "scaptool", "-r", str(source)]
    env = dict(os.environ, TZ="UTC", LC_ALL="C")
    subprocess.run(command + ["-w", str(tmp_path / "file.scap"), "proc.name=php"], check=True,
                   env=env)
    piped = subprocess.run(command + ["-w", "-", "proc.name=php"], capture_output=True,
                           check=True, env=env).stdout
    assert piped == (tmp_path / "file.scap").read_bytes()
    back = subprocess.run([sys.executable, "-m", "scaptool", "-r", "-"], input=piped,
                          capture_output=True, check=True, env=env).stdout
    direct = subprocess.run([sys.executable, "-m", "scaptool", "-r",
                             str(tmp_path / "file.scap")], capture_output=True, check=True,
                            env=env).stdout
    assert back == direct and b" php (" in back
