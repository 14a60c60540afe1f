import ipaddress
import math
import struct

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from scaptool.scap import eventtable as et
from scaptool.scap.codecs import (DynValue, FdEntry, SockAddr, SockTuple, bytebuf_text, c_lg, codec_for,
                         flags_resolve, render_param)
from scaptool.scap.eventtable import PF, PT, ParamInfo
from scaptool.scap.names import flag_table

ALL_TYPES = [pt for pt in PT]
INT_SIZES = {PT.INT8: 1, PT.INT16: 2, PT.INT32: 4, PT.INT64: 8, PT.UINT8: 1, PT.UINT16: 2,
             PT.UINT32: 4, PT.UINT64: 8, PT.ERRNO: 8, PT.FD: 8, PT.PID: 8, PT.FLAGS8: 1,
             PT.FLAGS16: 2, PT.FLAGS32: 4, PT.UID: 4, PT.GID: 4, PT.MODE: 4, PT.SIGTYPE: 1,
             PT.SYSCALLID: 2, PT.RELTIME: 8, PT.ABSTIME: 8, PT.PORT: 2, PT.L4PROTO: 1,
             PT.SOCKFAMILY: 1, PT.BOOL: 4, PT.SIGSET: 4, PT.ENUMFLAGS8: 1, PT.ENUMFLAGS16: 2,
             PT.ENUMFLAGS32: 4, PT.FD32: 4, PT.PID32: 4}
SIGNED = {PT.INT8, PT.INT16, PT.INT32, PT.INT64, PT.ERRNO, PT.FD, PT.PID, PT.FD32, PT.PID32}


def well_formed(pt):
    """Raw bytes that a driver could have written for a param of type pt (never empty)."""
    if pt in INT_SIZES:
        return st.binary(min_size=INT_SIZES[pt], max_size=INT_SIZES[pt])
    if pt in (PT.CHARBUF, PT.FSPATH, PT.FSRELPATH):
        return st.binary(max_size=40).map(lambda b: b + b"\0")
    if pt == PT.DOUBLE:
        return st.binary(min_size=8, max_size=8)
    if pt == PT.FDLIST:
        entry = st.tuples(st.integers(-2**63, 2**63 - 1), st.integers(-2**15, 2**15 - 1))
        return st.lists(entry, max_size=5).map(
            lambda es: struct.pack("<H", len(es)) + b"".join(struct.pack("<qh", *e) for e in es))
    if pt in (PT.SOCKADDR, PT.SOCKTUPLE):
        # the sizes hit the exact INET/INET6 layouts, unix tuples, and odd lengths
        family = st.sampled_from([1, 2, 10, 16, 0])
        body = st.sampled_from([0, 6, 12, 17, 18, 30, 36]).flatmap(
            lambda n: st.binary(min_size=n, max_size=n))
        return st.tuples(family, body).map(lambda t: bytes([t[0]]) + t[1])
    return st.binary(min_size=1, max_size=40)


def test_every_type_has_a_codec():
    for pt in ALL_TYPES:
        assert codec_for(pt).pt == pt


@pytest.mark.parametrize("pt", ALL_TYPES, ids=lambda p: p.name)
def test_empty_is_none(pt):
    codec = codec_for(pt)
    assert codec.decode(b"") is None
    assert codec.encode(None) == b""


