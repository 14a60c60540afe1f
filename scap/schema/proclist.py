"""Process (thread) list blocks, PL_V1 to PL_V9: one entry per thread.

Each version is the same field table filtered by the version a field first appeared in. Fields
were inserted in the middle (sid in V6, exepath in V7, vpgid in V8), not appended, so the order of
this table is the on-disk order. V9 prefixes each entry with its length and may append a tail.
"""
import struct

from construct import (
    Construct, GreedyBytes, If, Int8ul, Int32ul, Int64sl, Int64ul, Struct,
)

from .common import EntriesWhileRoom, IfRoom, LengthPrefixedEntry, Raw, lstr, remaining

# (name, construct, first version)
ENTRY_FIELDS = (
    ("tid", Int64ul, 1),
    ("pid", Int64ul, 1),
    ("ptid", Int64ul, 1),
    ("sid", Int64ul, 6),
    ("vpgid", Int64ul, 8),   # the process group; libscap's reader calls it vpgid
    ("comm", lstr, 1),
    ("exe", lstr, 1),        # argv[0]
    ("exepath", lstr, 7),
    ("args", lstr, 1),       # argv[1..], each NUL-terminated
    ("cwd", lstr, 1),
    ("fdlimit", Int64sl, 1),
    ("flags", Int32ul, 1),   # PPM_CL_* thread flags
    ("uid", Int32ul, 1),
    ("gid", Int32ul, 1),
    ("vmsize_kb", Int32ul, 2),
    ("vmrss_kb", Int32ul, 2),
    ("vmswap_kb", Int32ul, 2),
    ("pfmajor", Int64ul, 2),
    ("pfminor", Int64ul, 2),
    ("env", lstr, 3),        # "K=V\0" list
    ("vtid", Int64sl, 4),
    ("vpid", Int64sl, 4),
    ("cgroups", lstr, 4),    # "subsys=path\0" list
    ("root", lstr, 5),
)

# Libs 0.10 inserted pidns_init_start_ts and tty before loginuid. Readers tell the two layouts
# apart by the bytes left after `root`: 29 is the largest tail the old layout can have.
OLD_TAIL_MAX = 29

# V9 tail, in the libs >= 0.10 order: (name, construct, present in the old order too).
TAIL_FIELDS = (
    ("pidns_init_start_ts", Int64ul, False),
    ("tty", Int32ul, False),
    ("loginuid", Int32ul, True),
    ("exe_writable", Int8ul, True),
    ("cap_inheritable", Int64ul, True),
    ("cap_permitted", Int64ul, True),
    ("cap_effective", Int64ul, True),
    ("exe_upper_layer", Int8ul, False),
    ("exe_ino", Int64ul, False),
    ("exe_ino_ctime", Int64ul, False),
    ("exe_ino_mtime", Int64ul, False),
    ("exe_from_memfd", Int8ul, False),
    ("exe_lower_layer", Int8ul, False),
    ("pgid", Int64sl, False),
)


class TailOrder(Construct):
    """Which V9 tail layout applies: True for the libs >= 0.10 one. Occupies no bytes.

    Parsing applies the reader's rule (more than 29 bytes left after root); building picks the new
    layout when the value has pidns_init_start_ts, which only that layout carries.
    """

    def __init__(self):
        super().__init__()
        self.flagbuildnone = True

    def _parse(self, stream, context, path):
        return remaining(stream) > OLD_TAIL_MAX

    def _build(self, obj, stream, context, path):
        return context.get("pidns_init_start_ts") is not None

    def _sizeof(self, context, path):
        return 0


def _tail():
    fields = []
    for name, field, in_old_order in TAIL_FIELDS:
        field = IfRoom(field)
        fields.append(name / (field if in_old_order else If(lambda ctx: ctx._new_tail, field)))
    return fields


def process_entry(version):
    """One thread of a PL_V<version> block, as a flat Struct (V9 without its entry_len)."""
    fields = [name / field for name, field, since in ENTRY_FIELDS if version >= since]
    if version >= 9:
        # Absent tail fields parse as None (libscap's defaults: loginuid 0xFFFFFFFF, pgid -1,
        # others 0, are the reader's business); bytes beyond the known tail stay raw.
        fields += ["_new_tail" / TailOrder(), *_tail(), "rest" / Raw(GreedyBytes)]
    return Struct(*fields)


def process_list(version):
    entry = process_entry(version)
    if version >= 9:
        entry = LengthPrefixedEntry(entry, includes_self=True)
    return Struct(
        "entries" / EntriesWhileRoom(entry),
        "padding" / Raw(GreedyBytes),
    )


PROCESS_LIST = {version: process_list(version) for version in range(1, 10)}


# -- the fast path ----------------------------------------------------------------------------
# Real captures list thousands of threads, and construct parses ~6,000 entries a second. The
# same field tables, read with struct: tests hold this against the construct schema above.

_FIXED = {Int64ul: struct.Struct("<Q"), Int64sl: struct.Struct("<q"),
          Int32ul: struct.Struct("<I"), Int8ul: struct.Struct("<B")}
_U16, _U32 = struct.Struct("<H"), struct.Struct("<I")


class FastPathError(ValueError):
    """The fast parser met something only the construct schema reports properly."""


def _read_fields(data, pos, end, fields):
    out = {}
    for name, field in fields:
        if field is lstr:
            if pos + 2 > end:
                raise FastPathError(name)
            size, = _U16.unpack_from(data, pos)
            pos += 2
            if pos + size > end:
                raise FastPathError(name)
            out[name] = bytes(data[pos:pos + size])
            pos += size
        else:
            codec = _FIXED[field]
            if pos + codec.size > end:
                raise FastPathError(name)
            out[name], = codec.unpack_from(data, pos)
            pos += codec.size
    return out, pos


def _read_tail(data, pos, end, out):
    new_tail = end - pos > OLD_TAIL_MAX
    for name, field, in_old_order in TAIL_FIELDS:
        codec = _FIXED[field]
        if (in_old_order or new_tail) and end - pos >= codec.size:
            out[name], = codec.unpack_from(data, pos)
            pos += codec.size
        else:
            out[name] = None
    out["rest"] = bytes(data[pos:end])


def parse_entries(body, version):
    """The entries of a PL_V<version> block body as dicts with the keys the construct schema
    gives them; FastPathError where that schema would fail (let it say why)."""
    fields = [(name, field) for name, field, since in ENTRY_FIELDS if version >= since]
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
