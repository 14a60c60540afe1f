"""Event blocks (EV, EVF, EV_V2, EVF_V2, EV_V2_LARGE, EVF_V2_LARGE) and the event record.

Body: cpuid, [flags], the record (header, lengths array, params), zero padding to a 4-byte
boundary counted from the block start, then anything up to the trailer (pcapng options).

Two facts about a record come from the event table rather than the file, so they are looked up
through callables that parse()/build() accept as keywords:
- `is_large(type) -> bool`: params lengths are u32 instead of u16 (EF_LARGE_PAYLOAD). The flag of
  the type decides, not the block type; default: the libs table.
- `table_nparams(type) -> int | None`: where the V1 nparams search starts (V1 records do not store
  nparams); default: the sysdig 0.29.3 table, which fits every V1 file seen.
"""
from construct import (
    Array, Bytes, Construct, GreedyBytes, IfThenElse, Int16ul, Int32ul, Int64ul, Rebuild, Struct,
    len_, this,
)
from construct.core import ExplicitError, stream_seek, stream_tell

from .common import Filler, Raw, option, remaining

HEADER_SIZE = {1: 22, 2: 26}

# NOTIFICATION_E and INFRASTRUCTURE_EVENT_E: old writers stored a len 3 bytes too long.
V1_LEN_QUIRK_TYPES = (280, 286)
V1_LEN_QUIRK = 3


def _eventtable():
    # Imported late: the event table is optional for everything but event records, and is
    # written alongside this module.
    from scaptool.scap import eventtable
    return eventtable


def default_is_large(event_type):
    table = _eventtable().libs()
    return event_type in table and table[event_type].large_payload


def default_table_nparams(event_type):
    et = _eventtable()
    for table in (et.sysdig_0293(), et.libs()):
        if event_type in table:
            return table[event_type].nparams
    return None


def _is_large(ctx):
    return bool(option(ctx, "is_large", default_is_large)(ctx.type))


def _length_width(version):
    if version == 1:
        return lambda ctx: 2   # V1 predates EF_LARGE_PAYLOAD: always u16
    return lambda ctx: 4 if _is_large(ctx) else 2


def _record_len(version):
    width = _length_width(version)

    def record_len(ctx):
        params = ctx.params
        extra = ctx.get("extra")
        if extra is None:
            extra = _default_extra(version)(ctx)
        return (HEADER_SIZE[version] + width(ctx) * len(params) + sum(map(len, params))
                + len(extra))
    return record_len


def _default_extra(version):
    if version == 1:
        return lambda ctx: bytes(V1_LEN_QUIRK if ctx.type in V1_LEN_QUIRK_TYPES else 0)
    return lambda ctx: b""


def _extra_size(version):
    width = _length_width(version)

    def extra_size(ctx):
        return ctx.len - HEADER_SIZE[version] - width(ctx) * len(ctx.lens) - sum(ctx.lens)
    return extra_size


class V1ParamCount(Construct):
    """nparams of a V1 record, inferred as libscap does; it occupies no bytes.

    Counting down from the table's nparams, the first count whose lengths array fits and whose
    lengths add up to no more than the record is the answer if they add up exactly, and a corrupt
    record otherwise.
    """

    def __init__(self):
        super().__init__()
        self.flagbuildnone = True

    def _parse(self, stream, context, path):
        target = context.len - HEADER_SIZE[1]
        if context.type in V1_LEN_QUIRK_TYPES:
            target -= V1_LEN_QUIRK
        start = option(context, "table_nparams", default_table_nparams)(context.type)
        if start is None:
            start = max(target, 0) // 2
        offset = stream_tell(stream, path)
        peek = stream.read(max(2 * start, 0))
        stream_seek(stream, offset, 0, path)
        for count in range(start, -1, -1):
            if 2 * count > min(target, len(peek)):
                continue
            lens = [int.from_bytes(peek[2 * i:2 * i + 2], "little") for i in range(count)]
            used = 2 * count + sum(lens)
            if used > target:
                continue
            if used == target:
                return count
            break
        raise ExplicitError(
            f"corrupted V1 event (type {context.type}, len {context.len}): "
            "cannot calculate nparams", path=path)

    def _build(self, obj, stream, context, path):
        return len(context.params)

    def _sizeof(self, context, path):
        return 0


def event_record_fields(version):
    """The record: header, lengths array, params; `extra` holds bytes that len claims beyond the
    params (the V1 quirk above; empty in every V2 record seen)."""
    width = _length_width(version)
    lens = IfThenElse(lambda ctx: width(ctx) == 4,
                      Array(this.nparams, Int32ul), Array(this.nparams, Int16ul))
    return [
        "ts" / Int64ul,
        "tid" / Int64ul,
        "len" / Rebuild(Int32ul, _record_len(version)),
        "type" / Int16ul,
        "nparams" / (V1ParamCount() if version == 1 else Rebuild(Int32ul, len_(this.params))),
        "lens" / Rebuild(lens, lambda ctx: [len(p) for p in ctx.params]),
        "params" / Array(this.nparams, Bytes(lambda ctx: ctx.lens[ctx._index])),
        "extra" / Raw(Bytes(_extra_size(version)), _default_extra(version)),
    ]


def _padding_size(ctx):
    # Counted from the block start; the flags field does not change alignment. libscap never
    # reads the padding, so a body that stops short of it still parses (and rebuilds as found).
    size = -(2 + ctx.len) % 4
    return min(size, remaining(ctx._io)) if ctx._parsing else size


def event_body(version, has_flags):
    fields = ["cpuid" / Int16ul]
    if has_flags:
        fields.append("flags" / Int32ul)   # scap_dump_flags: 1 = state only (fatfile)
    fields += event_record_fields(version)
    fields += [
        "padding" / Filler(_padding_size),
        "options" / Raw(GreedyBytes),
    ]
    return Struct(*fields)


EVENT_HEADER = {
    1: Struct("ts" / Int64ul, "tid" / Int64ul, "len" / Int32ul, "type" / Int16ul),
    2: Struct("ts" / Int64ul, "tid" / Int64ul, "len" / Int32ul, "type" / Int16ul,
              "nparams" / Int32ul),
}

EVENT_BODY = {(version, has_flags): event_body(version, has_flags)
              for version in (1, 2) for has_flags in (False, True)}
