"""Process (thread) list blocks, PL_V1 to PL_V9: one entry per thread.

Each version is the same field table filtered by the version a field first appeared in. Fields
were inserted in the middle (sid in V6, exepath in V7, vpgid in V8), not appended, so the order of
this table is the on-disk order. V9 prefixes each entry with its length and may append a tail.
"""
from construct import (
    Construct, GreedyBytes, If, Int8ul, Int32ul, Int64sl, Int64ul, Struct,
)

from .common import EntriesWhileRoom, IfRoom, LengthPrefixedEntry, Raw, lstr, remaining

from scaptool.scap.process_entries import ENTRY_LAYOUT, OLD_TAIL_MAX, TAIL_LAYOUT, \
    FastPathError, parse_entries  # noqa: F401 - the fast path, re-exported beside the schema

_CONSTRUCTS = {"u64": Int64ul, "s64": Int64sl, "u32": Int32ul, "u8": Int8ul, "lstr": lstr}
# (name, construct, first version), from the layout scap.process_entries describes
ENTRY_FIELDS = tuple((name, _CONSTRUCTS[kind], since) for name, kind, since in ENTRY_LAYOUT)
# V9 tail, in the libs >= 0.10 order: (name, construct, present in the old order too).
TAIL_FIELDS = tuple((name, _CONSTRUCTS[kind], old) for name, kind, old in TAIL_LAYOUT)


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
