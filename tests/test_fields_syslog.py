"""syslog.* fields and the evt.info of writes to /dev/log (query.syslog, query.fields_syslog).

No capture of the corpus writes to syslog, so the capture checked against sysdig 0.29.3 is
written here: a `logger` process connects to /dev/log and sends one message per facility
(0-23) and severity (0-7), then edge cases of the PRI, every kind of write, writes through a
dup, through files whose name contains /dev/log, and through fds from the fd list; writes that
are not syslog stand between them. The expected values of the edge cases are what sysdig
printed for them.
"""
import calendar
import os
import re
import subprocess
import sys

import pytest

from scaptool import query
from scaptool import scap
from conftest import corpus_captures, need_capture, require_tool
from scaptool.query import syslog
from scaptool.scap import blocktypes as bt
from scaptool.scap.codecs import AT_FDCWD, PPM_AF_UNIX, SockAddr, SockTuple, codec_for
from scaptool.scap.eventtable import sysdig_0293
from scaptool.scap.schema import FdType, body_schema
from scaptool.scap.writer import Event, Writer

ENV = dict(os.environ, TZ="UTC", LC_ALL="C")

# written out here rather than taken from query.syslog, so that a slip there shows
FACILITY_NAMES = ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
                  "clock", "authpriv", "ftp", "ntp", "logaudit", "logalert", "cron", "local0",
                  "local1", "local2", "local3", "local4", "local5", "local6", "local7"]
SEVERITY_NAMES = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"]


# -- decoding one buffer --------------------------------------------------------------------

@pytest.mark.parametrize("facility", range(24))
def test_every_facility_and_severity(facility):
    for severity in range(8):
        pri = facility * 8 + severity
        m = syslog.decode(b"<%d>Nov 24 10:15:02 cron[42]: job done" % pri)
        assert (m.priority, m.facility, m.severity) == (pri, facility, severity)
        assert (m.facility_name, m.severity_name) == \
            (FACILITY_NAMES[facility], SEVERITY_NAMES[severity])
        assert m.text == "Nov 24 10:15:02 cron[42]: job done"
        assert m.info == f"syslog sev={SEVERITY_NAMES[severity]} " \
                         "msg=Nov 24 10:15:02 cron[42]: job done"


def test_names_out_of_range_are_the_text_na():
    assert syslog.facility_name(24) == syslog.facility_name(4294967295) == "<NA>"
    assert syslog.severity_name(8) == "<NA>"
    assert [syslog.facility_name(f) for f in range(24)] == FACILITY_NAMES


@pytest.mark.parametrize("data", [
    b"", b"<", b"<>", b"<>x",
    b"<13",               # shorter than the PRI plus '<' and '>'
    b"hello",             # "ello" is not a number
    b"<-1>neg", b"<1 3>sp", b"<+5>plus",
    b"<4294967295>m1",    # wraps to -1, the decoder's "nothing" mark
])
def test_not_syslog(data):
    assert syslog.decode(data) is None


# (data, facility, severity, message): what sysdig 0.29.3 printed for these writes
@pytest.mark.parametrize("data, facility, severity, text", [
    (b"<13>", 1, 5, ""),
    (b"X13>abc", 1, 5, "abc"),                       # the first byte is never looked at
    (b"<0013>lead", 1, 5, "lead"),
    (b"<192>fac24", 24, 0, "fac24"),
    (b"<255>fac31", 31, 7, "fac31"),
    (b"<13>with\0nul after", 1, 5, "with"),          # printed as a C string
    (b"<13\0rest", 1, 5, "rest"),                    # a NUL also ends the PRI
    (b"<123456789012345>fifteen", 4039228399, 1, "fifteen"),   # int32 wrap
    (b"<1234567890123456>sixteen", 4039228399, 1, ">sixteen"),  # 15 digits at most
    (b"<99999999999>wrap", 151969023, 7, "wrap"),
    (b"<4294967294>m2", 4294967295, 6, "m2"),        # -2: arithmetic shift, as uint32
    (b"<2147483648>big", 4026531840, 0, "big"),
    (b"<14>trailing newline\n", 1, 6, "trailing newline\n"),
    (b"<14>caf\xc3\xa9", 1, 6, "caf\u00e9"),
])
def test_edge_cases_as_sysdig_decodes_them(data, facility, severity, text):
    m = syslog.decode(data)
    assert (m.facility, m.severity, m.text) == (facility, severity, text)


