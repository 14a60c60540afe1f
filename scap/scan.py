"""Find every block of a capture without running Python code per event block.

Metadata blocks (a few per section) are walked one by one. The event phase is found in bulk:
every 4-aligned word that holds an event-block id, followed by a length whose trailer word
matches, is a candidate block start; where consecutive candidates tile the stream exactly,
the chain is trusted as a whole. Only where tiling breaks (a false candidate inside some
event's data, a new section, damage) do we walk block by block, and only across the break.

scan() reads a whole buffer. The stream reader (stream.py) drives the same pieces over the
window of data it has read so far: read_section_block and next_metadata_block for a
section's header blocks, event_run for event blocks, which there stop with a TruncatedError
at the first block not all read yet.
"""
import functools
import os
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

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
    # header-phase blocks of types libscap skips, counted by type rather than listed (a
    # capture can hold millions of them)
    skipped: dict = field(default_factory=dict)
    first_event: int = 0           # index into the event arrays

    def keep(self, offset, block_type, total_length):
        """A header-phase block: listed if libscap reads its type, else counted."""
        if block_type in bt.METADATA_BLOCKS:
            self.metadata.append((offset, block_type, total_length))
        else:
            self.skipped[block_type] = self.skipped.get(block_type, 0) + 1


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
        run = event_run(buf, words, pos, path)
        pos, damage = run.end, run.damage
        extras.append(None if run.tids is None else (run.tids, run.first_misfit))
        offsets.append(run.offsets4)
        types.append(run.kinds)
        event_types.append(run.types)
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


def at_section_header(words, pos):
    """Does an SHB start at pos? (Sections start on a 4-byte boundary.)"""
    return pos % 4 == 0 and pos // 4 < len(words) and int(words[pos // 4]) == bt.SHB


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
    section, pos = read_section_block(buf, words, pos, path)
    while pos < len(buf):
        block = next_metadata_block(buf, words, pos, path)
        if block is None:
            break
        section.keep(pos, *block)
        pos += block[1]
    check_first_section(section, index, pos >= len(buf), path, pos)
    return section, pos


def read_section_block(buf, words, pos, path):
    """The SHB at pos: (Section without its metadata yet, offset after the SHB)."""
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
    return Section(pos, (major, minor)), pos + total


def next_metadata_block(buf, words, pos, path):
    """(canonical block type, total length) of the header-phase block at pos, or None where
    the header phase ends (an event block, or the SHB of a section without events). A block
    that is not all there raises TruncatedError: a stream reader reads on and asks again."""
    btype, total = _header(buf, words, pos, path)
    canon = bt.canonical(btype)
    if canon in bt.EVENT_BLOCKS:
        return None
    if btype in _PCAPNG_NETWORK:
        raise NotAScapError("a pcapng network capture, not a system-call capture "
                            f"(block type {btype})", path=path, offset=pos)
    if btype == bt.SHB:
        return None  # a section without events
    _check_length(buf, pos, total, btype, path, trailer=True)
    return canon, total


def check_first_section(section, index, at_end, path, pos):
    """A capture whose first section holds nothing after its SHB is no capture at all."""
    if index == 0 and not section.metadata and at_end:
        raise NotAScapError("no machine, process or event blocks after the section header",
                            path=path, offset=pos)


def _check_length(buf, pos, total, btype, path, trailer):
    if total < 12 or total % 4:
        raise CorruptBlockError(f"invalid block length {total}", path=path, offset=pos,
                                block=bt.name(btype))
    if pos + total > len(buf):
        raise block_past_end(total, len(buf) - pos, btype, path, pos)
    if trailer:
        tail = int.from_bytes(bytes(buf[pos + total - 4:pos + total]), "little")
        if tail != total:
            raise CorruptBlockError(f"block length {total} does not match its trailer {tail}",
                                    path=path, offset=pos, block=bt.name(btype))


def block_past_end(total, left, btype, path, pos):
    """The error of a block whose length runs past the end of the data."""
    return TruncatedError(f"block of {total} bytes runs past the end of the data ({left} bytes "
                          "left); is the file truncated?", path=path, offset=pos,
                          block=bt.name(btype))


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


