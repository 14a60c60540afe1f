"""One codec per parameter type (PT_*): decode, encode, decode a column, render as sysdig 0.29.3.

`codec_for(pt)` returns the codec. Every codec has
- decode(raw) -> value (None for an empty param) and encode(value) -> raw, exact inverses;
- decode_column(buf, offsets, lengths) -> pyarrow.Array, vectorized over a whole capture;
- render(value, param, ...) -> (text, resolved or None): what 0.29.3's evt.info prints as
  `name=text` or `name=text(resolved)`, without thread/fd state (the query layer adds fd names,
  cwd-resolved paths and fd type chars).
The rendering rules are those of libsinsp event.cpp get_param_as_str at the 0.29.3 commit
(scap-format.md sections 4.6 and 6.3).
"""
import ipaddress
import struct
from typing import NamedTuple

import numpy as np

from scaptool.scap import names
from scaptool.scap.columns import binary_view, gather_le
from scaptool.scap.eventtable import DYN_TABLES, PF, PT

AT_FDCWD = -100
PPM_AF_UNIX = 1
PPM_AF_INET = 2
PPM_AF_INET6 = 10
DEFAULT_BYTEBUF_LIMIT = 80  # sysdig's max_evt_output_len unless -v


class SockAddr(NamedTuple):
    family: int
    ip: object = None     # IPv4Address / IPv6Address for INET/INET6 of the exact size
    port: int = None
    data: bytes = b""     # everything after the family byte otherwise (unix path with its NUL)


class SockTuple(NamedTuple):
    family: int
    sip: object = None
    sport: int = None
    dip: object = None
    dport: int = None
    src: int = None       # unix: kernel socket pointers
    dst: int = None
    data: bytes = b""     # unix path (with its NUL), or the raw bytes of other families


class FdEntry(NamedTuple):
    fd: int
    flags: int            # poll flags, signed 16 bits on disk


class DynValue(NamedTuple):
    index: int            # into the param's DYN table
    payload: bytes        # value of the selected sub-type


# ---------------------------------------------------------------------------------------------
# C printf emulation

def _wrap(value, bits, signed):
    value &= (1 << bits) - 1
    if signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def c_number(value, ptype, fmt):
    """A number as 0.29.3's SET_NUMERIC_FORMAT prints it: the C argument is the value promoted
    to int (8/16-bit types), the raw 32 bits (UINT32) or the raw 64 bits (64-bit types), and
    %d reads it signed while %X / %#o read it unsigned."""
    bits = 64 if ptype in (PT.INT64, PT.UINT64) else 32
    arg = _wrap(value, bits, True)
    if fmt == PF.HEX:
        return "%X" % _wrap(arg, bits, False)
    if fmt == PF.OCT:
        octal = _wrap(arg, bits, False)
        return "0%o" % octal if octal else "0"  # C's %#o; Python's would say 0o755
    if fmt == PF.PADDED_DEC:
        return "%09d" % arg
    return "%d" % arg


def c_lg(x):
    """C's %lg: Python's %g follows the same rules (6 significant digits, no trailing zeros)."""
    return "%g" % x


def _isprint(b):
    return 0x20 <= b <= 0x7E


# bytes.translate tables: every byte kept as itself or made '.', and the non-printable ones
_DOTTED = bytes(b if 0x20 <= b <= 0x7E else 0x2E for b in range(256))
_UNPRINTABLE = bytes(b for b in range(256) if not 0x20 <= b <= 0x7E)


def sanitize(raw):
    """Up to the first NUL, non-printable bytes removed (libsinsp strcpy_sanitized)."""
    raw = raw.split(b"\0", 1)[0]
    return raw.translate(None, _UNPRINTABLE).decode("ascii")


