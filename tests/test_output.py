"""Output formats: -p parsing, buffer display modes, and the fields that need no state."""
import os
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import corpus_capture, corpus_captures, corpus_path, need_capture, on_a_terminal
from scaptool import scap
from scaptool.query.format import FormatError, parse_format
from scaptool.query.render import ascii_text, hex_rows

ENV = dict(os.environ, TZ="UTC", LC_ALL="C")


@pytest.mark.parametrize("text, parts, star", [
    ("%evt.num", ((None, "evt.num"),), False),
    ("*%evt.num %proc.name", ((None, "evt.num"), " ", (None, "proc.name")), True),
    ("[%6proc.name][%2evt.type]", ("[", (6, "proc.name"), "][", (2, "evt.type"), "]"), False),
    ("%proc.aname[2] (%thread.tid)", ((None, "proc.aname[2]"), " (", (None, "thread.tid"), ")"),
     False),
    ("a\\tb", ("a\tb",), False),
])
def test_parse_format(text, parts, star):
    fmt = parse_format(text)
    assert fmt.parts == parts and fmt.show_missing == star


@pytest.mark.parametrize("text, message", [
    ("%evt.num %", "formatting cannot end with a %"),
    ("%evt.num %%", "formatting cannot end with a %"),
    ("%evt.num %foo.bar", "invalid formatting token foo.bar"),   # sysdig's words
    ("*%fd.ino", "invalid formatting token fd.ino"),
])
def test_format_errors(text, message):
    with pytest.raises(FormatError, match=message):
        parse_format(text)


def test_hex_rows_as_sysdig_prints_them():
    raw = b"-6\0http://www.google.com\0"
    assert hex_rows(raw, True) == (
        "\n\t0x0000: 2d36 0068 7474 703a 2f2f 7777 772e 676f  -6.http://www.go"
        "\n\t0x0010: 6f67 6c65 2e63 6f6d 00                 ogle.com.\n")
    assert hex_rows(raw, False).splitlines()[2] == "\t0x0010: 6f67 6c65 2e63 6f6d 00"


@pytest.mark.parametrize("raw, text", [
    (b"-6\0http://www.google.com\0", "-6http://www.google.com"),
    (b"a\r\nb\nc\rd\te", "a\nb\nc\nde"),
])
def test_ascii_text(raw, text):
    assert ascii_text(raw) == text


def _ascii_text_byte_by_byte(raw):
    """-A's rule, a byte at a time as sysdig applies it (the spec ascii_text must meet)."""
    out, previous = [], None
    for byte in raw:
        if byte == 0x0D:
            out.append("\n")
        elif byte == 0x0A:
            if previous is not None and previous != 0x0D:
                out.append("\n")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        previous = byte
    return "".join(out)


@settings(max_examples=2000)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"\t", b"\0", b"a", b" ", b"\x7f", b"\xff",
                                 b"~"]), max_size=12).map(b"".join) | st.binary(max_size=40))
def test_ascii_text_follows_the_rule_byte_by_byte(raw):
    assert ascii_text(raw) == _ascii_text_byte_by_byte(raw)


@pytest.mark.parametrize("path", corpus_captures())
def test_stateless_fields_match_sysdig(path):
    """evt.num, evt.rawtime, evt.cpu, thread.tid, evt.dir, evt.type, evt.failed, evt.res and
    evt.latency, against the same columns of sysdig's -p output."""
    path = need_capture(path)
    fmt = "*%evt.num %evt.rawtime %evt.cpu %thread.tid %evt.dir %evt.type %evt.failed %evt.res"
    r = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(path), "-p", fmt],
                       capture_output=True, env=ENV)
    assert r.returncode == 0, r.stderr
    expected = []
    for line in (corpus_path() / "expected" / path.stem / "fields_rich.txt").read_bytes() \
            .splitlines():
        f = line.split(b" ")
        # evt.num rawtime cpu, then the fields up to thread.tid may hold spaces: find the dir
        at = next((i for i in range(4, len(f)) if f[i] in (b">", b"<") and
                   f[i + 2] in (b"true", b"false")), None)
        if at is None:
            continue
        expected.append(b" ".join(f[:3] + [f[at - 2]] + f[at:at + 4]))
    got = r.stdout.splitlines()
    assert len(got) == len((corpus_path() / "expected" / path.stem / "fields_rich.txt")
                           .read_bytes().splitlines()) or "cut" in \
        (corpus_path() / "expected" / path.stem / "README.md").read_text()
    assert set(expected) <= set(got)