def _chunk_blocks(buf, words, lo, hi, block_id=None, reach=False):
    """Well-framed event-block candidates starting in words[lo:hi], with their ends, runs of
    candidates that tile, block kinds, event types, thread ids, record misfits and (with
    `reach`) records that reach past their block (see _record_fields). With `block_id`, only
    blocks of that id are looked for (one compare per word instead of a range test and a
    table lookup). Pure numpy: runs in a worker thread."""
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
    tids, misfits, beyond = _record_fields(buf, words, idx, kinds, types, w7, flagged,
                                           ends if reach else None)
    breaks = np.flatnonzero(ends[:-1] != idx[1:])
    return (idx, ends, np.r_[0, breaks + 1], np.r_[breaks + 1, len(idx)], kinds, types, tids,
            misfits, beyond)


def _record_fields(buf, words, idx, kinds, types, w7, flagged, ends=None):
    """The thread id of the event block at each word index, and whether a plain V2 record
    (kind 2) does not fit its data: the record must hold its own header and length array
    and end inside the data, or libscap stops reading there (see events.decode_headers).

    Read here, while the chunk is in cache, rather than gathered again from the whole file.
    Every field sits at an even offset: tid at byte 18 of the block (22 after EVF flags),
    the record length at 26, the parameter count at 32 (only plain V2 records are checked;
    w7 is word 7 of each block, flagged the EVF ones).

    With the blocks' ends (word indexes), also whether each record's header or length
    reaches past its block (a stream reader must then read on: see stream_window); else
    None.
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
    beyond = None
    if ends is not None:
        if len(flagged):  # after the flags field: the high half of word 7, the low of word 8
            w8 = words[np.minimum(idx[flagged] + 8, n - 1)]
            length[flagged] = (w7[flagged] >> np.uint32(16)) | (w8 << np.uint32(16))
        header = np.where(kinds & 2, 26, 22)
        beyond = start + 10 + np.maximum(length, header) > ends * 4
    return tids, misfits & (kinds == 2), beyond


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


def _tiled_chain(buf, words, first, size, reach=False):
    """The usual case, cheaply: (word offsets, block kinds, event types, thread ids, index of
    the first record that does not fit its data, or the count, word index where the chain
    stops) of the unbroken chain of event blocks from word `first`. It stops at the end of
    the data or where anything else is (another section, damage, a block the bulk test
    misses, the unfinished block at the end of a stream reader's window), which the walk then
    handles. None where it cannot start (data that ends inside a word, or no data at all).
    With `reach`, an eighth item: the index of the first record that reaches past its block,
    or the count (see _record_fields).

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
    first_misfit = first_beyond = None
    count, expect = 0, first
    bounds = [(lo, min(n, lo + _CHUNK_WORDS)) for lo in range(first, n, _CHUNK_WORDS)]
    length_widths()  # loaded here once, not raced for by the two workers
    block_id = int(words[first])
    if not (_EVENT_ID_LO <= block_id <= _EVENT_ID_HI and _IS_EVENT_ID[block_id - _EVENT_ID_LO]):
        block_id = None
    ahead = 3  # chunks in flight: enough to keep both threads busy, few results held
    # one chunk (a small capture, a small stream window) is not worth a thread
    pool = _workers() if len(bounds) > 1 else _InlinePool()

    def submit(k):
        return pool.submit(_chunk_blocks, buf, words, *bounds[k], block_id, reach) \
            if k < len(bounds) else None
    pending = [submit(k) for k in range(ahead)]
    try:
        k = 0
        while k < len(bounds):
            idx, ends, run_starts, run_stops, kinds, types, tids, misfits, beyond = \
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
                if count + m > len(out):  # blocks shorter than 36 bytes (damaged data)
                    out, kinds_out, types_out, tids_out = (
                        _grown(a, count, count + m) for a in (out, kinds_out, types_out,
                                                                tids_out))
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
                if reach and first_beyond is None and beyond[at:stop].any():
                    first_beyond = count + int(np.argmax(beyond[at:stop]))
                count += m
                expect = int(ends[stop - 1])
            if expect >= hi:
                k += 1
                continue
            if block_id is None:
                break
            # a block of another kind (or none): search this chunk and the rest for all kinds
            block_id = None
            _settle(pending[k + 1:])
            pending[k:] = [submit(j) for j in range(k, k + ahead)]
    finally:
        _settle(pending)
    chain = (out[:count], kinds_out[:count], types_out[:count], tids_out[:count],
             count if first_misfit is None else first_misfit, expect)
    return chain + (count if first_beyond is None else first_beyond,) if reach else chain


def _grown(array, used, need):
    """array with room for `need` entries, its first `used` kept."""
    grown = np.empty(max(need, 2 * len(array)), dtype=array.dtype)
    grown[:used] = array[:used]
    return grown


def _settle(futures):
    """Cancel the searches not started; wait for the others, which view the buffer."""
    for f in futures:
        if f is not None and not f.cancel():
            f.exception()


_WORKERS = None


def _workers():
    """The two threads that search chunks, started once for every scan (a stream reader
    scans window after window; threads started per scan took longer than small scans)."""
    global _WORKERS
    if _WORKERS is None:
        _WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scap-scan")
    return _WORKERS


def _forget_workers():
    global _WORKERS
    _WORKERS = None  # a forked child has the pool but not its threads


os.register_at_fork(after_in_child=_forget_workers)


class _InlinePool:
    """ThreadPoolExecutor's submit, run in the calling thread."""

    def submit(self, fn, *args):
        done = Future()
        done.set_result(fn(*args))
        return done


class EventRun(NamedTuple):
    """Event blocks found from some offset on, up to where the event phase stops."""
    offsets4: np.ndarray   # word offset of each event block
    kinds: np.ndarray      # uint8 block kind of each
    end: int               # where it stops: the end of the data, a new SHB, or the damage
    damage: object = None  # the ScapError found at `end`, if any (TruncatedError: data ends)
    # seen by the bulk scan while the blocks were in cache, where it found every block of
    # the run (else None): see Layout
    types: object = None
    tids: object = None
    first_misfit: object = None
    first_beyond: object = None   # asked for with `reach`: see _record_fields


def event_run(buf, words, pos, path, reach=False):
    """Event blocks from pos to the next SHB, the end of the data, or damage (an EventRun).

    The tiled chain follows the usual unbroken run in bulk; the walk takes over where it
    stops, block by block. A stream reader gives the data it has so far: there the run
    stops with a TruncatedError at the first block not all there yet (and asks, with
    `reach`, which records reach past their block)."""
    size = len(buf)
    chain = _tiled_chain(buf, words, pos // 4, size, reach) if pos % 4 == 0 else None
    if chain is not None:
        offsets4, kinds, types, tids, first_misfit, stop = chain[:6]
        hints = (types, tids, first_misfit, chain[6] if reach else None)
        if stop * 4 == size:
            return EventRun(offsets4, kinds, size, None, *hints)
        pos = stop * 4
    walked = _walk(buf, words, pos, path)
    if chain is None:
        return walked
    if not len(walked.offsets4):  # the walk stopped where the chain did: its hints hold
        return EventRun(offsets4, kinds, walked.end, walked.damage, *hints)
    return EventRun(np.concatenate([offsets4, walked.offsets4]),
                    np.concatenate([kinds, walked.kinds]), walked.end, walked.damage)


def _walk(buf, words, pos, path):
    """event_run's careful part: candidate blocks where they tile, block headers read one by
    one where they do not (false candidates inside event data, trailers that do not match,
    the 2014 EV_INT blocks, a new section, damage)."""
    size = len(buf)
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
            # kept without its traceback, whose frames view the buffer (a memory map
            # cannot close, a stream reader's window cannot be reused, while they live)
            damage = e.with_traceback(None)
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
            damage = block_past_end(total, size - pos, btype, path, pos)
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
    return EventRun(offsets4.astype(np.uint32 if size < 1 << 34 else np.uint64), _kinds(btypes),
                    pos, damage)
