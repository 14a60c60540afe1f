"""Find every block of a capture without running Python code per event block.

Metadata blocks (a few per section) are walked one by one. The event phase is found in bulk:
every 4-aligned word that holds an event-block id, followed by a length whose trailer word
matches, is a candidate block start; where consecutive candidates tile the stream exactly,
the chain is trusted as a whole. Only where tiling breaks (a false candidate inside some
event's data, a new section, damage) do we walk block by block, and only across the break.
"""
import functools
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from . import blocktypes as bt
from .errors import CorruptBlockError, NotAScapError, ScapWarning, TruncatedError, \
    UnsupportedVersionError

BYTE_ORDER_MAGIC = 0x1A2B3C4D
_EVENT_IDS = np.array(sorted(bt.EVENT_BLOCKS) + [bt.EV_INT], dtype=np.uint32)
_PCAPNG_NETWORK = {1, 2, 3, 5, 6, 0xBAD, 0x40000BAD}  # IDB, PB, SPB, ISB, EPB, custom


@dataclass
class Section:
    offset: int                    # of its SHB
    version: tuple                 # (major, minor)
    metadata: list = field(default_factory=list)  # (offset, block_type, total_length)
    first_event: int = 0           # index into the event arrays


@dataclass
class Layout:
    sections: list
    event_offsets4: np.ndarray     # byte offset / 4 of each event block (uint32, or uint64)
    event_kinds: np.ndarray        # uint8 kind of each event block (blocktypes.KIND_OF)
    end: int                       # bytes understood; == len(buffer) unless damaged
    damage: object = None          # the ScapError that stopped reading early, if any
    event_types: object = None     # uint16 event type of each block, when the scan saw them
    # Seen by the bulk scan while each chunk is in cache (None where it did not run): the
    # thread id of every event (int32 where every tid fits), and the index of the first
    # plain V2 record that does not fit its data, or the number of events (the other block
    # kinds are left to decode_headers).
    event_tids: object = None
    first_misfit: object = None

    @property
    def event_offsets(self):
        return self.event_offsets4.astype(np.int64) * 4

    @property
    def event_block_types(self):
        return BLOCK_ID_OF_KIND[self.event_kinds]


