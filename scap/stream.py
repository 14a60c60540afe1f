"""Read a capture as a stream: section starts and chunks of events, in bounded memory.

    for item in StreamReader("trace.scap.gz"):    # or an open file object, a pipe's fd
        if isinstance(item, SectionStart):
            threads = item.processes
        else:                                      # an EventChunk
            item.headers.ts, item.param_slices(0)

The reader reads its source sequentially into a window (read_size bytes; grown only for a
block bigger than that), finds the blocks there with the whole-file scan's code (scan.py), and
hands out what is complete. It never maps the file, nor holds more than a window or two, so
its memory does not grow with the capture, and it reads pipes. Chunks hold at most max_events
events and max_bytes bytes of blocks (at least one event, however big). From a pipe, socket
or terminal, complete events are handed out once the source has had nothing new for
max_wait_ms, so that a live reader shows them promptly, in small chunks if need be.

It yields what Capture reads from the same bytes: the same events, header columns, parameter
bytes, sections and metadata tables. Where the capture is damaged, iteration ends by raising
the ScapError that Capture.damage names (type, message and stream offset), once every event
before the damage has been yielded; where Capture refuses the input outright (not a capture,
a version it does not know), the reader raises the same error when it gets there.

Lifetimes: a SectionStart owns its bytes. An EventChunk's buffer (and so its headers' lazy
columns and its parameter slices) views the reader's window, which is reused for later data
only once nothing refers to it any more: a chunk stays valid as long as it is held, and
holding chunks holds their windows (EventChunk.detached() copies one's bytes out).
"""
import time

import numpy as np

from . import blocktypes as bt
from .errors import CorruptBlockError, NotAScapError, ScapError, TruncatedError
from .events import decode_headers
from .scan import Layout, block_past_end, check_first_section, event_run, \
    next_metadata_block, read_section_block
from .source import open_stream
from .stream_items import EventChunk, MetadataBlock, SectionStart
from .stream_window import HOLD_LIMIT, Pending, Run, Window, block_need

__all__ = ["StreamReader", "SectionStart", "EventChunk", "MetadataBlock"]

DEFAULT_MAX_EVENTS = 1 << 17
DEFAULT_MAX_BYTES = 16 << 20
# The window: 16 MiB scanned as fast as bigger ones (its chunks stay in cache), and a reader
# then holds about 90 MiB in all, Python and numpy included.
DEFAULT_READ_SIZE = 16 << 20
# From a pipe, socket or terminal: how long complete events may wait for their chunk to fill.
PIPE_MAX_WAIT_MS = 50
# From those, the bytes read before the reader looks at them (a fast writer has more ready).
_PIPE_BATCH = 1 << 20
# With prompt types (see StreamReader), how long events may wait while none of them is one.
QUIET_MAX_WAIT_MS = 1000


