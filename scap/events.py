"""Vectorized decoding of event records: header columns, parameter slices, nparams inference.

Every event block is 4-aligned and its record starts 10 (EV*) or 14 (EVF*) bytes in. The fixed
header fields are gathered one column at a time, each when first needed, and kept in compact
columns (21 bytes per event): a capture of millions of events must fit in memory beside its own
buffer. Whatever can be read again from the buffer (record length, parameter count of V2
records) or derived (record offset, length-array position and width) is recomputed when asked
for. Parameter positions come from the per-event length arrays, accumulated one
parameter index at a time over all events at once.
"""
import numpy as np

from . import blocktypes as bt
from . import eventtable
from .errors import CorruptBlockError
from .scan import BLOCK_ID_OF_KIND, length_widths, unaligned_view

V1_HEADER = 22
V2_HEADER = 26
# More parameters than any event table gives an event (libs: 32): only unknown ids, whose
# every u16 is a candidate length, have more candidate counts.
_TABLE_NPARAMS_MAX = 32
# Old writers stored a length 3 bytes too long for these two (notification, infrastructure).
_V1_LEN_QUIRK = (280, 286)
_CHUNK = 1 << 20


class EventHeaders:
    """One entry per event block, in file order, in compact columns over the capture buffer.

    cpu, ts and tid are read from the buffer the first time they are asked for (a filter on
    the event type or a few rows never needs them for millions of events); a column given
    as None is read that way."""

    _COLUMNS = ("offset4", "kind", "cpu", "ts", "tid", "type", "flags", "v1_nparams")
    _LAZY = ("cpu", "ts", "tid")

    def __init__(self, buffer, offset4, kind, cpu=None, ts=None, tid=None, type=None,
                 flags=None, v1_nparams=None):
        self.buffer = buffer        # the uncompressed capture (uint8)
        self.offset4 = offset4      # block offset / 4 (uint32; uint64 from 16 GiB)
        self.kind = kind            # uint8, see blocktypes.KIND_OF
        self._cpu = cpu             # uint8 when every cpu number fits, else uint16
        self._ts = ts               # uint64 ns since the epoch
        self._tid = tid             # int32 when every tid fits, else int64 (meta events: -1)
        self.type = type            # uint16
        self.flags = flags          # uint32 dump flags of EVF blocks; None when there are none
        self.v1_nparams = v1_nparams  # uint16 inferred parameter counts; None without V1

    def _lazy(self, name):
        column = self.__dict__["_" + name]
        if column is None:
            column = _read_column(self.buffer, self.offset4, self.kind, name)
            self.__dict__["_" + name] = column
        return column

    cpu = property(lambda self: self._lazy("cpu"))
    ts = property(lambda self: self._lazy("ts"))
    tid = property(lambda self: self._lazy("tid"))

    def _loaded(self, name):
        """Column `name` as held now: None for a lazy column not read yet."""
        return self.__dict__["_" + name] if name in self._LAZY else getattr(self, name)

    def values_at(self, name, rows):
        """Column `name` ('cpu', 'ts', 'tid', 'type') at some rows: read for those rows
        alone while the whole column has not been needed."""
        column = self._loaded(name)
        if column is not None:
            return column[rows]
        rows = np.asarray(rows, dtype=np.int64)
        return _read_column(self.buffer, self.offset4[rows], self.kind[rows], name)

    def __len__(self):
        return len(self.offset4)

    def take(self, index):
        def part(name):
            column = self._loaded(name)
            return column[index] if column is not None else None
        return EventHeaders(self.buffer, **{k: part(k) for k in self._COLUMNS})

    @property
    def block_offset(self):
        return self.offset4.astype(np.int64) * 4

    @property
    def block_type(self):
        return BLOCK_ID_OF_KIND[self.kind]

    @property
    def has_flags(self):
        return (self.kind & 1).astype(bool)

    @property
    def is_v2(self):
        return (self.kind & 2).astype(bool)

    @property
    def record(self):
        return self.block_offset + 10 + 4 * (self.kind & 1).astype(np.int64)

    @property
    def lens_start(self):
        return self.record + np.where(self.kind & 2, V2_HEADER, V1_HEADER)

    @property
    def lens_width(self):
        # V1 records always have u16 lengths; the type decides only in V2 records
        return np.where(self.kind & 2, length_widths()[self.type], 2).astype(np.int64)

    @property
    def length(self):
        """Record length (uint32), read again from the buffer."""
        return _gather_u32(self.buffer, self.record + 16)

    @property
    def nparams(self):
        """Parameter count (uint32): stored in V2 records, inferred for V1 ones."""
        v2 = (self.kind & 2) != 0
        out = np.zeros(len(self), dtype=np.uint32)
        out[v2] = _gather_u32(self.buffer, self.record[v2] + 22)
        if self.v1_nparams is not None:
            out[~v2] = self.v1_nparams[~v2]
        return out

    @property
    def dump_flags(self):
        return self.flags if self.flags is not None else np.zeros(len(self), dtype=np.uint32)