@pytest.mark.parametrize("mode", ["a", "r", "d", "D"])
@pytest.mark.parametrize("name", ["libs-sample", "falco-run-as-user-0-container"])
def test_time_modes_match_sysdig(mode, name):
    from conftest import require_tool
    sysdig = require_tool("sysdig")
    path = need_capture(corpus_path() / "captures" / f"{name}.scap")
    ours = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(path), "-t", mode],
                          capture_output=True, env=ENV)
    theirs = subprocess.run([sysdig, "-r", str(path), "-t", mode], capture_output=True, env=ENV)
    assert ours.returncode == 0 and ours.stdout == theirs.stdout


@pytest.mark.parametrize("fmt", [
    "*%evt.num:%evt.arg.fd:%evt.arg[1]:%evt.arg.name:%evt.rawarg.res",
    "%proc.name:%fd.name",
    "*%evt.num %evt.category %evt.is_io_read %evt.is_io_write %fd.type %fd.l4proto",
])
def test_p_formats_match_sysdig(fmt):
    from conftest import require_tool
    sysdig = require_tool("sysdig")
    path = need_capture(corpus_path() / "captures" / "libs-curl-google.scap")
    ours = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(path), "-p", fmt],
                          capture_output=True, env=ENV)
    theirs = subprocess.run([sysdig, "-r", str(path), "-p", fmt], capture_output=True, env=ENV)
    assert ours.returncode == 0 and ours.stdout == theirs.stdout


JSON_TIMES = ("*%evt.num %evt.time %evt.time.s %evt.datetime %evt.datetime.s %evt.time.iso8601 "
              "%evt.rawtime %evt.rawtime.s %evt.rawtime.ns %evt.reltime %evt.reltime.s "
              "%evt.reltime.ns %evt.latency %evt.latency.s %evt.latency.ns %evt.latency.human "
              "%evt.deltatime %evt.deltatime.s %evt.deltatime.ns %evt.outputtime "
              "%thread.exectime %user.loginuid")


@pytest.mark.parametrize("name", ["libs-sample", "sysdig-examples-nginx", "falco-cat-write"])
def test_json_time_fields_and_loginuid_match_sysdig(name):
    """-j prints time fields as sysdig's JSON does (raw numbers; 0 for the delta times and
    thread.exectime), and user.loginuid as a signed 32-bit number (-1 when unset)."""
    from conftest import require_tool
    sysdig = require_tool("sysdig")
    path = need_capture(corpus_path() / "captures" / f"{name}.scap")
    args = ["-r", str(path), "-j", "-p", JSON_TIMES]
    ours = subprocess.run([sys.executable, "-m", "scaptool", *args], capture_output=True,
                          env=ENV)
    theirs = subprocess.run([sysdig, *args], capture_output=True, env=ENV)
    assert ours.returncode == 0 and ours.stdout == theirs.stdout
    assert b'"user.loginuid":-' in theirs.stdout


@pytest.mark.parametrize("count", [1, 10, 50, 500])
@pytest.mark.parametrize("name", ["instruqt-ticket-generator-b841f454", "libs-sample"])
def test_n_counts_the_events_sysdig_reads(name, count):
    """-n N: the first N events sysdig reads. The container events that lead the capture
    (15 in instruqt-...) are numbered but consumed while the file is opened: not counted."""
    from conftest import require_tool
    sysdig = require_tool("sysdig")
    path = need_capture(corpus_path() / "captures" / f"{name}.scap")
    args = ["-r", str(path), "-n", str(count), "-p", "*%evt.num"]
    ours = subprocess.run([sys.executable, "-m", "scaptool", *args], capture_output=True,
                          env=ENV)
    theirs = subprocess.run([sysdig, *args], capture_output=True, env=ENV)
    assert ours.returncode == 0 and ours.stdout == theirs.stdout


@pytest.mark.parametrize("options", [[], ["-pc"], ["-j"], ["-S", "-n", "140"], ["-q"],
                                     ["-p", "%evt.num"], ["evt.type=write"]],
                         ids=["default", "pc", "json", "summary", "quiet", "own-format",
                              "filter"])
