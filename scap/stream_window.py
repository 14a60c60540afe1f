"""A StreamReader's window: the bytes read and not handed out yet, the events found there, and
which of them can be handed out already.
"""
import sys

import numpy as np

from .errors import TruncatedError
from .scan import unaligned_view

# A block, or the bytes a record reaches past its block, that a reader holds at most: sound
# captures have blocks of a few MiB at most; beyond this a length is taken as damage (below).
HOLD_LIMIT = 128 << 20
_NEVER = np.iinfo(np.int64).max


class Window:
    """buf[pos:filled] are the bytes read and not handed out yet, at stream offset base + pos.
    Views of buf handed out stay valid: bytes once read are never overwritten while anything
    still refers to buf (see compact)."""

    def __init__(self, size):
        self.buf = np.empty(size, dtype=np.uint8)
        self.read_size = size
        self.base = self.pos = self.filled = 0
        self.eof = False
        self._spare = None

    @property
    def at_end(self):
        return self.eof and self.pos == self.filled

    @property
    def full(self):
        return self.filled == len(self.buf)

    def compact(self, need=0):
        """Move the bytes not handed out to the start of a window with room for more (and
        for `need` bytes from pos): a new one, or the one before if nothing refers to it any
        more (what was handed out views it: reusing it then would change their bytes)."""
        keep = self.filled - self.pos
        size = max(self.read_size, need, 2 * keep)
        spare, self._spare = self._spare, None
        # references to spare: the name `spare` and getrefcount's argument; a view adds one
        if spare is None or len(spare) < size or sys.getrefcount(spare) > 2:
            spare = np.empty(size, dtype=np.uint8)
        spare[:keep] = self.buf[self.pos:self.filled]
        self._spare, self.buf = self.buf, spare
        self.base += self.pos
        self.pos, self.filled = 0, keep


class Run:
    """The event blocks a scan of the window found (from a scan.EventRun): each block's word
    offset, kind, end, how far its record reaches (None unless some record reaches past its
    block), and the bulk scan's hints (types, tids, first_misfit: see scan.Layout), as far as
    they can be handed out now; then why it stopped (`stop`):
    'damage' (the error in `damage`), 'section' (an SHB at `end`), 'end' (of the stream), or
    'more': more data is needed, the window up to offset `need` at least (`block`: the
    length of the block at `end` that is not all there yet, else None)."""

    FIELDS = ("offsets4", "kinds", "ends", "reach", "types", "tids")

    def __init__(self, offsets4, kinds, ends, reach, types, tids, first_misfit):
        self.offsets4, self.kinds, self.ends, self.reach = offsets4, kinds, ends, reach
        self.types, self.tids, self.first_misfit = types, tids, first_misfit

    def __len__(self):
        return len(self.offsets4)

    @classmethod
    def of_scan(cls, run, buf, scanned, at_end):
        """The Run of the scan.EventRun `run` over buf[:scanned] (all the data if at_end)."""
        ends = np.empty(len(run.offsets4), dtype=np.int64)
        ends[:-1] = run.offsets4[1:]   # event blocks tile their run
        ends[:-1] *= 4
        if len(ends):
            ends[-1] = run.end
        reach, keep = _decidable(buf, run, ends, scanned, at_end)
        cut = slice(0, keep)
        fm = run.first_misfit
        self = cls(run.offsets4[cut], run.kinds[cut], ends[cut],
                   None if reach is None else reach[cut],
                   None if run.types is None else run.types[cut],
                   None if run.tids is None else run.tids[cut], None if fm is None else
                   min(fm, keep))
        self.damage, self.end, self.block = None, run.end, None
        if keep < len(ends):
            self.stop, self.end, self.need = "more", int(run.offsets4[keep]) * 4, \
                int(reach[keep])
        elif run.damage is not None and isinstance(run.damage, TruncatedError) and not at_end:
            self.block = block_need(buf, run.end)  # a block not all there yet
            self.stop, self.need = "more", run.end + self.block
        elif run.damage is not None:
            self.stop, self.damage = "damage", run.damage
        elif run.end < scanned:
            self.stop = "section"
        elif at_end:
            self.stop = "end"
        else:
            self.stop, self.need = "more", run.end + 8
        return self

    def split(self, count):
        """(its first count events, the rest). The rest's first misfit is unknown where it
        was among the first ones: reading stops there anyway."""
        fm = self.first_misfit
        head = Run(*(_cut(getattr(self, f), slice(0, count)) for f in Run.FIELDS),
                   None if fm is None else min(fm, count))
        rest = Run(*(_cut(getattr(self, f), slice(count, None)) for f in Run.FIELDS),
                   None if fm is None or fm < count else fm - count)
        return head, rest

    @classmethod
    def joined(cls, runs):
        """One run of consecutive ones."""
        def join(name):
            arrays = [getattr(r, name) for r in runs]
            return None if any(a is None for a in arrays) else np.concatenate(arrays)
        fm, seen = None, 0
        for r in runs:
            if r.first_misfit is None:
                fm = None
                break
            if r.first_misfit < len(r):
                fm = seen + r.first_misfit
                break
            seen += len(r)
            fm = seen
        run = cls(*(join(f) for f in Run.FIELDS), fm)
        if any(r.reach is not None for r in runs):  # a reach within its block stands for none
            run.reach = np.concatenate([r.ends if r.reach is None else r.reach for r in runs])
        return run