def _gather_u32(buf, offsets):
    """Little-endian u32 at even offsets (every header field is at an even offset)."""
    words = buf[: len(buf) // 2 * 2].view("<u2")
    at = offsets // 2
    return words[at].astype(np.uint32) | (words[at + 1].astype(np.uint32) << np.uint32(16))


# Where each header field sits in an event block (byte offset into the block, dtype). EVF
# blocks put a u32 of dump flags before the record: everything after cpuid moves by 4.
_V2_FIELDS = {"cpu": (8, "<u2"), "ts": (10, "<u8"), "tid": (18, "<i8"), "len": (26, "<u4"),
              "type": (30, "<u2"), "nparams": (32, "<u4")}
_FLAGS_FIELDS = {"cpu": (8, "<u2"), "flags": (10, "<u4"), "ts": (14, "<u8"), "tid": (22, "<i8"),
                 "len": (30, "<u4"), "type": (34, "<u2"), "nparams": (36, "<u4")}
_ROWS_CHUNK = 1 << 16  # small enough that the temporaries are recycled, not page-faulted anew


def _gather_fields(buf, offsets, fields, names=None):
    """{field: values} of the header fields at each block offset, one column at a time
    (a gather of one plain column is several times faster than of a structured row). Blocks
    too close to the end of the data read as zero-padded."""
    names = names or fields
    views = {}
    inside = offsets <= len(buf) - 40
    out = {}
    for name in names:
        at, dtype = fields[name]
        view = views.setdefault(dtype, unaligned_view(buf, dtype))
        size = np.dtype(dtype).itemsize
        if inside.all():
            out[name] = view[offsets + at]
            continue
        values = np.zeros(len(offsets), dtype=dtype)
        fits = offsets + at + size <= len(buf)
        values[fits] = view[offsets[fits] + at]
        for i in np.flatnonzero(~fits):  # the last small block of the file
            tail = bytes(buf[offsets[i] + at:offsets[i] + at + size]).ljust(size, b"\0")
            values[i] = np.frombuffer(tail, dtype=dtype)[0]
        out[name] = values
    return out


# Column dtypes: the compact one, and the one used when some value does not fit it.
_DTYPES = {"cpu": (np.uint8, np.uint16), "tid": (np.int32, np.int64), "ts": (np.uint64, None),
           "type": (np.uint16, None)}


def _fits(values, dtype):
    if not len(values) or np.dtype(dtype) == values.dtype:
        return True
    info = np.iinfo(dtype)
    return values.min() >= info.min and values.max() <= info.max


def _read_column(buf, off4, kind, name):
    """One header field of every event block, gathered from the buffer a chunk at a time
    (EVF blocks, with their flags field, are read again at their own offsets)."""
    compact, wide = _DTYPES[name]
    out = np.empty(len(off4), dtype=compact)

    def store(at, values):
        nonlocal out
        if wide is not None and out.dtype == compact and not _fits(values, compact):
            out = out.astype(wide)  # widened once, for the rest of the column
        out[at] = values

    for lo in range(0, len(off4), _ROWS_CHUNK):
        block = off4[lo:lo + _ROWS_CHUNK].astype(np.int64) * 4
        store(slice(lo, lo + len(block)), _gather_fields(buf, block, _V2_FIELDS, [name])[name])
    flagged = np.flatnonzero(kind & 1)
    if len(flagged):
        store(flagged, _gather_fields(buf, off4[flagged].astype(np.int64) * 4, _FLAGS_FIELDS,
                                      [name])[name])
    return out


def decode_headers(buf, layout, path=None):
    """Header columns of every event block in layout. Returns (EventHeaders, damage or None).

    Events whose record does not fit the data, or whose V1 parameter count cannot be worked
    out, end the readable part of the capture (libscap stops there too); that is the damage.
    Only the fields that check needs are read here; cpu, ts and tid are read on first use.
    """
    off4 = layout.event_offsets4
    n = len(off4)
    kind = layout.event_kinds
    etype = layout.event_types
    if etype is None or len(etype) != n:
        etype = _read_column(buf, off4, kind, "type")
    # the bulk scan checked the plain V2 records as it went (scan._record_fields)
    first_bad = layout.first_misfit
    if first_bad is None:
        first_bad = _first_misfit(buf, off4, kind, etype)
    flags = None
    with_flags = np.flatnonzero(kind & 1)
    if len(with_flags):
        flags = np.zeros(n, dtype=np.uint32)
        flags[with_flags] = _gather_fields(buf, off4[with_flags].astype(np.int64) * 4,
                                           _FLAGS_FIELDS, ["flags"])["flags"]
    headers = EventHeaders(buf, off4, kind, type=etype, flags=flags, tid=layout.event_tids)
    # reading stops at the first event that cannot be read, whichever check finds it (and
    # so the same whether the events come all at once or in a stream reader's chunks)
    first_v1_bad = n
    v1 = np.flatnonzero((kind & 2) == 0)
    if len(v1):
        headers.v1_nparams = np.zeros(n, dtype=np.uint16)
        bad = _infer_v1_nparams(buf, headers, v1)
        if len(bad):
            first_v1_bad = int(bad[0])
    # EVF and V1 records are rare: check them the general way
    others = np.flatnonzero(headers.kind != 2)
    bad = others[_check_bounds(headers.take(others), len(buf))] if len(others) else others
    if len(bad):
        first_bad = min(first_bad, int(bad[0]))
    if first_v1_bad < n and first_v1_bad <= first_bad:
        first = first_v1_bad
        damage = CorruptBlockError(
            "can't work out the number of parameters of this V1 event "
            f"(type {int(etype[first])}, length {int(headers.take([first]).length[0])})",
            path=path, offset=int(off4[first]) * 4,
            block=bt.name(int(headers.block_type[first])))
    elif first_bad < n:
        first = first_bad
        one = headers.take([first])
        damage = CorruptBlockError(
            f"event record of length {int(one.length[0])} does not fit its block",
            path=path, offset=int(one.block_offset[0]), block=bt.name(int(one.block_type[0])))
    else:
        return headers, None
    return headers.take(slice(0, first)), damage


def _first_misfit(buf, off4, kind, etype):
    """The first plain V2 record (kind 2) whose record or length array does not fit the
    data, or the number of events: libscap stops reading there."""
    for lo in range(0, len(off4), _ROWS_CHUNK):
        sl = slice(lo, lo + _ROWS_CHUNK)
        plain_v2 = kind[sl] == 2
        if not plain_v2.any():
            continue
        block = off4[sl].astype(np.int64) * 4
        rows = _gather_fields(buf, block, _V2_FIELDS, ["len", "nparams"])
        record = block + 10
        end = record + rows["len"]
        lens_end = record + V2_HEADER + rows["nparams"].astype(np.int64) * \
            length_widths()[etype[sl]]
        bad = plain_v2 & ((end > len(buf)) | (lens_end > end) | (rows["len"] < V2_HEADER))
        if bad.any():
            return lo + int(np.argmax(bad))
    return len(off4)


def _check_bounds(h, size):
    """Indexes of events whose record or length array does not fit the data."""
    bad = []
    for lo in range(0, len(h), _CHUNK):
        c = h.take(slice(lo, lo + _CHUNK))
        record = c.record
        end = record + 20
        fits = end <= size  # the record's length field itself must be readable
        length = np.zeros(len(c), dtype=np.int64)
        length[fits] = c.take(fits).length
        end = record + length
        header = np.where(c.kind & 2, V2_HEADER, V1_HEADER)
        nparams = np.zeros(len(c), dtype=np.int64)
        v2_fits = fits & ((c.kind & 2) != 0) & (record + V2_HEADER <= size)
        readable = v2_fits | (fits & ((c.kind & 2) == 0))
        nparams[readable] = c.take(readable).nparams
        lens_end = record + header + nparams * c.lens_width
        bad.append(np.flatnonzero(~readable | (end > size) | (lens_end > end) |
                                  (length < header)) + lo)
    return np.concatenate(bad) if bad else np.zeros(0, np.int64)


def _infer_v1_nparams(buf, h, rows):
    """Set nparams of V1 events the way libscap does; return the rows where it is impossible.

    Count down from the reader's table nparams until the header, the u16 length array and the
    values add up exactly to the record length.
    """
    table = eventtable.sysdig_0293()
    etype = h.type[rows].astype(np.int64)
    length = h.take(rows).length.astype(np.int64)
    length = np.where(np.isin(etype, _V1_LEN_QUIRK), length - 3, length)
    top = np.zeros(len(rows), dtype=np.int64)
    known = etype < len(table.nparams)
    top[known] = table.nparams[etype[known]]
    libs = eventtable.libs()
    newer = ~known & (etype < len(libs.nparams))
    top[newer] = libs.nparams[etype[newer]]
    # an id no table knows: every u16 that could be a length is a candidate
    unknown = ~known & ~newer
    top[unknown] = np.maximum(length[unknown] - V1_HEADER, 0) // 2
    start = h.take(rows).lens_start
    size = len(buf)
    result = np.full(len(rows), -1, dtype=np.int64)
    # an unknown id claiming a long record has that many candidates: counted one by one,
    # so that its candidates do not become a column for every event (a damaged capture)
    wide = np.flatnonzero(top > _TABLE_NPARAMS_MAX)
    for i in wide:
        result[i] = _count_down(buf, int(start[i]), int(length[i]), int(top[i]))
    top[wide] = -1
    unresolved = top >= 0
    maxn = max(int(top.max()), 0) if len(top) else 0
    # sums[k] = 22 + 2k + sum of the first k lengths, for every event (NaN-free: -1 = unreadable)
    sums = np.full((maxn + 1, len(rows)), -1, dtype=np.int64)
    running = np.full(len(rows), V1_HEADER, dtype=np.int64)
    readable = np.ones(len(rows), dtype=bool)
    sums[0] = running
    for k in range(1, maxn + 1):
        pos = start + 2 * (k - 1)
        readable &= (pos + 2 <= start - V1_HEADER + length) & (pos + 2 <= size)
        val = np.zeros(len(rows), dtype=np.int64)
        idx = np.flatnonzero(readable)
        val[idx] = buf[pos[idx]].astype(np.int64) | (buf[pos[idx] + 1].astype(np.int64) << 8)
        running = running + 2 + val
        sums[k] = np.where(readable, running, -1)
    for n in range(maxn, -1, -1):
        cand = unresolved & (top >= n)
        if not cand.any():
            continue
        total = sums[n]
        hit = cand & (total == length)
        result[hit] = n
        unresolved &= ~hit
        # a readable candidate that falls short of the length is fatal, as in libscap
        short = cand & ~hit & (total >= 0) & (total < length)
        unresolved &= ~short
    h.v1_nparams[rows] = np.where(result >= 0, result, 0)
    return rows[result < 0]


def _count_down(buf, start, length, top):
    """The inference above for one event: the largest count (at most top) whose header, u16
    lengths and values add up to `length`, readable within the record and the data; -1 if
    a readable count falls short of it first, or none is found."""
    limit = min(start - V1_HEADER + length, len(buf))
    count = min(top, max(0, (limit - start) // 2))
    lens = np.frombuffer(buf, dtype="<u2", count=count, offset=start) if count else \
        np.zeros(0, np.uint16)
    sums = V1_HEADER + 2 * np.arange(count + 1) + np.r_[0, np.cumsum(lens, dtype=np.int64)]
    n = int(np.searchsorted(sums, length, side="right")) - 1  # sums only grow
    return n if n >= 0 and sums[n] == length else -1


def param_slices(buf, h, index):
    """(offsets, lengths, present) of parameter number `index` (an int, or one per event; -1 = none).

    present is False where the event has fewer parameters, or the value would not fit.
    Works a million events at a time to bound its temporaries.
    """
    n = len(h)
    index = np.broadcast_to(np.asarray(index, dtype=np.int64), (n,))
    offsets = np.zeros(n, dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    present = np.zeros(n, dtype=bool)
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        offsets[sl], lengths[sl], present[sl] = _param_slices_chunk(buf, h.take(sl), index[sl])
    return offsets, lengths, present


def _param_slices_chunk(buf, h, index):
    n = len(h)
    nparams = h.nparams.astype(np.int64)
    present = (index >= 0) & (index < nparams)
    top = int(index[present].max()) if present.any() else -1
    lens_start = h.lens_start
    width = h.lens_width
    offset = lens_start + nparams * width
    length = np.zeros(n, dtype=np.int64)
    wide = width == 4
    for k in range(top + 1):
        rows = np.flatnonzero(present & (index >= k))
        if not len(rows):
            break
        pos = lens_start[rows] + k * width[rows]
        val = buf[pos].astype(np.int64) | (buf[pos + 1].astype(np.int64) << 8)
        w = wide[rows]
        if w.any():
            p = pos[w]
            val[w] |= (buf[p + 2].astype(np.int64) << 16) | (buf[p + 3].astype(np.int64) << 24)
        at_k = index[rows] == k
        length[rows[at_k]] = val[at_k]
        offset[rows[~at_k]] += val[~at_k]
    present &= offset + length <= np.minimum(h.record + h.length.astype(np.int64), len(buf))
    return np.where(present, offset, 0), np.where(present, length, 0), present
