"""Vectorized decoding of event records: header columns, parameter slices, nparams inference.

Every event block is 4-aligned and its record starts 10 (EV*) or 14 (EVF*) bytes in. The fixed
header of every event is copied out as one structured row, a million events at a time, and kept
in compact columns (about 27 bytes per event): a capture of millions of events must fit in
memory beside its own buffer. Everything derivable (record offset, where the length array
starts, its width) is recomputed when asked for. Parameter positions come from the per-event
length arrays, accumulated one parameter index at a time over all events at once.
"""
from dataclasses import dataclass

import numpy as np

from . import blocktypes as bt
from . import eventtable
from .errors import CorruptBlockError

V1_HEADER = 22
V2_HEADER = 26
# Old writers stored a length 3 bytes too long for these two (notification, infrastructure).
_V1_LEN_QUIRK = (280, 286)
# Event block kinds, one byte per event: bit 0 = has a flags field, bit 1 = V2 header,
# bit 2 = a _LARGE block id.
_KIND_OF = {bt.EV: 0, bt.EV_INT: 0, bt.EVF: 1, bt.EV_V2: 2, bt.EVF_V2: 3, bt.EV_V2_LARGE: 6,
            bt.EVF_V2_LARGE: 7}
_BLOCK_OF_KIND = np.zeros(8, dtype=np.uint32)
for _id, _kind in _KIND_OF.items():
    if _id != bt.EV_INT:
        _BLOCK_OF_KIND[_kind] = _id
_CHUNK = 1 << 20


@dataclass
class EventHeaders:
    """One entry per event block, in file order, in compact columns."""
    offset4: np.ndarray        # block offset / 4 (uint32; uint64 for files of 16 GiB or more)
    kind: np.ndarray           # uint8, see _KIND_OF
    cpu: np.ndarray            # uint16
    ts: np.ndarray             # uint64 ns since the epoch
    tid: np.ndarray            # int32 when every tid fits, else int64 (meta events carry -1)
    length: np.ndarray         # uint32, whole record incl. header
    type: np.ndarray           # uint16
    nparams: np.ndarray        # uint16 or uint32 (stored for V2, inferred for V1)
    flags: object = None       # uint32 dump flags of EVF blocks; None when there are none

    def __len__(self):
        return len(self.offset4)

    def take(self, index):
        return EventHeaders(**{k: (v[index] if v is not None else None)
                               for k, v in self.__dict__.items()})

    @property
    def block_offset(self):
        return self.offset4.astype(np.int64) * 4

    @property
    def block_type(self):
        return _BLOCK_OF_KIND[self.kind]

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
        libs = eventtable.libs()
        large = np.zeros(len(self), dtype=bool)
        known = self.type < len(libs.large_payload)
        large[known] = libs.large_payload[self.type[known]]
        # V1 records always have u16 lengths; the flag decides only in V2 records
        return np.where(large & ((self.kind & 2) != 0), 4, 2).astype(np.int64)

    @property
    def dump_flags(self):
        return self.flags if self.flags is not None else np.zeros(len(self), dtype=np.uint32)


# Block header + cpuid + event header, as one record per event: (offset into the block).
_ROW = 40
_V2_ROW = np.dtype({"names": ["cpu", "ts", "tid", "len", "type", "nparams"],
                    "formats": ["<u2", "<u8", "<i8", "<u4", "<u2", "<u4"],
                    "offsets": [8, 10, 18, 26, 30, 32], "itemsize": _ROW})
# EVF blocks put a u32 of dump flags before the record: everything after cpuid moves by 4.
_FLAGS_ROW = np.dtype({"names": ["cpu", "flags", "ts", "tid", "len", "type", "nparams"],
                       "formats": ["<u2", "<u4", "<u8", "<i8", "<u4", "<u2", "<u4"],
                       "offsets": [8, 10, 14, 22, 30, 34, 36], "itemsize": _ROW + 4})


def _gather_rows(buf, offsets, dtype):
    """Copy dtype.itemsize bytes at each offset into a structured array."""
    size = dtype.itemsize
    out = np.zeros(len(offsets), dtype=dtype)
    raw = out.view(np.uint8).reshape(len(offsets), size)
    inside = offsets <= len(buf) - size
    if len(buf) >= size:
        rows = np.lib.stride_tricks.as_strided(buf, shape=(len(buf) - size + 1, size),
                                               strides=(1, 1), writeable=False)
        if inside.all():
            raw[:] = rows[offsets]
        else:
            raw[inside] = rows[offsets[inside]]
    for i in np.flatnonzero(~inside):  # the last few small blocks of the file: zero-padded
        tail = bytes(buf[offsets[i]:offsets[i] + size])
        raw[i, :len(tail)] = np.frombuffer(tail, dtype=np.uint8)
    return out