def _cut(array, part):
    return None if array is None else array[part]


def _decidable(buf, run, ends, scanned, at_end):
    """(reach, count): how far each event's record reaches (None where each one stays in its
    block, as in every sound capture), and how many of the events can be decoded now as the
    whole-file reader decodes them.

    That reader reads a record that claims more bytes than its block has from the bytes after
    the block, or finds that it does not fit the data; so such an event can be decided only
    once the data it reaches has been read, or the stream has ended. (A record reaching more
    than HOLD_LIMIT bytes past its block is decided with the data there is: it does not fit,
    where the whole-file reader, given that much more data, would read it.)"""
    offsets4, kinds = run.offsets4, run.kinds
    beyond = run.first_beyond  # seen by the bulk scan, where it found every block
    if beyond == len(offsets4) or beyond is None and not _some_reach_beyond(buf, offsets4,
                                                                             kinds):
        return None, len(offsets4)
    record = offsets4.astype(np.int64) * 4 + 10 + 4 * (kinds & 1)
    header = np.where(kinds & 2, 26, 22)
    readable = record + 20 <= scanned   # the length field is there
    length = np.zeros(len(record), dtype=np.int64)
    length[readable] = unaligned_view(buf, "<u4")[record[readable] + 16]
    reach = np.where(readable, record + np.maximum(length, header), record + 20)
    if at_end:
        return reach, len(record)
    late = np.flatnonzero((reach > scanned) & (reach - ends <= HOLD_LIMIT))
    return reach, int(late[0]) if len(late) else len(record)


_ROWS = 1 << 16  # events looked at a time: small temporaries, recycled while in cache


def _some_reach_beyond(buf, offsets4, kinds):
    """Does some event's record header or record claim more than its block holds?

    The record length is bytes 26..30 of the block (30..34 after an EVF block's flags): the
    high half of word 6 and the low half of word 7. A block too short for its record header
    reaches beyond it whatever those words hold (and they may lie past the data)."""
    words = buf[:len(buf) // 4 * 4].view("<u4")
    last = len(words) - 1
    for lo in range(0, len(offsets4), _ROWS):
        idx = offsets4[lo:lo + _ROWS].astype(np.int64)
        flag = (kinds[lo:lo + _ROWS] & 1).astype(np.int64)
        at = idx + 6 + flag
        length = (words[np.minimum(at, last)] >> np.uint32(16)) | \
            (words[np.minimum(at + 1, last)] << np.uint32(16))
        header = np.where(kinds[lo:lo + _ROWS] & 2, 26, 22)
        needed = np.maximum(length, header) + 10 + 4 * flag
        if (needed > words[idx + 1]).any():
            return True
    return False


def block_need(buf, pos):
    """Bytes from pos that the block there needs: its length, or 8 to read its header."""
    if len(buf) - pos < 8:
        return 8
    return int.from_bytes(bytes(buf[pos + 4:pos + 8]), "little")


class Pending:
    """Complete events scanned and not handed out yet, in order, from the window's pos."""

    def __init__(self):
        self.runs = []
        self.count = 0

    def __len__(self):
        return self.count

    @property
    def end(self):
        """Where the last pending block ends."""
        return int(self.runs[-1].ends[-1])

    def add(self, run):
        if len(run):
            self.runs.append(run)
            self.count += len(run)

    def _run(self):
        if len(self.runs) > 1:
            self.runs = [Run.joined(self.runs)]
        return self.runs[0]

    def fitting(self, max_events, max_bytes):
        """(count, bytes) of the first events that fit a chunk's bounds (at least one)."""
        run = self._run()
        start = int(run.offsets4[0]) * 4
        fit = int(np.searchsorted(run.ends[:max_events], start + max_bytes, side="right"))
        count = min(max_events, self.count, max(1, fit))
        return count, int(run.ends[count - 1]) - start

    def take(self, count):
        head, rest = self._run().split(count)
        self.runs = [rest] if len(rest) else []
        self.count -= count
        return head