def test_terminal_output_as_sysdig(options):
    """On a terminal sysdig colours the default line (name, pid and type; the thread id
    follows the pid), -j takes that line's fields, and the colours are reset once the events
    are printed, except after a format of the user's own."""
    from conftest import require_tool
    sysdig = require_tool("sysdig")
    path = need_capture(corpus_path() / "captures" / "falco-cat-write.scap")
    args = ["-r", str(path), *options]
    ours = on_a_terminal([sys.executable, "-m", "scaptool", *args])
    assert ours == on_a_terminal([sysdig, *args])
    if not options:
        assert b"\x1b[01;32mcat\x1b[00m (\x1b[01;36m20072\x1b[00m.20072)" in ours


@pytest.mark.parametrize("options", [["-n", "140"], ["-n", "7"], ["evt.type=procinfo"],
                                     ["evt.dir=<"], ["evt.type=write"]])
def test_summary_counts_what_n_and_the_filter_leave(options):
    """-S counts the events that -n and the filter leave, internal ones included."""
    from conftest import require_tool
    sysdig = require_tool("sysdig")
    path = need_capture(corpus_path() / "captures" / "falco-cat-write.scap")
    args = ["-r", str(path), "-S", "-q", *options]
    ours = subprocess.run([sys.executable, "-m", "scaptool", *args], capture_output=True,
                          env=ENV)
    theirs = subprocess.run([sysdig, *args], capture_output=True, env=ENV)
    assert ours.returncode == 0 and ours.stdout == theirs.stdout


@pytest.mark.parametrize("words", [["topfiles_errors"], ["lsof"], ["fdcount_by", "proc.name"],
                                   ["echo_fds"], ["spy_logs"], ["iobytes"], ["stdout"],
                                   ["proc_exec_time"], ["spy_users"], ["list_login_shells"]],
                         ids=lambda w: w[0])
def test_chisels_reset_the_terminal_where_sysdig_does(words):
    """On a terminal sysdig resets the colours once the events are read: before a table,
    after what an event-by-event chisel printed and before the reset that some chisels print
    at the end. (The first bytes and the escapes at the end: rows tied in a table come in
    sysdig's hash order.)"""
    from conftest import require_tool
    sysdig = require_tool("sysdig")
    path = need_capture(corpus_path() / "captures" / "sysdig-examples-example4-1.scap")
    args = ["-r", str(path), "-c", *words]
    ours = on_a_terminal([sys.executable, "-m", "scaptool", *args])
    theirs = on_a_terminal([sysdig, *args])
    ending = re.compile(rb"(?:\x1b\[[0-9;]*m|\r\n)*\Z")
    assert ours[:24] == theirs[:24]
    assert ending.search(ours).group(0) == ending.search(theirs).group(0)


def test_outputs_are_registered_by_name():
    """query.outputs: the ways the command line writes events, by name, making the lines
    query.format makes (the command line asks here)."""
    import numpy as np

    from scaptool.query.events import EventData
    from scaptool.query.format import (CONTAINER_FORMAT, DEFAULT_FORMAT, TERMINAL_FORMAT,
                                       format_lines, json_lines)
    from scaptool.query.outputs import OUTPUTS, output_for
    assert set(OUTPUTS) == {"default", "container", "format", "json"}
    assert output_for() is OUTPUTS["default"] and output_for("c") is OUTPUTS["container"]
    assert output_for("%evt.num") is OUTPUTS["format"] and output_for(None, True) is \
        OUTPUTS["json"]
    data = EventData(scap.open(corpus_capture("falco-cat-write")))
    rows = np.flatnonzero(data.visible)
    assert OUTPUTS["default"].lines(data, rows) == format_lines(data, DEFAULT_FORMAT, rows)
    assert OUTPUTS["default"].lines(data, rows, terminal=True) == \
        format_lines(data, TERMINAL_FORMAT, rows)
    assert OUTPUTS["container"].lines(data, rows) == format_lines(data, CONTAINER_FORMAT, rows)
    assert OUTPUTS["json"].lines(data, rows, "c") == \
        json_lines(data, CONTAINER_FORMAT, rows, data.bytebuf_limit)
    assert OUTPUTS["format"].lines(data, rows, "%evt.num") == \
        format_lines(data, "%evt.num", rows)