def test_payload_keeps_what_follows_a_nul():
    assert syslog.decode(b"<13>stream nul\0").payload == b"stream nul\0"


# -- a capture with writes to syslog ---------------------------------------------------------

T0 = calendar.timegm((2026, 11, 24, 10, 15, 2)) * 10**9
LOGGER, CRON = 1000, 3000
TABLE = sysdig_0293()
EDGE_CASES = [
    b"", b"<", b"<>", b"<>x", b"<13", b"<13>", b"<13>x", b"X13>abc", b"hello", b"<0013>lead",
    b"<192>fac24", b"<255>fac31", b"<-1>neg", b"<1 3>sp", b"<13>with\0nul after",
    b"<13>stream nul\0", b"<13>line\nbreak\ttab\x01ctl\x7fdel", b"<123456789012345>fifteen",
    b"<1234567890123456>sixteen", b"<99999999999>wrap", b"<4294967295>m1", b"<4294967294>m2",
    b"<2147483648>big", b"<13>" + b"x" * 200, b"<13\0rest", b"<14>ends with space ",
    b"<14>trailing newline\n",
]
WRITE_KINDS = ("write", "send", "sendmsg", "writev", "pwrite", "pwritev")


def _event_id(name, direction):
    ids = [i for i in TABLE.ids_named(name)
           if TABLE[i].direction == direction and not TABLE[i].old_version]
    assert len(ids) == 1, (name, direction, ids)
    return ids[0]


class _Story:
    """Events one microsecond apart; labels name the rows tests look at."""

    def __init__(self):
        self.events, self.labels = [], {}

    def event(self, tid, name, direction, /, **params):
        info = TABLE[_event_id(name, direction)]
        raw = [codec_for(p.type).encode(params[p.name]) for p in info.params]
        self.events.append(Event(T0 + 1000 * (len(self.events) + 1), tid, 0, info.id, raw))

    def write(self, tid, fd, data, kind="sendto", res=None, label=None):
        extra = {"sendto": dict(tuple=None), "sendmsg": dict(tuple=None),
                 "pwrite": dict(pos=0), "pwritev": dict(pos=0)}.get(kind, {})
        self.event(tid, kind, ">", fd=fd, size=len(data), **extra)
        self.event(tid, kind, "<", res=len(data) if res is None else res, data=data)
        if label is not None:
            self.labels[label] = len(self.events) - 1

    def open(self, tid, fd, path):
        self.event(tid, "openat", ">", dirfd=AT_FDCWD, name=path, flags=2, mode=0)
        self.event(tid, "openat", "<", fd=fd, dirfd=AT_FDCWD, name=path, flags=2, mode=0, dev=0)


