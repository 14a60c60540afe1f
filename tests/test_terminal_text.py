"""Untrusted text on a terminal: a process name, path and buffer holding escape sequences (a
window title, clear screen, colours, a bell) print with every control character a terminal
acts on as '.', in every output: the default line, -p, -j, chisels' lines and tables,
explain. Elsewhere the output is sysdig's, byte for byte: sysdig 0.29.3 already dots paths
and buffers, and prints a process name as it is (ESC included), the one thing we change."""
import json
import re
import subprocess
import sys

import pytest

import hostile
from conftest import on_a_terminal, require_tool

SCAPTOOL = [sys.executable, "-m", "scaptool"]
ENV = {"TZ": "UTC", "LC_ALL": "C"}
# the characters a terminal acts on (chisels.run.ACTIVE), and the sequences the capture holds
ACTIVE = re.compile(rb"[\x05\x07\x08\x0b-\x0f\x1b]|\xc2[\x80-\x9f]")
CAPTURE_ESCAPES = (b"\x1b]0;owned", b"\x1b[2J", b"\x1b[31m", b"\x07")


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return str(hostile.control_character_names(tmp_path_factory.mktemp("ctl") / "ctl.scap"))


def ours(*args):
    done = subprocess.run([*SCAPTOOL, *args], capture_output=True, env=_env())
    assert done.returncode == 0, done.stderr
    return done.stdout


def theirs(*args):
    done = subprocess.run([require_tool("sysdig"), *args], capture_output=True, env=_env())
    return done.stdout


def _env():
    import os
    return dict(os.environ, **ENV)


def test_the_capture_does_hold_escapes(capture):
    """sysdig prints the process name's ESC as it is: the reason for all this."""
    assert b"ph\x1b[2Jp" in theirs("-r", capture)


@pytest.mark.parametrize("args", [[], ["-p", "%proc.name %proc.cmdline %fd.name %evt.args"],
                                  ["-p", "%evt.buffer %fd.filename %proc.exeline"],
                                  ["-A"], ["-X"]], ids=["default", "names", "buffers", "A", "X"])
def test_lines_are_sysdigs_with_active_controls_dotted(capture, args):
    mine, sysdigs = ours("-r", capture, *args), theirs("-r", capture, *args)
    assert not ACTIVE.search(mine), mine
    assert mine == ACTIVE.sub(b".", sysdigs)


def test_json_escapes_them_as_sysdig_does(capture):
    mine, sysdigs = ours("-r", capture, "-j"), theirs("-r", capture, "-j")
    assert mine == sysdigs
    assert b"\\u001b" in mine and not ACTIVE.search(mine)
    assert json.loads(mine.splitlines()[0])["proc.name"] == "ph\x1b[2Jp"


@pytest.mark.parametrize("chisel", ["echo_fds", "topprocs_file", "lsof", "spy_users",
                                    "fdbytes_by fd.name", "list_login_shells"])
def test_chisels_write_no_active_control(capture, chisel):
    out = ours("-r", capture, "-c", *chisel.split())
    assert not any(e in out for e in CAPTURE_ESCAPES), out


@pytest.mark.parametrize("chisel", ["echo_fds", "stdout", "topprocs_file"])
def test_chisels_on_a_terminal_keep_only_their_own_colours(capture, chisel):
    """On a terminal chisels colour their output; the capture's sequences are dotted, even
    in raw output (the stdout chisel keeps a program's colour sequences, nothing else)."""
    out = on_a_terminal([*SCAPTOOL, "-r", capture, "-c", chisel])
    for sequence in re.findall(rb"\x1b[^\[]|\x1b\[[0-9;]*[^0-9;m]", out):
        pytest.fail(f"{sequence!r} in {out!r}")
    assert b"\x1b]0;owned" not in out and b"\x07" not in out


def test_explain_writes_no_active_control(capture):
    out = ours("explain", capture, "evt.type=write")
    assert b"ph.[2Jp" in out and not ACTIVE.search(out), out


def test_error_messages_are_one_line_and_inert(capture):
    """A filter or format holding line breaks and escapes is quoted back escaped."""
    done = subprocess.run([*SCAPTOOL, "-r", capture, "-p", "%proc.naMe[\n\x1b[2J]"],
                          capture_output=True)
    assert done.returncode == 2
    assert done.stderr.count(b"\n") == 1 and b"\x1b" not in done.stderr, done.stderr