class StreamReader:
    """Iterate over a capture's SectionStarts and EventChunks (see the module's docstring).

    source: a path, an open binary file object (read from where it is, not closed), or a file
    descriptor (not closed). max_events, max_bytes: a chunk's bounds. max_wait_ms: how long
    complete events may wait for more to fill their chunk while the source has nothing new
    (default: 50 from a pipe, socket or terminal, None from a file; None: full chunks only).
    read_size: the window, the most one read asks for. path: the name errors give (default:
    the path, or the file object's name).

    A source object with a `prompt_types` attribute (a set of event type ids; the live stream
    sets it for chisels that print as they go) makes the wait depend on what is pending: only
    events of those types are handed out after max_wait_ms; while none is pending, events
    wait up to QUIET_MAX_WAIT_MS. A machine busy with calls that only build state then costs a
    chunk a second instead of one every max_wait_ms, and a log line still shows at once."""

    def __init__(self, source, *, max_events=DEFAULT_MAX_EVENTS, max_bytes=DEFAULT_MAX_BYTES,
                 max_wait_ms="pipes", read_size=DEFAULT_READ_SIZE, path=None):
        if min(max_events, max_bytes, read_size) < 1:
            raise ValueError("max_events, max_bytes and read_size must be positive")
        self.max_events, self.max_bytes, self.read_size = max_events, max_bytes, read_size
        self.path = path
        self.sections = []       # the SectionStarts so far
        self.events_read = 0     # events yielded so far
        self.compressed = None   # a gzip stream? (known once reading has started)
        self._source, self._max_wait_ms = source, max_wait_ms
        prompt = getattr(source, "prompt_types", None)
        self._prompt = None if prompt is None else np.fromiter(prompt, dtype=np.int64)
        self._src = None
        self._started = False

    def __iter__(self):
        if self._started:
            raise ScapError("a StreamReader reads its source once", path=self.path)
        self._started = True
        return self._items()

    @property
    def from_file(self):
        """Is the source a regular file (not a pipe, socket or terminal)? Known once reading
        has begun (True before)."""
        return self._src is None or self._src.regular

    def close(self):
        """Close what the reader opened (a path; its own file object over an fd)."""
        if self._src is not None:
            self._src.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _items(self):
        try:
            yield from self._read()
        finally:
            self.close()

    def _read(self):
        self._src = src = open_stream(self._source)
        self.compressed = src.compressed
        if self.path is None:
            self.path = src.path
        wait = self._max_wait_ms
        if wait == "pipes":
            wait = None if src.regular else PIPE_MAX_WAIT_MS
        self._max_wait = None if wait is None else wait / 1000
        self._window = w = Window(self.read_size)
        while w.filled < 12 and self._read_more():
            pass
        # the whole-file reader's checks, on the first bytes
        if w.filled == 0 and not src.compressed:
            raise NotAScapError("empty file", path=self.path, offset=0)
        if w.filled < 12 or int(w.buf[:4].view("<u4")[0]) != bt.SHB:
            what = "empty input" if w.filled == 0 else "no section header block at the start"
            raise NotAScapError(f"not a scap capture: {what}", path=self.path, offset=0)
        index = 0
        while True:
            section = self._section_start(index)
            self.sections.append(section)
            yield section
            if not (yield from self._event_chunks(section)):
                break
            index += 1
        if src.damage is not None:
            raise src.damage

    # -- reading -------------------------------------------------------------------------------
    def _read_more(self, need=0):
        """Read what the source has into the window: one read (which may wait), then more
        while it has data right now; first, make room for `need` bytes from the window's pos.
        False at the end of the stream."""
        w, src = self._window, self._src
        if w.eof:
            return False
        if w.full or need > len(w.buf) - w.pos:
            w.compact(need)
        got = 0
        while not w.full:
            with memoryview(w.buf) as view:
                n = src.readinto(view[w.filled:])
            if n == 0:
                w.eof = True
                break
            w.filled += n
            got += n
            if not src.regular and (got >= _PIPE_BATCH or not src.ready(0)):
                break
        return got > 0

    def _beyond_limit(self, need):
        """The block at the window's pos claims more than a reader holds (HOLD_LIMIT bytes):
        damage, unless the stream really has that many bytes. Raise what the whole-file
        reader says: for a plain file, that the block runs past the end when the file is
        shorter (its size says so); for a pipe, the same once the rest has been read (and
        dropped) to see; for a compressed stream, at once that no reader holds it, as the
        whole-file reader stops inflating there (inflating 4 GiB to see takes ~10 s)."""
        w = self._window
        if w.full:
            w.compact()
        left, src = w.filled - w.pos, self._src
        unread = src.left() if not src.compressed else None
        if unread is not None:
            left += unread
        while left < need and not src.compressed:
            n = 0
            if unread is None:
                with memoryview(w.buf) as view:
                    n = src.readinto(view[w.filled:])  # read over, again and again
            if n == 0:
                w.eof = True
                head = w.buf[w.pos:w.pos + 4].view("<u4")
                raise block_past_end(need, left, int(head[0]), self.path, w.base + w.pos)
            left += n
        raise ScapError(f"a block of {need} bytes: more than a stream reader holds "
                        f"({HOLD_LIMIT} bytes)", path=self.path, offset=w.base + w.pos)

    def _at_pos(self, read):
        """read(buf, words, pos, path) for the window's pos, read on while the block there
        is not all read yet; its errors carry stream offsets."""
        w = self._window
        while True:
            buf = w.buf[:w.filled]
            try:
                return read(buf, buf[:len(buf) // 4 * 4].view("<u4"), w.pos, self.path)
            except TruncatedError as e:
                if w.eof:
                    raise _moved(e, w.base) from None
                need = block_need(buf, w.pos)
            except ScapError as e:
                raise _moved(e, w.base) from None
            finally:
                del buf  # the window may move: hold no view of it
            if need > HOLD_LIMIT:
                self._beyond_limit(need)
            self._read_more(need)

    # -- sections ------------------------------------------------------------------------------
    def _section_start(self, index):
        """Read a section's SHB and metadata blocks, checked as Capture's scan checks them."""
        w = self._window
        try:
            section, end = self._at_pos(read_section_block)
            parts = bytearray(w.buf[w.pos:end])
            section.offset = w.base + w.pos
            w.pos = end
            while True:
                if w.pos == w.filled:
                    self._read_more()
                if w.at_end:
                    break
                block = self._at_pos(next_metadata_block)
                if block is None:  # event blocks, or the next section
                    break
                parts += w.buf[w.pos:w.pos + block[1]].tobytes()
                section.keep(w.base + w.pos, *block)
                w.pos += block[1]
            check_first_section(section, index, w.at_end, self.path, w.base + w.pos)
        except (CorruptBlockError, TruncatedError) as e:
            # past the first section, Capture keeps the events before such damage
            raise e if index == 0 else self._named(e) from None
        section.first_event = self.events_read
        return SectionStart(index, section, np.frombuffer(bytes(parts), dtype=np.uint8))

    # -- events --------------------------------------------------------------------------------
    def _event_chunks(self, section):
        """Yield the section's events in chunks; return True when a new section follows."""
        w = self._window
        pending = Pending()
        self._in_section = 0
        since = None  # when the oldest pending event was found
        urgent = False  # is an event of the prompt types pending?
        while True:
            run = self._scan(pending.end if len(pending) else w.pos)
            if len(run):
                pending.add(run)
                since = since or time.monotonic()
                urgent = urgent or self._prompts(run)
            yield from self._chunks(pending, section, everything=run.stop != "more")
            if run.stop == "damage":
                raise self._named(_moved(run.damage, w.base))
            if run.stop != "more":
                return run.stop == "section"
            # Before the window moves, or a read that may wait long, hand out what is there
            too_big = run.block is not None and run.block > HOLD_LIMIT
            if len(pending) and (w.full or run.need > len(w.buf) or too_big or
                                 self._waited(since, urgent)):
                yield from self._chunks(pending, section, everything=True)
            if not len(pending):
                since, urgent = None, False
            if too_big:
                try:
                    self._beyond_limit(run.block)
                except TruncatedError as e:
                    raise self._named(e) from None
            self._read_more(run.need - w.pos)

    def _scan(self, start):
        """The Run of event blocks from window offset `start` in what has been read."""
        w = self._window
        at_end = w.eof
        scanned = w.filled if at_end else w.filled & ~3  # a word cut short ends no block
        buf = w.buf[:scanned]
        words = buf[:scanned // 4 * 4].view("<u4")
        run = event_run(buf, words, start, self.path, reach=True)
        return Run.of_scan(run, buf, scanned, at_end)

    def _waited(self, since, urgent=True):
        """Have the pending events waited long enough, the source having nothing new?"""
        if self._max_wait is None:
            return False
        wait = self._max_wait if urgent else max(self._max_wait, QUIET_MAX_WAIT_MS / 1000)
        left = since + wait - time.monotonic()
        return left <= 0 or not self._src.ready(left)

    def _prompts(self, run):
        """Does the run hold an event that must not wait (see the class's docstring)?"""
        if self._prompt is None or run.types is None:
            return True
        return bool(np.isin(run.types, self._prompt).any())

    def _chunks(self, pending, section, everything):
        """Cut chunks from the pending events: the full ones, and with `everything` all."""
        w = self._window
        while len(pending):
            count, nbytes = pending.fitting(self.max_events, self.max_bytes)
            full = count < len(pending) or count >= self.max_events or nbytes >= self.max_bytes
            if not (full or everything):
                return
            part = pending.take(count)
            lo, hi = int(part.offsets4[0]) * 4, int(part.ends[-1])
            buffer = w.buf[lo:self._view_end(part, count)]
            layout = Layout([], (part.offsets4 - lo // 4).astype(np.uint32), part.kinds,
                            len(buffer), None, part.types, part.tids, part.first_misfit)
            headers, damage = decode_headers(buffer, layout, self.path)
            w.pos = hi
            if damage is not None:  # the events before it, and their bytes only
                n = len(headers)
                buffer = headers.buffer = w.buf[lo:self._view_end(part, n)] if n else None
                layout = Layout([], layout.event_offsets4[:n], layout.event_kinds[:n],
                                len(buffer) if n else 0)
            if len(headers):
                chunk = EventChunk(section, buffer, w.base + lo, layout, headers,
                                   self.events_read, self._in_section)
                self.events_read += len(headers)
                self._in_section += len(headers)
                yield chunk
                del chunk
            del buffer, headers, layout
            if damage is not None:
                raise _moved(damage, w.base + lo)

    def _view_end(self, part, count):
        """Where the bytes the first `count` events of `part` read end in the window: their
        blocks, and where records reach past their block, the bytes after it that the
        whole-file reader reads too (damaged captures only)."""
        end = int(part.ends[count - 1])
        if part.reach is None:
            return end
        return max(end, min(int(part.reach[:count].max()), self._window.filled))

    def _named(self, damage):
        """The error Capture names: a gzip stream's damage rather than the cut block it
        leaves at the end of the data."""
        if self._src.damage is not None and isinstance(damage, TruncatedError):
            return self._src.damage
        return damage


def _moved(error, base):
    """error, its offset moved from the window's to the stream's."""
    if error.offset is not None:
        error.offset += base
    return error