def _story():
    s = _Story()
    s.event(LOGGER, "socket", ">", domain=PPM_AF_UNIX, type=2, proto=0)
    s.event(LOGGER, "socket", "<", fd=3)
    s.event(LOGGER, "connect", ">", fd=3, addr=SockAddr(PPM_AF_UNIX, data=b"/dev/log\0"))
    s.event(LOGGER, "connect", "<", res=0, tuple=SockTuple(
        PPM_AF_UNIX, src=0xFFFF88800A1B2C00, dst=0xFFFF88800A1B3D00, data=b"/dev/log\0"))
    for facility in range(24):
        for severity in range(8):
            s.write(LOGGER, 3, b"<%d>Nov 24 10:15:02 logger[1000]: fac %d sev %d"
                    % (facility * 8 + severity, facility, severity),
                    label=("pri", facility, severity))
    for k, data in enumerate(EDGE_CASES):
        s.write(LOGGER, 3, data, label=("edge", k))
    for kind in WRITE_KINDS:
        s.write(LOGGER, 3, b"<30>via " + kind.encode(), kind=kind, label=kind)
    s.write(LOGGER, 3, b"<30>failed", res=-9, label="failed")
    s.write(LOGGER, 3, b"<30>zero res", res=0, label="zero res")
    s.event(LOGGER, "dup", ">", fd=3)
    s.event(LOGGER, "dup", "<", res=4)
    s.write(LOGGER, 4, b"<11>via dup", kind="write", label="dup")
    s.open(LOGGER, 5, b"/dev/log")
    s.write(LOGGER, 5, b"<12>file dev log", kind="write", label="file")
    s.open(LOGGER, 6, b"/tmp/dev/logfile")
    s.write(LOGGER, 6, b"<12>tmp dev logfile", kind="write", label="contains")
    s.open(LOGGER, 7, b"/var/log/x")
    s.write(LOGGER, 7, b"<12>not syslog", kind="write", label="other file")
    # an unconnected socket gets its /dev/log name from sendto's tuple
    s.event(LOGGER, "socket", ">", domain=PPM_AF_UNIX, type=2, proto=0)
    s.event(LOGGER, "socket", "<", fd=8)
    s.event(LOGGER, "sendto", ">", fd=8, size=15, tuple=SockTuple(
        PPM_AF_UNIX, src=0xFFFF88800A1B4E00, dst=0, data=b"/dev/log\0"))
    s.event(LOGGER, "sendto", "<", res=15, data=b"<9>tuple sendto")
    s.labels["tuple"] = len(s.events) - 1
    s.write(CRON, 5, b"<78>cron from proc list", kind="write", label="fd list socket")
    s.write(CRON, 6, b"<78>cron file from proc list", kind="write", label="fd list file")
    s.event(LOGGER, "close", ">", fd=3)
    s.event(LOGGER, "close", "<", res=0)
    s.open(LOGGER, 3, b"/var/log/y")
    s.write(LOGGER, 3, b"<13>reused fd", kind="write", label="reused")
    return s


def _process(tid, comm):
    return dict(tid=tid, pid=tid, ptid=1, sid=tid, vpgid=tid, comm=comm, exe=comm,
                exepath=b"/usr/bin/" + comm, args=b"", cwd=b"/", fdlimit=1024, flags=0, uid=0,
                gid=0, vmsize_kb=0, vmrss_kb=0, vmswap_kb=0, pfmajor=0, pfminor=0, env=b"",
                vtid=tid, vpid=tid, cgroups=b"", root=b"/", loginuid=0xFFFFFFFF,
                exe_writable=0)


def write_capture(path):
    """Writes the syslog story to path; returns its labels (label -> row)."""
    story = _story()

    def block(writer, block_type, value):
        writer.write_block(block_type, body_schema(block_type).build(value))

    with Writer(path) as w:
        w.write_section_header()
        block(w, bt.MI, dict(num_cpus=1, memory_size_bytes=1 << 30, max_pid=0, hostname=b"log01",
                             boot_ts_epoch=T0 - 10**12, flags=0, reserved3=0, reserved4=0))
        block(w, bt.IL_V2, dict(entries=[]))
        block(w, bt.UL_V2, dict(entries=[
            dict(kind=0, uid=0, gid=0, name=b"root", homedir=b"/root", shell=b"/bin/sh"),
            dict(kind=1, gid=0, name=b"root")]))
        block(w, bt.PL_V9, dict(entries=[_process(1, b"init"), _process(LOGGER, b"logger"),
                                         _process(CRON, b"cron")]))
        block(w, bt.FDL_V2, dict(tid=CRON, entries=[
            dict(fd=5, ino=100, type=FdType.UNIX_SOCK, source=0xFFFF88800A1B5F00,
                 destination=0xFFFF88800A1B6000, name=b"/dev/log"),
            dict(fd=6, ino=101, type=FdType.FILE_V2, open_flags=2, name=b"/dev/log", dev=0)]))
        w.write_event_list(story.events)
    return story.labels


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("syslog") / "syslog.scap"
    return path, write_capture(path)


FIELDS = ["evt.num", "evt.dir", "syslog.facility", "syslog.facility.str", "syslog.severity",
          "syslog.severity.str", "syslog.message", "evt.info", "evt.args", "evt.is_syslog"]