@pytest.mark.parametrize("pt", ALL_TYPES, ids=lambda p: p.name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(pt, data):
    raw = data.draw(well_formed(pt))
    codec = codec_for(pt)
    value = codec.decode(raw)
    assert codec.encode(value) == raw
    if pt != PT.DOUBLE:  # NaN != NaN; the bytes check above covers it
        assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize("pt,raw,value", [
    (PT.INT64, (-2).to_bytes(8, "little", signed=True), -2),
    (PT.UINT32, b"\xff\xff\xff\xff", 0xFFFFFFFF),
    (PT.CHARBUF, b"/bin/sh\0", b"/bin/sh"),
    (PT.CHARBUF, b"\0", b""),
    (PT.SOCKADDR, bytes.fromhex("02 7f000001 5000"), SockAddr(2, ipaddress.ip_address("127.0.0.1"), 80)),
    (PT.SOCKADDR, b"\x01/tmp/sock\0", SockAddr(1, data=b"/tmp/sock\0")),
    # the connect example of scap-format.md 3.3: ports are little-endian
    (PT.SOCKTUPLE, bytes.fromhex("02 7f000001 58b8 7f000001 5000"),
     SockTuple(2, ipaddress.ip_address("127.0.0.1"), 47192, ipaddress.ip_address("127.0.0.1"), 80)),
    (PT.FDLIST, bytes.fromhex("0100 0000000000000000 0100"), (FdEntry(0, 1),)),
    (PT.DYN, b"\x02\x00\x40\x03\x00", DynValue(2, b"\x00\x40\x03\x00")),
])
def test_decode_examples(pt, raw, value):
    assert codec_for(pt).decode(raw) == value
    assert codec_for(pt).encode(value) == raw


def _expected_column_value(codec, raw):
    if codec.column_kind == "binary":
        return raw or None
    value = codec.decode(raw)
    if codec.column_kind == "float" and value is not None:
        return struct.unpack("<q", struct.pack("<d", value))[0]  # compare NaNs by their bits
    return value


@pytest.mark.parametrize("pt", ALL_TYPES, ids=lambda p: p.name)
@settings(max_examples=30, deadline=None)
@given(buf=st.binary(min_size=1, max_size=200), spans=st.lists(st.tuples(st.integers(0, 199),
                                                                       st.integers(0, 40)), max_size=20))
def test_decode_column_matches_decode(pt, buf, spans):
    spans = [(o % len(buf), n) for o, n in spans]
    spans = [(o, min(n, len(buf) - o)) for o, n in spans]
    arr = np.frombuffer(buf, dtype=np.uint8)
    offsets = np.array([o for o, _ in spans], dtype=np.int64)
    lengths = np.array([n for _, n in spans], dtype=np.int64)
    codec = codec_for(pt)
    column = codec.decode_column(arr, offsets, lengths)
    assert isinstance(column, pa.Array) and len(column) == len(spans)
    got = column.to_pylist()
    if codec.column_kind == "float":
        got = [None if v is None else struct.unpack("<q", struct.pack("<d", v))[0] for v in got]
    assert got == [_expected_column_value(codec, buf[o:o + n]) for o, n in spans]


@pytest.mark.parametrize("pt,arrow_type", [
    (PT.INT8, pa.int8()), (PT.UINT16, pa.uint16()), (PT.ERRNO, pa.int64()), (PT.FD, pa.int64()),
    (PT.FLAGS32, pa.uint32()), (PT.UID, pa.uint32()), (PT.FD32, pa.int32()),
    (PT.RELTIME, pa.uint64()), (PT.DOUBLE, pa.float64()), (PT.CHARBUF, pa.binary_view()),
])
def test_column_types(pt, arrow_type):
    column = codec_for(pt).decode_column(np.zeros(16, np.uint8), np.array([0]), np.array([8]))
    assert column.type == arrow_type


def test_column_strips_only_the_final_nul():
    buf = np.frombuffer(b"ab\0cd\0\0ef", dtype=np.uint8)
    col = codec_for(PT.FSPATH).decode_column(buf, np.array([0, 3, 3, 7, 0]), np.array([3, 4, 3, 2, 0]))
    assert col.to_pylist() == [b"ab", b"cd\0", b"cd", b"ef", None]


# ------------------------------------------------------------------------------------------------
# Rendering: every example below is taken from what sysdig 0.29.3 printed for the conformance
# captures (../shared/conformance/expected/*/default.txt), e.g. `< open ... flags=4097(...)`.

T = et.sysdig_0293()


def param(event, name, enter=None):
    ids = T.ids_named(event)
    for evid in ids:
        info = T[evid]
        if enter is not None and info.is_enter != enter:
            continue
        for p in info.params:
            if p.name == name:
                return p
    raise LookupError((event, name))


def expected(token):
    """'flags=4097(O_RDONLY|O_CLOEXEC)' -> ('4097', 'O_RDONLY|O_CLOEXEC')."""
    value = token.split("=", 1)[1]
    if value.endswith(")") and "(" in value:
        text, resolved = value[:-1].split("(", 1)
        return text, resolved
    return value, None


@pytest.mark.parametrize("event,enter,value,token", [
    ("open", False, 4097, "flags=4097(O_RDONLY|O_CLOEXEC)"),
    ("open", False, 1, "flags=1(O_RDONLY)"),
    ("open", False, 0, "mode=0"),
    ("open", False, 0o700, "mode=0700"),
    ("open", False, 0o666, "mode=0666"),
    ("mmap", True, 1030, "flags=1030(MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE)"),
    ("mmap", True, 10, "flags=10(MAP_PRIVATE|MAP_ANONYMOUS)"),
    ("mmap", True, 3, "prot=3(PROT_READ|PROT_WRITE)"),
    ("mmap", True, 0, "prot=0(PROT_NONE)"),
    ("mmap", True, 0xC000000000, "addr=C000000000"),
    ("mmap", True, 0x7F4C93A9E0E8, "addr=7F4C93A9E0E8"),
    ("mmap", True, 0, "addr=0"),
    ("mmap", True, -1, "fd=-1(EPERM)"),
    ("mmap", True, 4294967295, "fd=4294967295"),  # old drivers stored a zero-extended u32 -1
    ("futex", True, 129, "op=129(FUTEX_PRIVATE_FLAG|FUTEX_WAKE)"),
    ("futex", True, 0, "op=0(FUTEX_WAIT)"),
    ("futex", True, 393, "op=393(FUTEX_CLOCK_REALTIME|FUTEX_PRIVATE_FLAG|FUTEX_WAIT_BITSET)"),
    ("fcntl", True, 5, "cmd=5(F_SETFL)"),
    ("fcntl", True, 26, "cmd=26(F_DUPFD_CLOEXEC)"),
    ("socket", True, 1, "domain=1(AF_LOCAL)"),
    ("socket", True, 16, "domain=16(AF_ROUTE)"),
    ("socket", True, 10, "domain=10(AF_INET6)"),
    ("access", True, 0, "mode=0(F_OK)"),
    ("access", True, 4, "mode=4(R_OK)"),
    ("chmod", False, 0o755, "mode=0755(S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR)"),
    ("mkdirat", False, 0o755, "mode=1ED"),
    ("ioctl", True, 0x5401, "request=5401"),
    ("ioctl", True, 0x541B, "request=541B"),
    ("lseek", True, 1, "whence=1(SEEK_CUR)"),
    ("shutdown", True, 1, "how=1(SHUT_WR)"),
    ("getrlimit", True, 3, "resource=3(RLIMIT_STACK)"),
    ("open", False, -2, "fd=-2(ENOENT)"),
    ("openat", True, -100, "dirfd=-100(AT_FDCWD)"),
    ("close", False, -2, "res=-2(ENOENT)"),
    ("connect", False, -115, "res=-115(EINPROGRESS)"),
    ("futex", False, -110, "res=-110(ETIMEDOUT)"),
    ("read", False, -512, "res=-512(ERESTARTSYS)"),
    ("read", False, 8, "res=8"),
    ("nanosleep", True, 500000000, "interval=500000000(0.5s)"),
    ("nanosleep", True, 1000000000, "interval=1000000000(1s)"),
    ("nanosleep", True, 9998632000, "interval=9998632000(9.99863s)"),
    ("nanosleep", True, 0, "interval=0(0s)"),
    ("ppoll", True, 24999966000, "timeout=24999966000(25s)"),
    ("ppoll", True, 0, "sigmask="),
    ("kill", True, 17, "sig=17(SIGCHLD)"),
    ("kill", True, 9, "sig=9(SIGKILL)"),
    ("kill", True, 0, "sig=0"),
    ("getsockopt", False, 1, "level=1(SOL_SOCKET)"),
    ("getsockopt", False, 8, "optname=8(SO_RCVBUF)"),
    ("execve", False, -1, "loginuid=-1"),
    ("execve", False, 34817, "tty=34817"),
    ("procexit", True, 256, "status=256"),
])
def test_render_numbers(event, enter, value, token):
    p = param(event, token.split("=")[0], enter)
    assert render_param(value, p) == expected(token)


@pytest.mark.parametrize("pt,fmt,value,text", [
    (PT.UINT32, PF.DEC, 0xFFFFFFFF, "-1"),          # UINT32 DEC prints signed
    (PT.UINT64, PF.DEC, 2**64 - 2, "-2"),
    (PT.UINT8, PF.DEC, 200, "200"),                 # promoted to int: stays positive
    (PT.UINT16, PF.DEC, 65535, "65535"),
    (PT.INT8, PF.HEX, -1, "FFFFFFFF"),              # promoted to int, read unsigned by %X
    (PT.INT64, PF.HEX, -1, "FFFFFFFFFFFFFFFF"),
    (PT.INT32, PF.OCT, 8, "010"),
    (PT.UINT32, PF.PADDED_DEC, 42, "000000042"),
    (PT.INT32, PF.NA, -5, "-5"),
])
def test_render_number_formats(pt, fmt, value, text):
    assert render_param(value, ParamInfo("x", pt, fmt)) == (text, None)


@pytest.mark.parametrize("x,text", [(0.0, "0"), (1.0, "1"), (0.5, "0.5"), (9.998632, "9.99863"),
                                    (24.999966, "25"), (123456789.0, "1.23457e+08"),
                                    (0.0001, "0.0001"), (0.00001, "1e-05")])
def test_c_lg(x, text):
    assert c_lg(x) == text


def test_flags_algorithm_stops_at_exact_entry():
    # AF_ROUTE and AF_NETLINK are both 16; the first one in table order wins
    assert flags_resolve(16, flag_table("socket_families")) == "AF_ROUTE"
    assert flags_resolve(0x7FFFFFFF, []) is None


def test_uid_gid():
    uid = param("setuid", "uid", True)
    assert render_param(0xFFFFFFFF, uid) == ("-1", "<NONE>")
    assert render_param(1002, uid, users={0: "root"}) == ("1002", "<NA>")
    assert render_param(0, uid, users={0: "root"}) == ("0", "root")
    euid = param("geteuid", "euid", False)
    assert render_param(104, euid, users={104: "messagebus"}) == ("104", "messagebus")
    gid = param("setgid", "gid", True)
    assert render_param(0, gid, groups={0: "root"}) == ("0", "root")


def test_pid_lookup():
    p = param("switch", "next")
    assert render_param(19885, p, lookup_pid={19885: "wget"}.get) == ("19885", "wget")
    assert render_param(0, p, lookup_pid={19885: "wget"}.get) == ("0", None)
    assert render_param(0, p) == ("0", None)


def raw_render(event, name, raw, enter=None, **ctx):
    return render_param(raw, param(event, name, enter), decoded=False, **ctx)


def test_socktuple_and_sockaddr():
    v4 = bytes.fromhex("02 7f000001 58b8 7f000001 5000")
    assert raw_render("connect", "tuple", v4, False) == ("127.0.0.1:47192->127.0.0.1:80", None)
    assert raw_render("connect", "tuple", b"", False) == ("NULL", None)
    unix = b"\x01" + struct.pack("<QQ", 0, 0xffff91bbfc5e7000) + b"/var/run/nscd/socket\0"
    assert raw_render("connect", "tuple", unix, False) == (
        "0->ffff91bbfc5e7000 /var/run/nscd/socket", None)
    v6 = (b"\x0a" + ipaddress.ip_address("2001:db8::4").packed + struct.pack("<H", 54405)
          + ipaddress.ip_address("2001:db8::3").packed + struct.pack("<H", 1234))
    assert raw_render("connect", "tuple", v6, False) == ("2001:db8::4:54405->2001:db8::3:1234", None)
    mapped = (b"\x0a" + ipaddress.ip_address("::ffff:10.0.0.1").packed + struct.pack("<H", 5)
              + ipaddress.ip_address("::").packed + struct.pack("<H", 6))
    assert raw_render("connect", "tuple", mapped, False) == ("10.0.0.1:5->0.0.0.0:6", None)
    assert raw_render("connect", "tuple", b"\x10\x01\x02", False) == ("family 16", None)
    addr6 = b"\x0a" + ipaddress.ip_address("2001:db8::3").packed + struct.pack("<H", 1234)
    assert raw_render("connect", "addr", addr6, True) == ("2001:db8::3:1234", None)
    assert raw_render("bind", "addr", b"", False) == ("NULL", None)
    assert raw_render("connect", "addr", b"\x01/tmp/\x01s\0", True) == ("/tmp/s", None)


def test_bytebuf():
    assert raw_render("read", "data", b"GET", False) == ("GET", None)
    assert raw_render("read", "data", b"", False) == ("", None)
    assert raw_render("execve", "args", b"-6\0http://www.google.com\0", False) == (
        "-6.http://www.google.com.", None)
    assert raw_render("read", "data", bytes(80), False) == ("." * 80, None)
    long = b"..KZ" * 30
    text = raw_render("read", "data", long, False)[0]
    assert len(text) == 80 and text.endswith("...") and text[:77] == ("..KZ" * 20)[:77]
    assert bytebuf_text(long, None) == "..KZ" * 30


def test_strings():
    assert raw_render("execve", "cwd", b"", False) == ("", None)
    # CHARBUF is raw: the container JSON keeps its newline
    assert raw_render("container", "json", b'{"a":1}\n\0', True) == ('{"a":1}\n', None)
    assert raw_render("open", "name", b"/etc/\x01passwd\0", False) == ("/etc/passwd", None)
    # 0.29.3 prints the previous param's text for an empty path (rename2at.scap evt 1838)
    openat_2_name = T[306].params[1]
    assert render_param(b"", openat_2_name, decoded=False, previous_text="-100") == ("-100", None)


def test_fdlist():
    raw = codec_for(PT.FDLIST).encode((FdEntry(4, 1), FdEntry(7, 0)))
    assert raw_render("poll", "fds", raw, True) == ("4:?1 7:?0", None)
    typechars = {4: "e", 7: "i"}.get
    assert raw_render("poll", "fds", raw, True, fd_typechar=typechars) == ("4:e1 7:i0", None)
    assert raw_render("poll", "fds", codec_for(PT.FDLIST).encode((FdEntry(4, 0x183),)), True,
                      fd_typechar={4: "6"}.get) == ("4:6183", None)
    assert raw_render("poll", "fds", codec_for(PT.FDLIST).encode(()), False) == ("", None)


def test_dyn():
    val = param("getsockopt", "val", False)
    assert render_param(b"\x02" + struct.pack("<I", 212992), val, decoded=False) == ("212992", None)
    assert render_param(b"\x01" + struct.pack("<q", -2), val, decoded=False) == ("-2", "ENOENT")
    assert render_param(b"\x09", val, decoded=False) == ("INVALID DYNAMIC PARAMETER", None)
    addr = param("ptrace", "addr", False)
    assert render_param(b"\x00" + struct.pack("<Q", 0x7F00), addr, decoded=False) == ("7F00", None)


def test_syscallid():
    p = param("syscall", "ID", True)
    assert render_param(283, p) == ("283", "newselect")
    assert render_param(283, p, table_version="libs") == ("283", "_newselect")
    assert render_param(5000, p) == ("<unknown syscall>", None)


def test_not_rendered_types():
    for pt in (PT.PORT, PT.L4PROTO, PT.SOCKFAMILY, PT.BOOL):
        assert render_param(1, ParamInfo("x", pt, PF.DEC)) == ("(n.a.)", None)
    assert render_param(1.5, ParamInfo("x", PT.DOUBLE, PF.NA)) == ("(n.a.)", None)
    assert render_param(1, ParamInfo("x", PT.ABSTIME, PF.DEC)) == ("INVALID DYNAMIC PARAMETER", None)


def test_sigset():
    p = param("ppoll", "sigmask", True)
    assert render_param((1 << 1) | (1 << 16), p) == ("SIGINT SIGCHLD", None)


def test_enumflags_exact_match_only():
    p = ParamInfo("domain", PT.ENUMFLAGS32, PF.DEC, "socket_families")
    assert render_param(2, p, table_version="libs") == ("2", "AF_INET")
    assert render_param(3 << 20, p, table_version="libs") == (str(3 << 20), None)


def test_double_nan():
    value = codec_for(PT.DOUBLE).decode(struct.pack("<d", float("nan")))
    assert math.isnan(value)