def _cstr(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def bytebuf_text(raw, limit=DEFAULT_BYTEBUF_LIMIT):
    """Printable bytes kept, others '.'; cut to limit characters with the last 3 made '...'."""
    if limit:
        raw = raw[:limit + 1]  # one more than shown tells whether it was cut
    text = bytes(raw).translate(_DOTTED).decode("ascii")
    if limit and len(text) > limit:
        text = text[:limit]
        if limit > 3:
            text = text[:limit - 3] + "..."
    return text


def flags_resolve(value, table):
    """0.29.3's flags renderer: walk the table in order; stop at an entry equal to the whole
    value; otherwise take every entry whose bits are all still set, and clear them."""
    found, rem = [], value
    for name, fval in table:
        if fval == value:
            found.append(name)
            break
        if (fval == 0 and value == 0) or (fval != 0 and rem & fval == fval and rem != 0):
            found.append(name)
            rem &= ~fval
    return "|".join(found) or None


# ---------------------------------------------------------------------------------------------
# Codecs

class Codec:
    pt = PT.NONE
    column_kind = "binary"   # 'int', 'float', 'string' (NUL stripped) or 'binary' (raw bytes)

    def decode(self, raw):
        raw = bytes(raw)
        return None if not raw else self._decode(raw)

    def _decode(self, raw):
        return raw

    def encode(self, value):
        return b"" if value is None else bytes(value)

    def decode_column(self, buf, offsets, lengths):
        lengths = np.asarray(lengths, dtype=np.int64)
        return binary_view(buf, offsets, lengths, lengths > 0)

    def render(self, value, param, **ctx):
        return "(n.a.)", None


class IntCodec(Codec):
    column_kind = "int"

    def __init__(self, pt, size, signed):
        self.pt, self.size, self.signed = pt, size, signed
        self.dtype = np.dtype(f"{'i' if signed else 'u'}{size}")
        code = {1: "b", 2: "h", 4: "i", 8: "q"}[size]
        self._struct = struct.Struct("<" + (code if signed else code.upper()))

    def _decode(self, raw):
        if len(raw) < self.size:
            return None
        return self._struct.unpack_from(raw)[0]

    def encode(self, value):
        return b"" if value is None else self._struct.pack(value)

    def decode_numbers(self, buf, offsets, lengths):
        """(values, valid) as numpy arrays: 0 where a value is too short to read."""
        offsets = np.asarray(offsets, dtype=np.int64)
        # (and within the buffer: a damaged length may point a value past its end)
        valid = (np.asarray(lengths, dtype=np.int64) >= self.size) & \
            (offsets + self.size <= len(buf))
        safe = np.where(valid, offsets, 0)
        if len(buf) < self.size:
            values = np.zeros(len(offsets), dtype=self.dtype)
        else:
            values = gather_le(buf, safe, self.size, self.dtype)
        return values, valid

    def decode_column(self, buf, offsets, lengths):
        import pyarrow as pa
        values, valid = self.decode_numbers(buf, offsets, lengths)
        return pa.array(values, type=pa.from_numpy_dtype(self.dtype), mask=~valid)

    def render(self, value, param, **ctx):
        if value is None:
            return "", None
        return self.render_number(value, param, **ctx)

    def render_number(self, value, param, **ctx):
        return c_number(value, self.pt, param.fmt), None


class NotRenderedInt(IntCodec):
    """PORT, L4PROTO, SOCKFAMILY, BOOL: 0.29.3 has no case for them and prints (n.a.)."""

    def render_number(self, value, param, **ctx):
        return "(n.a.)", None


class ErrnoCodec(IntCodec):
    def render_number(self, value, param, **ctx):
        return "%d" % value, (names.errno_name(-value) if value < 0 else None)


class FdCodec(IntCodec):
    def render_number(self, value, param, **ctx):
        if value == AT_FDCWD:
            return "%d" % value, "AT_FDCWD"
        return "%d" % value, (names.errno_name(-value) if value < 0 else None)


class PidCodec(IntCodec):
    def render_number(self, value, param, *, lookup_pid=None, **ctx):
        return "%d" % value, (lookup_pid(value) or None) if lookup_pid else None


class FlagsCodec(IntCodec):
    """FLAGS8/16/32 (always decimal) and MODE (by its print format)."""

    def render_number(self, value, param, *, table_version="0293", **ctx):
        text = "%d" % value if self.pt != PT.MODE else c_number(value, PT.UINT32, param.fmt)
        table = names.flag_table(param.extra, table_version, missing_ok=True) if param.extra else ()
        return text, flags_resolve(value, table)


class EnumFlagsCodec(IntCodec):
    """HEAD-only ENUMFLAGS: the name of the entry equal to the value."""

    def render_number(self, value, param, *, table_version="libs", **ctx):
        table = names.flag_table(param.extra, table_version, missing_ok=True) if param.extra else ()
        return "%d" % value, next((n for n, v in table if v == value), None)


class IdCodec(IntCodec):
    """UID / GID: -1 is <NONE>; otherwise the name from the user list, <NA> if unknown."""

    def render_number(self, value, param, *, users=None, groups=None, **ctx):
        if value == 0xFFFFFFFF:
            return "-1", "<NONE>"
        known = (users if self.pt == PT.UID else groups) or {}
        name = known.get(value)
        return "%d" % _wrap(value, 32, True), (sanitize(name.encode()) if name else "<NA>")


class SigtypeCodec(IntCodec):
    def render_number(self, value, param, **ctx):
        return "%d" % value, names.signal_name(value)


class SigsetCodec(IntCodec):
    def render_number(self, value, param, **ctx):
        sigs = (names.signal_name(bit + 1) for bit in range(32) if value >> bit & 1)
        return " ".join(s for s in sigs if s), None


class ReltimeCodec(IntCodec):
    def render_number(self, value, param, **ctx):
        if value == 0xFFFFFFFFFFFFFFFF:
            return "none", None
        return "%d" % value, c_lg(float(value) / 1000000000) + "s"


class AbstimeCodec(IntCodec):
    def render_number(self, value, param, **ctx):
        return "INVALID DYNAMIC PARAMETER", None  # 0.29.3 falls through to its PT_DYN case


class SyscallIdCodec(IntCodec):
    def render_number(self, value, param, *, table_version="0293", **ctx):
        name = names.syscall_name(value, table_version)
        if name is None:
            return "<unknown syscall>", None
        return "%d" % value, name


class DoubleCodec(Codec):
    pt = PT.DOUBLE
    column_kind = "float"

    def _decode(self, raw):
        return struct.unpack_from("<d", raw)[0] if len(raw) >= 8 else None

    def encode(self, value):
        return b"" if value is None else struct.pack("<d", value)

    dtype = np.dtype("<f8")

    def decode_numbers(self, buf, offsets, lengths):
        ints, valid = IntCodec(PT.UINT64, 8, False).decode_numbers(buf, offsets, lengths)
        return ints.view(self.dtype), valid

    def decode_column(self, buf, offsets, lengths):
        import pyarrow as pa
        values, valid = self.decode_numbers(buf, offsets, lengths)
        return pa.array(values, type=pa.float64(), mask=~valid)


class StringCodec(Codec):
    """CHARBUF, FSPATH, FSRELPATH: a NUL-terminated string. The value is the bytes before the
    terminating NUL (b'' for a lone NUL); raw bytes without a final NUL decode unchanged."""
    column_kind = "string"

    def __init__(self, pt):
        self.pt = pt

    def _decode(self, raw):
        return raw[:-1] if raw.endswith(b"\0") else raw

    def encode(self, value):
        return b"" if value is None else bytes(value) + b"\0"

    def decode_column(self, buf, offsets, lengths):
        offsets = np.asarray(offsets, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        valid = lengths > 0
        last = np.where(valid, offsets + lengths - 1, 0)
        ends_nul = valid & (buf[last] == 0) if len(buf) else valid & False
        return binary_view(buf, offsets, lengths - ends_nul, valid)

    def render(self, value, param, *, previous_text=None, **ctx):
        if self.pt == PT.CHARBUF:
            return ("" if value is None else _cstr(value)), None
        if value is None:
            # 0.29.3 copies nothing for an empty path and prints the previous param's text again
            return (previous_text or ""), None
        return sanitize(value), None


class ByteBufCodec(Codec):
    pt = PT.BYTEBUF

    def render(self, value, param, *, bytebuf_limit=DEFAULT_BYTEBUF_LIMIT, **ctx):
        return bytebuf_text(value or b"", bytebuf_limit), None


def _ip(raw):
    return ipaddress.ip_address(bytes(raw))


def _mapped_v4(ip6):
    """sinsp's is_ipv4_mapped_ipv6: ten zero bytes, then ff ff or 00 00 (so :: and ::x too)."""
    b = ip6.packed
    return b[:10] == bytes(10) and b[10:12] in (b"\xff\xff", b"\0\0")


class SockAddrCodec(Codec):
    pt = PT.SOCKADDR

    def _decode(self, raw):
        family, rest = raw[0], raw[1:]
        if family == PPM_AF_INET and len(rest) == 6 or family == PPM_AF_INET6 and len(rest) == 18:
            port, = struct.unpack_from("<H", rest, len(rest) - 2)
            return SockAddr(family, _ip(rest[:-2]), port)
        return SockAddr(family, data=rest)

    def encode(self, value):
        if value is None:
            return b""
        if value.ip is not None:
            return bytes([value.family]) + value.ip.packed + struct.pack("<H", value.port)
        return bytes([value.family]) + value.data

    def render(self, value, param, **ctx):
        if value is None:
            return "NULL", None
        if value.family == PPM_AF_UNIX:
            return sanitize(value.data), None
        if value.family == PPM_AF_INET:
            if value.ip is None:
                return "INVALID IPv4", None
            return f"{value.ip}:{value.port}", None
        if value.family == PPM_AF_INET6:
            if value.ip is None:
                return "INVALID IPv6", None
            return f"{value.ip}:{value.port}", None
        return f"family {value.family}", None


class SockTupleCodec(Codec):
    pt = PT.SOCKTUPLE
    _ADDR = {PPM_AF_INET: 4, PPM_AF_INET6: 16}

    def _decode(self, raw):
        family, rest = raw[0], raw[1:]
        n = self._ADDR.get(family)
        if n and len(rest) == 2 * (n + 2):
            sport, = struct.unpack_from("<H", rest, n)
            dport, = struct.unpack_from("<H", rest, 2 * n + 2)
            return SockTuple(family, _ip(rest[:n]), sport, _ip(rest[n + 2:2 * n + 2]), dport)
        if family == PPM_AF_UNIX and len(rest) >= 16:
            src, dst = struct.unpack_from("<QQ", rest)
            return SockTuple(family, src=src, dst=dst, data=rest[16:])
        return SockTuple(family, data=rest)

    def encode(self, value):
        if value is None:
            return b""
        out = bytes([value.family])
        if value.sip is not None:
            return (out + value.sip.packed + struct.pack("<H", value.sport)
                    + value.dip.packed + struct.pack("<H", value.dport))
        if value.src is not None:
            out += struct.pack("<QQ", value.src, value.dst)
        return out + value.data

    def render(self, value, param, **ctx):
        if value is None:
            return "NULL", None
        if value.family == PPM_AF_INET:
            if value.sip is None:
                return "INVALID IPv4", None
            return f"{value.sip}:{value.sport}->{value.dip}:{value.dport}", None
        if value.family == PPM_AF_INET6:
            if value.sip is None:
                return "INVALID IPv6", None
            if _mapped_v4(value.sip) and _mapped_v4(value.dip):
                sip, dip = (ipaddress.IPv4Address(a.packed[12:]) for a in (value.sip, value.dip))
                return f"{sip}:{value.sport}->{dip}:{value.dport}", None
            return f"{value.sip}:{value.sport}->{value.dip}:{value.dport}", None
        if value.family == PPM_AF_UNIX and value.src is not None:
            return f"{value.src:x}->{value.dst:x} {sanitize(value.data)}", None
        return f"family {value.family}", None


class FdListCodec(Codec):
    pt = PT.FDLIST

    def _decode(self, raw):
        count = struct.unpack_from("<H", raw)[0] if len(raw) >= 2 else 0
        count = min(count, (len(raw) - 2) // 10)
        return tuple(FdEntry(*struct.unpack_from("<qh", raw, 2 + 10 * i)) for i in range(count))

    def encode(self, value):
        if value is None:
            return b""
        return struct.pack("<H", len(value)) + b"".join(struct.pack("<qh", fd, fl) for fd, fl in value)

    def render(self, value, param, *, fd_typechar=None, **ctx):
        """fd_typechar(fd) -> type char, when the caller knows the thread's fds; '?' otherwise.
        The fd prints unsigned (%PRIu64) and the flags as the 32-bit hex of the signed i16."""
        parts = []
        for fd, fl in value or ():
            tch = (fd_typechar(fd) if fd_typechar else None) or "?"
            parts.append(f"{fd & 0xFFFFFFFFFFFFFFFF}:{tch}{fl & 0xFFFFFFFF:x}")
        return " ".join(parts), None


class DynCodec(Codec):
    pt = PT.DYN

    def _decode(self, raw):
        return DynValue(raw[0], raw[1:])

    def encode(self, value):
        return b"" if value is None else bytes([value.index]) + value.payload

    def render(self, value, param, **ctx):
        subtypes = DYN_TABLES.get(param.extra, ())
        if value is None or value.index >= len(subtypes):
            return "INVALID DYNAMIC PARAMETER", None
        sub = subtypes[value.index]
        codec = codec_for(sub.type)
        # the sub-type decides the rendering; the outer param keeps its print format and name
        shown = type(param)(param.name, sub.type, param.fmt, sub.extra)
        return codec.render(codec.decode(value.payload), shown, **ctx)


def _registry():
    ints = {
        PT.INT8: (1, True), PT.INT16: (2, True), PT.INT32: (4, True), PT.INT64: (8, True),
        PT.UINT8: (1, False), PT.UINT16: (2, False), PT.UINT32: (4, False), PT.UINT64: (8, False),
    }
    reg = {pt: IntCodec(pt, *spec) for pt, spec in ints.items()}
    reg.update({
        PT.ERRNO: ErrnoCodec(PT.ERRNO, 8, True),
        PT.FD: FdCodec(PT.FD, 8, True),
        PT.FD32: FdCodec(PT.FD32, 4, True),
        PT.PID: PidCodec(PT.PID, 8, True),
        PT.PID32: PidCodec(PT.PID32, 4, True),
        PT.FLAGS8: FlagsCodec(PT.FLAGS8, 1, False),
        PT.FLAGS16: FlagsCodec(PT.FLAGS16, 2, False),
        PT.FLAGS32: FlagsCodec(PT.FLAGS32, 4, False),
        PT.MODE: FlagsCodec(PT.MODE, 4, False),
        PT.ENUMFLAGS8: EnumFlagsCodec(PT.ENUMFLAGS8, 1, False),
        PT.ENUMFLAGS16: EnumFlagsCodec(PT.ENUMFLAGS16, 2, False),
        PT.ENUMFLAGS32: EnumFlagsCodec(PT.ENUMFLAGS32, 4, False),
        PT.UID: IdCodec(PT.UID, 4, False),
        PT.GID: IdCodec(PT.GID, 4, False),
        PT.SIGTYPE: SigtypeCodec(PT.SIGTYPE, 1, False),
        PT.SIGSET: SigsetCodec(PT.SIGSET, 4, False),
        PT.RELTIME: ReltimeCodec(PT.RELTIME, 8, False),
        PT.ABSTIME: AbstimeCodec(PT.ABSTIME, 8, False),
        PT.SYSCALLID: SyscallIdCodec(PT.SYSCALLID, 2, False),
        PT.PORT: NotRenderedInt(PT.PORT, 2, False),
        PT.L4PROTO: NotRenderedInt(PT.L4PROTO, 1, False),
        PT.SOCKFAMILY: NotRenderedInt(PT.SOCKFAMILY, 1, False),
        PT.BOOL: NotRenderedInt(PT.BOOL, 4, False),
        PT.DOUBLE: DoubleCodec(),
        PT.CHARBUF: StringCodec(PT.CHARBUF),
        PT.FSPATH: StringCodec(PT.FSPATH),
        PT.FSRELPATH: StringCodec(PT.FSRELPATH),
        PT.BYTEBUF: ByteBufCodec(),
        PT.SOCKADDR: SockAddrCodec(),
        PT.SOCKTUPLE: SockTupleCodec(),
        PT.FDLIST: FdListCodec(),
        PT.DYN: DynCodec(),
    })
    # raw bytes, rendered (n.a.): IP address types (filter-field types, HEAD-only in events),
    # and the tracer-only in-memory pointer types, meaningless in files
    for pt in (PT.NONE, PT.IPV4ADDR, PT.IPV4NET, PT.IPV6ADDR, PT.IPV6NET, PT.IPADDR, PT.IPNET,
               PT.CHARBUFARRAY, PT.CHARBUF_PAIR_ARRAY):
        raw = Codec()
        raw.pt = pt
        reg[pt] = raw
    return reg


_CODECS = _registry()


def codec_for(pt):
    """The codec of a parameter type id (KeyError for an unknown id)."""
    return _CODECS[PT(pt)]


def render_param(raw_or_value, param, *, decoded=True, **ctx):
    """render() of the codec of param.type; pass decoded=False to give the raw bytes."""
    codec = codec_for(param.type)
    value = raw_or_value if decoded else codec.decode(raw_or_value)
    return codec.render(value, param, **ctx)