@pytest.fixture(scope="module")
def table(written):
    path, _ = written
    return query.frame(scap.open(path), FIELDS, all_events=True).rows(named=True)


def test_every_facility_and_severity_of_the_capture(written, table):
    _, labels = written
    for facility in range(24):
        for severity in range(8):
            row = table[labels["pri", facility, severity]]
            assert (row["syslog.facility"], row["syslog.severity"]) == (facility, severity)
            assert row["syslog.facility.str"] == FACILITY_NAMES[facility]
            assert row["syslog.severity.str"] == SEVERITY_NAMES[severity]
            text = f"Nov 24 10:15:02 logger[1000]: fac {facility} sev {severity}"
            assert row["syslog.message"] == text
            assert row["evt.info"] == f"syslog sev={SEVERITY_NAMES[severity]} msg={text}"
            assert row["evt.args"].startswith("res=") and row["evt.args"].endswith(" ")
            enter = table[labels["pri", facility, severity] - 1]
            assert enter["evt.is_syslog"] and enter["syslog.message"] is None
            assert enter["evt.info"] == enter["evt.args"]


@pytest.mark.parametrize("label, decoded", [
    ("write", True), ("send", True), ("sendmsg", True), ("writev", True), ("pwrite", True),
    ("pwritev", True), ("zero res", True), ("dup", True), ("file", True), ("contains", True),
    ("tuple", True), ("fd list socket", True), ("fd list file", True),
    ("failed", False), ("other file", False), ("reused", False),
])
def test_which_writes_are_decoded(written, table, label, decoded):
    _, labels = written
    row = table[labels[label]]
    assert (row["syslog.severity"] is not None) == decoded
    assert row["evt.info"].startswith("syslog sev=") == decoded
    if not decoded:
        assert row["evt.info"] == row["evt.args"]


def test_fields_are_null_on_every_other_event(written, table):
    _, labels = written
    decoded_rows = {r for k, r in labels.items()
                    if k not in ("failed", "other file", "reused")
                    and not (k[0] == "edge" and syslog.decode(EDGE_CASES[k[1]]) is None)}
    have = {i for i, row in enumerate(table) if row["syslog.facility"] is not None}
    assert have == decoded_rows


def test_filters_on_the_fields(written):
    path, labels = written
    cap = scap.open(path)
    rows = query.frame(cap, ["evt.num"], "syslog.severity.str=err and syslog.facility=3")
    assert rows["evt.num"].to_list() == [labels["pri", 3, 3] + 1]
    rows = query.frame(cap, ["evt.num"], "syslog.facility.str='<NA>'")
    assert len(rows) == sum(1 for d in EDGE_CASES if (m := syslog.decode(d)) and m.facility > 23)


# -- against sysdig 0.29.3 -------------------------------------------------------------------

def _both(path, *args, sysdig_only=()):
    sysdig = require_tool("sysdig")
    theirs = subprocess.run([sysdig, "-r", str(path), *sysdig_only, *args], capture_output=True,
                            env=ENV)
    assert theirs.returncode == 0, theirs.stderr
    ours = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(path), *args],
                          capture_output=True, env=ENV)
    assert ours.returncode == 0, ours.stderr
    return theirs.stdout.split(b"\n"), ours.stdout.split(b"\n")


def _evt_num(line):
    found = re.match(rb'{.*"evt.num":(\d+)', line) if line.startswith(b"{") else None
    return found[1] if found else line.split(b" ", 1)[0]


def _assert_same(theirs, ours, unchecked=()):
    """Line by line; `unchecked` names evt.num values left out of both sides."""
    if unchecked:
        out = {b"%d" % n for n in unchecked}
        theirs, ours = ([line for line in lines if _evt_num(line) not in out]
                        for lines in (theirs, ours))
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(theirs, ours)):
        assert b == a, f"line {k + 1}"


ALL_SYSLOG = ("%evt.num %syslog.facility %syslog.facility.str %syslog.severity "
              "%syslog.severity.str [%syslog.message] {%evt.info} {%evt.args}")
# `> connect` on a unix socket: sysdig already names the fd after the address there
# (fd=3(<u>/dev/log)), query.fds only at the exit. Not a syslog matter: that line is left out.
CONNECT_ENTER = 3