def decode_headers(buf, layout, path=None):
    """Header columns of every event block in layout. Returns (EventHeaders, damage or None)."""
    off = layout.event_offsets
    n = len(off)
    kind = np.zeros(256, dtype=np.uint8)  # small lookup by the low byte of the block id
    for block_id, k in _KIND_OF.items():
        kind[block_id & 0xFF] = k
    kind = kind[(layout.event_block_types & 0xFF).astype(np.intp)]
    cpu = np.empty(n, np.uint16)
    ts = np.empty(n, np.uint64)
    tid = np.empty(n, np.int64)
    length = np.empty(n, np.uint32)
    etype = np.empty(n, np.uint16)
    nparams = np.empty(n, np.uint32)
    for lo in range(0, n, _CHUNK):
        rows = _gather_rows(buf, off[lo:lo + _CHUNK], _V2_ROW)
        for column, name in ((cpu, "cpu"), (ts, "ts"), (tid, "tid"), (length, "len"),
                             (etype, "type"), (nparams, "nparams")):
            column[lo:lo + _CHUNK] = rows[name]
    flags = None
    with_flags = np.flatnonzero(kind & 1)
    if len(with_flags):
        flags = np.zeros(n, dtype=np.uint32)
        frows = _gather_rows(buf, off[with_flags], _FLAGS_ROW)
        for column, name in ((cpu, "cpu"), (ts, "ts"), (tid, "tid"), (length, "len"),
                             (etype, "type"), (nparams, "nparams"), (flags, "flags")):
            column[with_flags] = frows[name]
    v1 = (kind & 2) == 0
    nparams[v1] = 0
    if n and tid.min() >= -(1 << 31) and tid.max() < (1 << 31):
        tid = tid.astype(np.int32)
    if n and nparams.max() <= 0xFFFF:
        nparams = nparams.astype(np.uint16)
    offset4 = off // 4
    offset4 = offset4.astype(np.uint32) if (n == 0 or offset4[-1] < 1 << 32) else \
        offset4.astype(np.uint64)
    headers = EventHeaders(offset4, kind, cpu, ts, tid, length, etype, nparams, flags)
    damage = None
    if v1.any():
        headers.nparams = headers.nparams.astype(np.uint32)
        bad = _infer_v1_nparams(buf, headers, np.flatnonzero(v1))
        if len(bad):
            first = int(bad[0])
            damage = CorruptBlockError(
                "can't work out the number of parameters of this V1 event "
                f"(type {int(etype[first])}, length {int(length[first])})",
                path=path, offset=int(off[first]), block=bt.name(int(headers.block_type[first])))
            headers = headers.take(slice(0, first))
        if len(headers) and headers.nparams.max() <= 0xFFFF:
            headers.nparams = headers.nparams.astype(np.uint16)
    bad = _check_bounds(headers, len(buf))
    if len(bad) and damage is None:
        first = int(bad[0])
        damage = CorruptBlockError(
            f"event record of length {int(headers.length[first])} does not fit its block",
            path=path, offset=int(headers.block_offset[first]),
            block=bt.name(int(headers.block_type[first])))
        headers = headers.take(slice(0, first))
    return headers, damage


def _check_bounds(h, size):
    """Indexes of events whose record or length array does not fit the data."""
    bad = []
    for lo in range(0, len(h), _CHUNK):
        c = h.take(slice(lo, lo + _CHUNK))
        record = c.record
        end = record + c.length.astype(np.int64)
        header = np.where(c.kind & 2, V2_HEADER, V1_HEADER)
        lens_end = record + header + c.nparams.astype(np.int64) * c.lens_width
        bad.append(np.flatnonzero((end > size) | (lens_end > end) | (c.length < header)) + lo)
    return np.concatenate(bad) if bad else np.zeros(0, np.int64)


def _infer_v1_nparams(buf, h, rows):
    """Set nparams of V1 events the way libscap does; return the rows where it is impossible.

    Count down from the reader's table nparams until the header, the u16 length array and the
    values add up exactly to the record length.
    """
    table = eventtable.sysdig_0293()
    etype = h.type[rows].astype(np.int64)
    length = h.length[rows].astype(np.int64)
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
    start = h.lens_start[rows]
    size = len(buf)
    result = np.full(len(rows), -1, dtype=np.int64)
    unresolved = np.ones(len(rows), dtype=bool)
    maxn = int(top.max()) if len(top) else 0
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
    h.nparams[rows] = np.where(result >= 0, result, 0).astype(h.nparams.dtype)
    return rows[result < 0]


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
