"""Process-list entries read with struct: the fast path beside the construct schema.

Real captures list thousands of threads, and construct parses ~6,000 entries a second; a
command that only needs the thread table should not even load construct. The field tables
here are the single description of an entry's layout: scap.schema.proclist builds its
construct schema from them, and tests hold the two readers against each other.
"""
import struct

# (name, type, first PL version), in on-disk order. Fields were inserted in the middle (sid
# in V6, exepath in V7, vpgid in V8), not appended. lstr: a u16 length, then the bytes.
ENTRY_LAYOUT = (
    ("tid", "u64", 1),
    ("pid", "u64", 1),
    ("ptid", "u64", 1),
    ("sid", "u64", 6),
    ("vpgid", "u64", 8),    # the process group; libscap's reader calls it vpgid
    ("comm", "lstr", 1),
    ("exe", "lstr", 1),     # argv[0]
    ("exepath", "lstr", 7),
    ("args", "lstr", 1),    # argv[1..], each NUL-terminated
    ("cwd", "lstr", 1),
    ("fdlimit", "s64", 1),
    ("flags", "u32", 1),    # PPM_CL_* thread flags
    ("uid", "u32", 1),
    ("gid", "u32", 1),
    ("vmsize_kb", "u32", 2),
    ("vmrss_kb", "u32", 2),
    ("vmswap_kb", "u32", 2),
    ("pfmajor", "u64", 2),
    ("pfminor", "u64", 2),
    ("env", "lstr", 3),     # "K=V\0" list
    ("vtid", "s64", 4),
    ("vpid", "s64", 4),
    ("cgroups", "lstr", 4),  # "subsys=path\0" list
    ("root", "lstr", 5),
)

# Libs 0.10 inserted pidns_init_start_ts and tty before loginuid. Readers tell the two layouts
# apart by the bytes left after `root`: 29 is the largest tail the old layout can have.
OLD_TAIL_MAX = 29

# V9 tail, in the libs >= 0.10 order: (name, type, present in the old order too).
TAIL_LAYOUT = (
    ("pidns_init_start_ts", "u64", False),
    ("tty", "u32", False),
    ("loginuid", "u32", True),
    ("exe_writable", "u8", True),
    ("cap_inheritable", "u64", True),
    ("cap_permitted", "u64", True),
    ("cap_effective", "u64", True),
    ("exe_upper_layer", "u8", False),
    ("exe_ino", "u64", False),
    ("exe_ino_ctime", "u64", False),
    ("exe_ino_mtime", "u64", False),
    ("exe_from_memfd", "u8", False),
    ("exe_lower_layer", "u8", False),
    ("pgid", "s64", False),
)

_FIXED = {"u64": struct.Struct("<Q"), "s64": struct.Struct("<q"), "u32": struct.Struct("<I"),
          "u8": struct.Struct("<B")}
_U16, _U32 = struct.Struct("<H"), struct.Struct("<I")


class FastPathError(ValueError):
    """The fast parser met something only the construct schema reports properly."""


def parse_entries(body, version):
    """The entries of a PL_V<version> block body as dicts with the keys the construct schema
    gives them; FastPathError where that schema would fail (let it say why)."""
    fields = [(name, kind) for name, kind, since in ENTRY_LAYOUT if version >= since]
    entries, pos, size = [], 0, len(body)
    while size - pos >= 4:
        if version < 9:
            entry, pos = _read_fields(body, pos, size, fields)
        else:
            entry_len, = _U32.unpack_from(body, pos)
            end = pos + entry_len
            if entry_len < 4 or end > size:
                raise FastPathError("entry_len")
            entry, at = _read_fields(body, pos + 4, end, fields)
            entry = {"entry_len": entry_len, **entry}
            _read_tail(body, at, end, entry)
            pos = end
        entries.append(entry)
    return entries


def _read_fields(data, pos, end, fields):
    out = {}
    for name, kind in fields:
        if kind == "lstr":
            if pos + 2 > end:
                raise FastPathError(name)
            size, = _U16.unpack_from(data, pos)
            pos += 2
            if pos + size > end:
                raise FastPathError(name)
            out[name] = bytes(data[pos:pos + size])
            pos += size
        else:
            codec = _FIXED[kind]
            if pos + codec.size > end:
                raise FastPathError(name)
            out[name], = codec.unpack_from(data, pos)
            pos += codec.size
    return out, pos


def _read_tail(data, pos, end, out):
    new_tail = end - pos > OLD_TAIL_MAX
    for name, kind, in_old_order in TAIL_LAYOUT:
        codec = _FIXED[kind]
        if (in_old_order or new_tail) and end - pos >= codec.size:
            out[name], = codec.unpack_from(data, pos)
            pos += codec.size
        else:
            out[name] = None
    out["rest"] = bytes(data[pos:end])