@pytest.mark.sysdig
@pytest.mark.parametrize("args", [
    ["-p", ("*%evt.num %evt.is_syslog %syslog.facility %syslog.facility.str %syslog.severity "
            "%syslog.severity.str [%syslog.message]")],
    ["-p", "*" + ALL_SYSLOG],
    ["-p", ALL_SYSLOG],                              # lines without a message are left out
    ["-j", "-p", ALL_SYSLOG],
    [],                                              # the default line
    ["-A"],                                          # a decoded write shows no data dump
    ["-X"],
    ["-j"],
    # filters that keep the enter event of every write, as no filter does
    ["-p", "*%evt.num %syslog.severity.str", "evt.is_syslog=true"],
    ["proc.name=logger or proc.name=cron"],
    # sendto and sendmsg modify state: sysdig filters them after decoding them
    ["-p", "*%evt.num %syslog.message",
     "evt.type in (sendto, sendmsg) and syslog.severity.str=err"],
    ["-p", "*%evt.num %syslog.message", "evt.type=sendto and syslog.facility=3"],
    ["-p", "*%evt.num %syslog.message", "evt.type=sendto and syslog.facility.str='<NA>'"],
    ["-p", "*%evt.num %syslog.message", "evt.type=sendto and syslog.message contains nul"],
    ["-p", "*%evt.num %syslog.message", "evt.type=sendto and evt.info contains 'sev=warn'"],
], ids=lambda args: " ".join(args) or "default")
def test_capture_matches_sysdig(written, args):
    theirs, ours = _both(written[0], *args)
    assert any(theirs)
    _assert_same(theirs, ours, unchecked=[CONNECT_ENTER])


# Two sysdig 0.29.3 quirks scaptool does not copy (its filters see every event parsed, as
# sysdig -d does). Strict: when the filter layer copies them, these start passing.
_PRE_PARSE = ("sysdig runs its filter before parsing events that do not modify state "
              "(write, send, writev, pwrite, pwritev): the filter sees no syslog.* value and "
              "the plain evt.info on them")
_LOST_ENTER = ("when sysdig's filter rejected the enter event of a send, writev, pwrite or "
               "pwritev, the exit has no fd, so its data is not decoded (write exits look "
               "their fd up again)")


@pytest.mark.sysdig
@pytest.mark.parametrize("args", [
    pytest.param(["-p", "*%evt.num %evt.type", "syslog.facility=3"],
                 marks=pytest.mark.xfail(strict=True, reason=_PRE_PARSE)),
    pytest.param(["-p", "*%evt.num %evt.type", "evt.info contains syslog"],
                 marks=pytest.mark.xfail(strict=True, reason=_PRE_PARSE)),
    pytest.param(["evt.dir=<"], marks=pytest.mark.xfail(strict=True, reason=_LOST_ENTER)),
], ids=lambda args: " ".join(args))
def test_sysdig_filter_quirks(written, args):
    theirs, ours = _both(written[0], *args)
    _assert_same(theirs, ours, unchecked=[CONNECT_ENTER])


@pytest.mark.sysdig
def test_filter_after_decoding_is_sysdig_d(written):
    theirs, ours = _both(written[0], "-p", "*%evt.num %evt.type", "syslog.facility=3",
                         sysdig_only=["-d"])
    assert any(b" write" in line for line in theirs)
    _assert_same(theirs, ours)


@pytest.mark.sysdig
@pytest.mark.parametrize("path", corpus_captures())
def test_corpus_matches_sysdig(path):
    """No corpus capture writes to syslog: both tools must agree on that (which events write
    to /dev/log, and what they decode there: nothing)."""
    path = need_capture(path)
    theirs, ours = _both(path, "-p", "*" + ALL_SYSLOG, "evt.is_syslog=true")
    _assert_same(theirs, ours)


# -- which captures need the fd state at all -------------------------------------------------

