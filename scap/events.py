"""Vectorized decoding of event records: header columns, parameter slices, nparams inference.

Every event block is 4-aligned and its record starts 10 (EV*) or 14 (EVF*) bytes in, so every
header field sits at an even offset: one uint16 view of the buffer gathers them all. Parameter
positions come from the per-event length arrays, accumulated one parameter index at a time
over all events at once.
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


@dataclass
class EventHeaders:
    """One entry per event block, in file order."""
    block_offset: np.ndarray   # int64
    block_type: np.ndarray     # uint32 (canonical id)
    record: np.ndarray         # int64 offset of the event record
    cpu: np.ndarray            # uint16
    dump_flags: np.ndarray     # uint32 (EVF blocks; 0 otherwise)
    ts: np.ndarray             # uint64 ns since the epoch
    tid: np.ndarray            # int64 (meta events carry -1)
    length: np.ndarray         # uint32, whole record incl. header
    type: np.ndarray           # uint16
    nparams: np.ndarray        # int64 (stored for V2, inferred for V1)
    lens_start: np.ndarray     # int64 offset of the length array
    lens_width: np.ndarray     # int64, 2 or 4 bytes per length

    def __len__(self):
        return len(self.block_offset)

    def take(self, index):
        return EventHeaders(**{k: v[index] for k, v in self.__dict__.items()})


# Block header + cpuid + event header, as one record per event: (offset into the block).
_ROW = 40
_V2_ROW = np.dtype({"names": ["cpu", "ts", "tid", "len", "type", "nparams"],
                    "formats": ["<u2", "<u8", "<i8", "<u4", "<u2", "<u4"],
                    "offsets": [8, 10, 18, 26, 30, 32], "itemsize": _ROW})
# EVF blocks put a u32 of dump flags before the record: everything after cpuid moves by 4.
_FLAGS_ROW = np.dtype({"names": ["cpu", "flags", "ts", "tid", "len", "type", "nparams"],
                       "formats": ["<u2", "<u4", "<u8", "<i8", "<u4", "<u2", "<u4"],
                       "offsets": [8, 10, 14, 22, 30, 34, 36], "itemsize": _ROW + 4})
_GATHER_ROWS = 1 << 20


def _gather_rows(buf, offsets, dtype):
    """Copy dtype.itemsize bytes at each offset into a structured array (bounded temporaries)."""
    size = dtype.itemsize
    out = np.zeros(len(offsets), dtype=dtype)
    raw = out.view(np.uint8).reshape(len(offsets), size)
    inside = offsets <= len(buf) - size
    if len(buf) >= size:
        rows = np.lib.stride_tricks.as_strided(buf, shape=(len(buf) - size + 1, size),
                                               strides=(1, 1), writeable=False)
        where = np.flatnonzero(inside)
        for lo in range(0, len(where), _GATHER_ROWS):
            sel = where[lo:lo + _GATHER_ROWS]
            raw[sel] = rows[offsets[sel]]
    for i in np.flatnonzero(~inside):  # the last few small blocks of the file: zero-padded
        tail = bytes(buf[offsets[i]:offsets[i] + size])
        raw[i, :len(tail)] = np.frombuffer(tail, dtype=np.uint8)
    return out


def decode_headers(buf, layout, path=None):
    """Header columns of every event block in layout. Returns (EventHeaders, damage or None)."""
    off = layout.event_offsets
    canon = layout.event_block_types.copy()
    canon[canon == bt.EV_INT] = bt.EV
    has_flags = np.isin(canon, [bt.EVF, bt.EVF_V2, bt.EVF_V2_LARGE])
    v2 = np.isin(canon, [bt.EV_V2, bt.EVF_V2, bt.EV_V2_LARGE, bt.EVF_V2_LARGE])
    rows = _gather_rows(buf, off, _V2_ROW)
    cpu, ts, tid = rows["cpu"], rows["ts"], rows["tid"]
    length, etype, nparams = rows["len"], rows["type"], rows["nparams"].astype(np.int64)
    dump_flags = np.zeros(len(off), dtype=np.uint32)
    if has_flags.any():
        cpu, ts, tid, length, etype = (np.array(a) for a in (cpu, ts, tid, length, etype))
        sel = np.flatnonzero(has_flags)
        frows = _gather_rows(buf, off[sel], _FLAGS_ROW)
        for column, name in ((cpu, "cpu"), (ts, "ts"), (tid, "tid"), (length, "len"),
                             (etype, "type")):
            column[sel] = frows[name]
        dump_flags[sel] = frows["flags"]
        nparams[sel] = frows["nparams"]
    nparams[~v2] = 0
    record = off + 10 + 4 * has_flags.astype(np.int64)
    libs = eventtable.libs()
    large = np.zeros(len(off), dtype=bool)
    known = etype < len(libs.large_payload)
    large[known] = libs.large_payload[etype[known]]
    lens_width = np.where(large, 4, 2).astype(np.int64)
    lens_start = record + np.where(v2, V2_HEADER, V1_HEADER)
    headers = EventHeaders(off, canon, record, np.ascontiguousarray(cpu), dump_flags,
                           np.ascontiguousarray(ts), np.ascontiguousarray(tid),
                           np.ascontiguousarray(length), np.ascontiguousarray(etype),
                           nparams, lens_start, lens_width)
    damage = None
    v1 = ~v2
    if v1.any():
        bad = _infer_v1_nparams(buf, headers, np.flatnonzero(v1))
        if len(bad):
            first = int(bad[0])
            damage = CorruptBlockError(
                "can't work out the number of parameters of this V1 event "
                f"(type {int(etype[first])}, length {int(length[first])})",
                path=path, offset=int(off[first]), block=bt.name(int(canon[first])))
            headers = headers.take(slice(0, first))
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
    end = h.record + h.length.astype(np.int64)
    lens_end = h.lens_start + h.nparams * h.lens_width
    return np.flatnonzero((end > size) | (lens_end > end) |
                          (h.length < np.where(h.lens_start - h.record == V2_HEADER,
                                               V2_HEADER, V1_HEADER)))


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
    h.nparams[rows] = np.where(result >= 0, result, 0)
    return rows[result < 0]


def param_slices(buf, h, index):
    """(offsets, lengths, present) of parameter number `index` (an int, or one per event; -1 = none).

    present is False where the event has fewer parameters, or the value would not fit.
    """
    n = len(h)
    index = np.broadcast_to(np.asarray(index, dtype=np.int64), (n,))
    present = (index >= 0) & (index < h.nparams)
    top = int(index[present].max()) if present.any() else -1
    values_start = h.lens_start + h.nparams * h.lens_width
    offset = values_start.copy()
    length = np.zeros(n, dtype=np.int64)
    size = len(buf)
    wide = h.lens_width == 4
    for k in range(top + 1):
        active = present & (index >= k)
        if not active.any():
            break
        rows = np.flatnonzero(active)
        pos = h.lens_start[rows] + k * h.lens_width[rows]
        val = buf[pos].astype(np.int64) | (buf[pos + 1].astype(np.int64) << 8)
        w = wide[rows]
        if w.any():
            p = pos[w]
            val[w] |= (buf[p + 2].astype(np.int64) << 16) | (buf[p + 3].astype(np.int64) << 24)
        at_k = index[rows] == k
        length[rows[at_k]] = val[at_k]
        offset[rows[~at_k]] += val[~at_k]
    end = offset + length
    present &= end <= np.minimum(h.record + h.length.astype(np.int64), size)
    offset = np.where(present, offset, 0)
    length = np.where(present, length, 0)
    return offset, length, present