def scan(buf, path=None):
    """Return the Layout of buf (uint8 array of the uncompressed stream)."""
    words = buf[: len(buf) // 4 * 4].view("<u4")
    size = len(buf)
    if size < 12 or int(words[0]) != bt.SHB:
        what = "empty input" if size == 0 else "no section header block at the start"
        raise NotAScapError(f"not a scap capture: {what}", path=path, offset=0)
    sections, offsets, types, event_types, extras = [], [], [], [], []
    pos, damage = 0, None
    while pos < size:
        try:
            section, pos = _read_section_header(buf, words, pos, path, len(sections))
        except (CorruptBlockError, TruncatedError) as e:
            if not sections:
                raise
            damage = e
            break
        section.first_event = sum(len(o) for o in offsets)
        sections.append(section)
        if pos >= size:
            break
        ev_off, ev_types, pos, damage, etypes, extra = _event_run(buf, words, pos, path)
        extras.append(extra)
        offsets.append(ev_off)
        types.append(ev_types)
        event_types.append(etypes)
        if damage is not None or pos >= size:
            break
    if damage is not None:
        warnings.warn(ScapWarning(f"{damage}; keeping everything before it"), stacklevel=3)
    hint = None
    tids = first_misfit = None
    if len(offsets) == 1:
        ev_off4, ev_types, hint = offsets[0], types[0], event_types[0]
        if extras[0] is not None:
            tids, first_misfit = extras[0]
    else:
        ev_off4 = np.concatenate(offsets) if offsets else np.zeros(0, np.uint32)
        ev_types = np.concatenate(types) if types else np.zeros(0, np.uint8)
        if offsets and all(t is not None for t in event_types):
            hint = np.concatenate(event_types)
    if len(ev_types) and (ev_types == ev_types[0]).all():
        # the usual capture has one kind of event block: one byte, seen n times, costs nothing
        ev_types = np.broadcast_to(ev_types[:1].copy(), ev_types.shape)
    return Layout(sections, ev_off4, ev_types, pos if damage else size, damage, hint, tids,
                  first_misfit)


def _header(buf, words, pos, path):
    if pos + 8 > len(buf):
        raise TruncatedError(f"{len(buf) - pos} bytes left where a block header needs 8; "
                             "is the file truncated?", path=path, offset=pos)
    if pos % 4 == 0 and pos // 4 + 1 < len(words):
        return int(words[pos // 4]), int(words[pos // 4 + 1])
    head = bytes(buf[pos:pos + 8])
    return int.from_bytes(head[:4], "little"), int.from_bytes(head[4:], "little")


def _read_section_header(buf, words, pos, path, index):
    """Read an SHB and the metadata blocks after it; return (Section, offset of first event)."""
    btype, total = _header(buf, words, pos, path)
    if btype != bt.SHB:
        raise CorruptBlockError(f"expected a section header, found block type 0x{btype:X}",
                                path=path, offset=pos, block=bt.name(btype))
    _check_length(buf, pos, total, bt.SHB, path, trailer=True)
    body = bytes(buf[pos + 8:pos + 16])
    magic = int.from_bytes(body[:4], "little")
    if magic != BYTE_ORDER_MAGIC:
        if magic == 0x4D3C2B1A:
            raise UnsupportedVersionError("big-endian sections are not supported",
                                          path=path, offset=pos, block="SHB")
        raise NotAScapError(f"invalid byte-order magic 0x{magic:08X}",
                            path=path, offset=pos, block="SHB")
    major = int.from_bytes(body[4:6], "little")
    minor = int.from_bytes(body[6:8], "little")
    if major != 1:
        raise UnsupportedVersionError(f"format version {major}.{minor} is newer than this reader "
                                      "knows (1.x)", path=path, offset=pos, block="SHB")
    section = Section(pos, (major, minor))
    pos += total
    while pos < len(buf):
        btype, total = _header(buf, words, pos, path)
        canon = bt.canonical(btype)
        if canon in bt.EVENT_BLOCKS:
            break
        if btype in _PCAPNG_NETWORK:
            raise NotAScapError("a pcapng network capture, not a system-call capture "
                                f"(block type {btype})", path=path, offset=pos)
        if btype == bt.SHB:
            break  # a section without events
        _check_length(buf, pos, total, btype, path, trailer=True)
        section.metadata.append((pos, canon, total))
        pos += total
    if index == 0 and not section.metadata and pos >= len(buf):
        raise NotAScapError("no machine, process or event blocks after the section header",
                            path=path, offset=pos)
    return section, pos


def _check_length(buf, pos, total, btype, path, trailer):
    if total < 12 or total % 4:
        raise CorruptBlockError(f"invalid block length {total}", path=path, offset=pos,
                                block=bt.name(btype))
    if pos + total > len(buf):
        raise TruncatedError(f"block of {total} bytes runs past the end of the data "
                             f"({len(buf) - pos} bytes left); is the file truncated?",
                             path=path, offset=pos, block=bt.name(btype))
    if trailer:
        tail = int.from_bytes(bytes(buf[pos + total - 4:pos + total]), "little")
        if tail != total:
            raise CorruptBlockError(f"block length {total} does not match its trailer {tail}",
                                    path=path, offset=pos, block=bt.name(btype))


_EVENT_ID_LO, _EVENT_ID_HI = 0x204, 0x222
_KIND_BY_ID = np.zeros(_EVENT_ID_HI - _EVENT_ID_LO + 1, dtype=np.uint8)
for _id, _kind in bt.KIND_OF.items():
    if _id <= _EVENT_ID_HI:
        _KIND_BY_ID[_id - _EVENT_ID_LO] = _kind
BLOCK_ID_OF_KIND = np.zeros(8, dtype=np.uint32)
for _kind, _id in bt.BLOCK_OF_KIND.items():
    BLOCK_ID_OF_KIND[_kind] = _id


def _kinds(block_ids):
    """uint8 kinds of event block ids (EV_INT, the 2014 pre-release id, is an EV)."""
    ids = np.where(block_ids == bt.EV_INT, bt.EV, block_ids).astype(np.int64)
    return _KIND_BY_ID[ids - _EVENT_ID_LO]
_IS_EVENT_ID = np.zeros(_EVENT_ID_HI - _EVENT_ID_LO + 1, dtype=bool)
_IS_EVENT_ID[_EVENT_IDS[_EVENT_IDS <= _EVENT_ID_HI] - _EVENT_ID_LO] = True
# Small chunks: their temporaries are recycled; fresh large arrays cost more in page faults
# than the arithmetic itself.
_CHUNK_WORDS = 1 << 19


def _candidates(words, first_word):
    """Word indexes (>= first_word) where a well-framed event block could start.

    SHBs are not looked for: a new section always breaks the tiling, and the walk there reads
    whatever block it finds. So do the ancient EV_INT blocks (2014 pre-releases), read the same way.
    """
    found = []
    n = len(words)
    scratch = np.empty(min(_CHUNK_WORDS, max(n - first_word, 0)), dtype=np.uint32)
    mask = np.empty(len(scratch), dtype=bool)
    for lo in range(first_word, n, _CHUNK_WORDS):
        w = words[lo:lo + _CHUNK_WORDS]
        k = len(w)
        np.subtract(w, np.uint32(_EVENT_ID_LO), out=scratch[:k])
        np.less_equal(scratch[:k], np.uint32(_EVENT_ID_HI - _EVENT_ID_LO), out=mask[:k])
        idx = np.flatnonzero(mask[:k])
        idx = idx[_IS_EVENT_ID[w[idx] - _EVENT_ID_LO]]
        found.append(idx + lo)
    idx = np.concatenate(found) if found else np.zeros(0, np.int64)
    idx = idx[idx + 1 < n]
    lengths = words[idx + 1].astype(np.int64)
    ok = (lengths >= 12) & (lengths % 4 == 0) & (idx + lengths // 4 <= n)
    idx, lengths = idx[ok], lengths[ok]
    ok = words[idx + lengths // 4 - 1] == lengths
    return idx[ok].astype(np.int64), lengths[ok]


def _chunk_blocks(buf, words, lo, hi, block_id=None):
    """Well-framed event-block candidates starting in words[lo:hi], with their ends, runs of
    candidates that tile, block kinds, event types, thread ids and record misfits (see
    _record_fields). With `block_id`, only blocks of that id are looked for (one compare
    per word instead of a range test and a table lookup). Pure numpy: runs in a worker
    thread."""
    n = len(words)
    w = words[lo:hi]
    if block_id is None:
        mask = (w - np.uint32(_EVENT_ID_LO)) <= np.uint32(_EVENT_ID_HI - _EVENT_ID_LO)
        idx = np.flatnonzero(mask)
        idx = idx[_IS_EVENT_ID[w[idx] - _EVENT_ID_LO]] + lo
    else:
        idx = np.flatnonzero(w == np.uint32(block_id)) + lo
    raw_length = words[np.minimum(idx + 1, n - 1)]
    ends = idx + (raw_length >> np.uint32(2))
    # the trailer repeats the length; a length that is no block's makes the test fail
    trailer = words[np.minimum(ends, n) - 1]
    good = (trailer == raw_length) & ((raw_length & np.uint32(3)) == 0) & \
        (raw_length >= np.uint32(12)) & (ends <= n)
    idx, ends = idx[good], ends[good]
    if block_id is None:
        kinds = _KIND_BY_ID[words[idx] - _EVENT_ID_LO]
    else:
        kinds = np.full(len(idx), _KIND_BY_ID[block_id - _EVENT_ID_LO], dtype=np.uint8)
    # the event type sits 30 bytes into the block (34 after an EVF block's flags field)
    w7 = words[np.minimum(idx + 7, n - 1)]
    types = (w7 >> np.uint32(16)).astype(np.uint16)
    flagged = np.flatnonzero(kinds & 1)
    if len(flagged):
        types[flagged] = words[np.minimum(idx[flagged] + 8, n - 1)] >> np.uint32(16)
    tids, misfits = _record_fields(buf, words, idx, kinds, types, w7, flagged)
    breaks = np.flatnonzero(ends[:-1] != idx[1:])
    return (idx, ends, np.r_[0, breaks + 1], np.r_[breaks + 1, len(idx)], kinds, types, tids,
            misfits)


def _record_fields(buf, words, idx, kinds, types, w7, flagged):
    """The thread id of the event block at each word index, and whether a plain V2 record
    (kind 2) does not fit its data: the record must hold its own header and length array
    and end inside the data, or libscap stops reading there (see events.decode_headers).

    Read here, while the chunk is in cache, rather than gathered again from the whole file.
    Every field sits at an even offset: tid at byte 18 of the block (22 after EVF flags),
    the record length at 26, the parameter count at 32 (only plain V2 records are checked;
    w7 is word 7 of each block, flagged the EVF ones).
    """
    n = len(words)
    start = idx * 4
    if len(flagged):
        start = start.copy()
        start[flagged] += 4
    tids = unaligned_view(buf, "<i8")[np.minimum(start + 18, len(buf) - 8)]
    # the length's two halves are the high half of word 6 and the low half of word 7
    w6 = words[np.minimum(idx + 6, n - 1)]
    length = ((w6 >> np.uint32(16)) | (w7 << np.uint32(16))).astype(np.int64)
    nparams = words[np.minimum(idx + 8, n - 1)].astype(np.int64)
    need = nparams * length_widths()[types] + 26  # header + length array
    misfits = (length < need) | (start + 10 + length > n * 4)
    return tids, misfits & (kinds == 2)


def unaligned_view(buf, dtype):
    """buf seen as one `dtype` value starting at every byte: view[i] is the value at i."""
    dtype = np.dtype(dtype)
    return np.ndarray(shape=(max(len(buf) - dtype.itemsize + 1, 0),), dtype=dtype, buffer=buf,
                      strides=(1,))


@functools.cache
def length_widths():
    """Bytes per entry of a V2 record's length array, by event type id (4 for the large
    payload types of the current libs table, else 2; V1 records always use 2)."""
    from . import eventtable
    large = eventtable.libs().large_payload
    width = np.full(1 << 16, 2, dtype=np.int64)
    width[:len(large)][large] = 4
    return width


def _tiled_chain(buf, words, first, size):
    """The usual case, cheaply: (word offsets, block kinds, event types, thread ids, index of
    the first record that does not fit its data, or the count) of an unbroken chain of event
    blocks from word `first` to the end of the data, or None if anything else is there
    (another section, damage, a block the bulk test misses), which the walk then handles.

    Chunks are searched on two threads (numpy releases the GIL); the chain is then followed
    from run to run, in order: event data that happens to look like a block breaks a run, and
    the chain steps over it. Most captures have one kind of event block, so chunks are first
    searched for the first block's id only; from the first block of another kind on, for
    every kind. Results go into one preallocated output, because fresh large temporaries
    cost more here than the arithmetic."""
    n = len(words)
    if n * 4 != size or first >= n:
        return None
    capacity = (n - first) // 9 + 1  # a block is at least 36 bytes; untouched pages are free
    out = np.empty(capacity, dtype=np.uint32 if n < 1 << 32 else np.uint64)
    kinds_out = np.empty(capacity, dtype=np.uint8)
    types_out = np.empty(capacity, dtype=np.uint16)
    tids_out = np.empty(capacity, dtype=np.int32)  # widened if some tid needs it
    first_misfit = None
    count, expect = 0, first
    bounds = [(lo, min(n, lo + _CHUNK_WORDS)) for lo in range(first, n, _CHUNK_WORDS)]
    length_widths()  # loaded here once, not raced for by the two workers
    block_id = int(words[first])
    if not (_EVENT_ID_LO <= block_id <= _EVENT_ID_HI and _IS_EVENT_ID[block_id - _EVENT_ID_LO]):
        block_id = None
    ahead = 3  # chunks in flight: enough to keep both threads busy, few results held
    with ThreadPoolExecutor(max_workers=2) as pool:
        def submit(k):
            return pool.submit(_chunk_blocks, buf, words, *bounds[k], block_id) \
                if k < len(bounds) else None
        pending = [submit(k) for k in range(ahead)]
        k = 0
        while k < len(bounds):
            idx, ends, run_starts, run_stops, kinds, types, tids, misfits = \
                pending[k].result()
            pending[k] = None
            pending.append(submit(k + ahead))
            hi = bounds[k][1]
            while expect < hi:
                at = int(np.searchsorted(idx, expect))
                if at >= len(idx) or idx[at] != expect:
                    break
                run = int(np.searchsorted(run_starts, at, side="right")) - 1
                stop = int(run_stops[run])
                m = stop - at
                out[count:count + m] = idx[at:stop]
                kinds_out[count:count + m] = kinds[at:stop]
                types_out[count:count + m] = types[at:stop]
                part = tids[at:stop]
                if tids_out.dtype == np.int32 and m and \
                        not (-(1 << 31) <= part.min() and part.max() < 1 << 31):
                    tids_out = tids_out.astype(np.int64)
                tids_out[count:count + m] = part
                if first_misfit is None and misfits[at:stop].any():
                    first_misfit = count + int(np.argmax(misfits[at:stop]))
                count += m
                expect = int(ends[stop - 1])
            if expect >= hi:
                k += 1
                continue
            if block_id is None:
                return None
            # a block of another kind (or none): search this chunk and the rest for all kinds
            block_id = None
            for f in pending[k + 1:]:
                if f is not None:
                    f.cancel()
            pending[k:] = [submit(j) for j in range(k, k + ahead)]
    if expect != n:
        return None
    return out[:count], kinds_out[:count], types_out[:count], tids_out[:count], \
        count if first_misfit is None else first_misfit


def _event_run(buf, words, pos, path):
    """Event blocks from pos to the next SHB, EOF or damage.

    Returns (word offsets, block ids, position reached, damage or None, event types or None).
    """
    size = len(buf)
    if pos % 4 == 0:
        chain = _tiled_chain(buf, words, pos // 4, size)
        if chain is not None:
            return chain[0], chain[1], size, None, chain[2], chain[3:]
    cand_words, cand_len = _candidates(words, pos // 4)
    starts = cand_words * 4
    types = words[cand_words]
    ends = starts + cand_len
    del cand_words, cand_len
    # run_end[i]: the last candidate of the tiling run starting at or through i
    tiles = np.zeros(len(starts), dtype=bool)
    if len(starts) > 1:
        tiles[:-1] = ends[:-1] == starts[1:]
    breaks = np.flatnonzero(~tiles)
    run_end = breaks[np.searchsorted(breaks, np.arange(len(starts)))] if len(starts) else breaks
    taken_lo, taken_hi = [], []
    extra_off, extra_type = [], []
    damage = None
    while pos < size:
        i = np.searchsorted(starts, pos)
        if i < len(starts) and starts[i] == pos:
            j = int(run_end[i])
            taken_lo.append(i)
            taken_hi.append(j + 1)
            pos = int(ends[j])
            continue
        # not a clean candidate: read the header the slow way
        try:
            btype, total = _header(buf, words, pos, path)
        except TruncatedError as e:
            damage = e
            break
        canon = bt.canonical(btype)
        if btype == bt.SHB:
            break
        if canon not in bt.EVENT_BLOCKS:
            damage = CorruptBlockError(f"block type 0x{btype:X} where an event block or a new "
                                       "section was expected", path=path, offset=pos,
                                       block=bt.name(btype))
            break
        # libscap refuses non-_LARGE blocks over 64 KiB; we read them as their length says,
        # the same way whether the bulk scan or this walk finds them
        if total < 12 or total % 4:
            damage = CorruptBlockError(f"invalid block length {total}", path=path,
                                       offset=pos, block=bt.name(btype))
            break
        if pos + total > size:
            damage = TruncatedError(f"block of {total} bytes runs past the end of the data "
                                    f"({size - pos} bytes left); is the file truncated?",
                                    path=path, offset=pos, block=bt.name(btype))
            break
        # libscap never checks event-block trailers, so neither do we
        extra_off.append(pos)
        extra_type.append(btype)
        pos += total
    parts_off = [starts[lo:hi] for lo, hi in zip(taken_lo, taken_hi)]
    parts_type = [types[lo:hi] for lo, hi in zip(taken_lo, taken_hi)]
    offsets = np.concatenate(parts_off + [np.array(extra_off, np.int64)])
    btypes = np.concatenate(parts_type + [np.array(extra_type, np.uint32)]).astype(np.uint32)
    if extra_off:
        order = np.argsort(offsets, kind="stable")
        offsets, btypes = offsets[order], btypes[order]
    offsets4 = offsets // 4
    return (offsets4.astype(np.uint32 if size < 1 << 34 else np.uint64), _kinds(btypes), pos,
            damage, None, None)