def _small_capture(path, story, fd_list=()):
    with Writer(path) as w:
        w.write_section_header()
        w.write_block(bt.PL_V9, body_schema(bt.PL_V9).build(dict(entries=[
            _process(LOGGER, b"logger"), _process(CRON, b"cron")])))
        w.write_block(bt.FDL_V2, body_schema(bt.FDL_V2).build(dict(tid=CRON,
                                                                   entries=list(fd_list))))
        w.write_event_list(story.events)
    return scap.open(path)


def _named_by(where):
    """A story where /dev/log is only in one place; each writes one syslog message."""
    s = _Story()
    fd_list = ()
    if where == "fd list":
        fd_list = [dict(fd=5, ino=100, type=FdType.UNIX_SOCK, source=0xFFFF88800A1B5F00,
                        destination=0, name=b"/dev/log")]
        s.write(CRON, 5, b"<78>from the fd list", kind="write")
    elif where == "connect":
        s.event(LOGGER, "socket", ">", domain=PPM_AF_UNIX, type=2, proto=0)
        s.event(LOGGER, "socket", "<", fd=3)
        s.event(LOGGER, "connect", ">", fd=3, addr=SockAddr(PPM_AF_UNIX, data=b"/dev/log\0"))
        s.event(LOGGER, "connect", "<", res=0, tuple=SockTuple(
            PPM_AF_UNIX, src=0xFFFF88800A1B2C00, dst=0xFFFF88800A1B3D00, data=b"/dev/log\0"))
        s.write(LOGGER, 3, b"<13>connected", kind="write")
    elif where == "open":
        s.open(LOGGER, 5, b"/dev/log")
        s.write(LOGGER, 5, b"<12>file dev log", kind="write")
    elif where == "sendto tuple":
        s.event(LOGGER, "socket", ">", domain=PPM_AF_UNIX, type=2, proto=0)
        s.event(LOGGER, "socket", "<", fd=8)
        s.event(LOGGER, "sendto", ">", fd=8, size=15, tuple=SockTuple(
            PPM_AF_UNIX, src=0xFFFF88800A1B4E00, dst=0, data=b"/dev/log\0"))
        s.event(LOGGER, "sendto", "<", res=15, data=b"<9>tuple sendto")
    elif where == "data only":
        s.open(LOGGER, 5, b"/var/log/app.log")
        s.write(LOGGER, 5, b"<12>about /dev/log", kind="write")
    return s, fd_list


@pytest.mark.parametrize("where", ["fd list", "connect", "open", "sendto tuple", "data only"])
def test_the_syslog_gate_searches_where_names_come_from(tmp_path, where):
    story, fd_list = _named_by(where)
    capture = _small_capture(tmp_path / "gate.scap", story, fd_list)
    named = where != "data only"
    assert capture.mentions(b"/dev/log") is True  # the whole file does mention it
    assert capture.mentions(b"/dev/log", syslog._naming_types()) is named
    assert len(syslog.decoded(capture)) == (1 if named else 0)


def test_the_pri_gate_never_drops_a_decodable_write():
    """syslog._pri_readable leaves out, before any fd state is computed, only writes whose
    data decode() refuses (it is decode() that decides for the rest)."""
    import numpy as np
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from scaptool.query import syslog

    class Writes:   # the parts of a capture the gate reads: one 'data' parameter per event
        def __init__(self, datas):
            self.buffer = np.frombuffer(b"".join(datas) + b"\0", dtype=np.uint8)
            self.offsets = np.cumsum([0] + [len(d) for d in datas[:-1]]).astype(np.int64)
            self.lengths = np.array([len(d) for d in datas], dtype=np.int64)

        def __len__(self):
            return len(self.lengths)

        def param_index(self, name):
            return np.zeros(len(self), dtype=np.int64)

        def param_slices(self, index):
            return self.offsets, self.lengths, np.ones(len(self), dtype=bool)

    @settings(max_examples=400, deadline=None)
    @given(st.lists(st.lists(st.sampled_from(list(b"0123456789<>\0a-")), max_size=24)
                    .map(bytes), min_size=1, max_size=8))
    def check(datas):
        kept = syslog._pri_readable(Writes(datas), np.arange(len(datas)))
        for keep, data in zip(kept, datas):
            assert keep or syslog.decode(data) is None, data
    check()
