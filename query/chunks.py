"""A capture read a chunk of events at a time, with sysdig's state carried from one chunk to
the next.

sysdig keeps state while it reads: its thread and fd tables, the last enter event of each
thread (to pair the exit with), counters. A chunk here is a small capture of its own, a
ChunkCapture: the events of one stretch of one section (an EventChunk of scap.stream, read
from a file, a gzip file or a pipe in bounded memory), preceded by a few *context* events
(the calls the chunk's first exits pair with, handed over by the chunk before), and opened not
with the section's process and fd lists but with the state the previous chunk left (a Carry).
The engine computes every field of a chunk as it does for a whole capture; what a chunk leaves
is taken from it before the next one starts, so memory follows the chunk, not the capture.

Context events are hidden: they are not numbered, shown, counted, nor replayed again (their
effects are in the carried state); they are there to be read, as sysdig reads its copies.
Positions "in the reading" count every event from the start of the stream.
"""
import dataclasses
import gc

import numpy as np

from scaptool.scap import sysdig0293
from scaptool.scap.capture import Capture
from scaptool.scap.errors import ScapError, placed
from scaptool.scap.scan import Layout, Section


DEFAULT_CHUNK_EVENTS = 1 << 17
# how far back a thread's context goes at most (its last enter is almost always 1-2 back)
_MAX_CONTEXT_PER_THREAD = 64


@dataclasses.dataclass
class Context:
    """Events a chunk hands to the next one to be read again (see context_rows): their
    blocks, one after the other, their header columns, and their positions in the reading."""
    data: np.ndarray                # uint8: the blocks
    columns: dict                   # EventHeaders columns; offset4 relative to `data`
    rows: np.ndarray                # their positions in the reading (int64, ascending)

    @staticmethod
    def empty():
        return Context(np.zeros(0, dtype=np.uint8), {}, np.zeros(0, dtype=np.int64))

    def __len__(self):
        return len(self.rows)


@dataclasses.dataclass
class Carry:
    """What the events read so far leave to the next chunk of a section.

    Each part belongs to the module that made it (threads, fds, fields with a memory):
    `parts[name]` is theirs to read and write. Rows in carried values are positions in the
    reading, so that a chunk can tell them from its own."""
    section: int = 0
    numbered: int = 0             # events sysdig numbered before this chunk (evt.num)
    context: Context = dataclasses.field(default_factory=Context.empty)
    parts: dict = dataclasses.field(default_factory=dict)


_HEADER_COLUMNS = ("offset4", "kind", "cpu", "ts", "tid", "type", "flags", "v1_nparams")
_LAZY_COLUMNS = ("cpu", "ts", "tid")


class ChunkCapture(Capture):
    """Consecutive events of one section (an EventChunk of scap.stream), with the context
    events the chunk before handed over placed before them: a capture of its own for the
    engine. `carry` is what the chunks before it left (None for the first chunk of a section:
    its state comes from the section's header blocks); `continues`: more of the section
    follows."""

    def __init__(self, events, carry, continues, path=None, compressed=False):
        from scaptool.scap.events import EventHeaders
        self.path = path
        self.compressed = compressed
        self._stream_damage = None
        self.start = events.section            # the scap.stream SectionStart
        self.section_index = self.start.index
        context = carry.context if carry is not None else Context.empty()
        self.context = len(context)            # rows [0, context) are context events
        self.lo = events.first_event           # position of the first own event
        self.context_rows = context.rows
        self.carry_in = carry
        self.carry_out = {}                    # what the engine leaves to the next chunk
        self.continues = continues
        self.last = False                      # the reading's last chunk (event_data_chunks)
        self.stream_offset = events.offset     # where the own events' bytes are in the stream
        self.own_bytes = len(events.buffer)
        own = events.headers
        if self.context:
            self._buffer = np.concatenate([context.data, events.buffer])
            shift = len(context.data) // 4
            columns = {}
            for name in _HEADER_COLUMNS:
                mine = getattr(own, name) if name in _LAZY_COLUMNS else own._loaded(name)
                if name == "offset4":
                    mine = mine.astype(np.int64) + shift
                columns[name] = _joined(context.columns.get(name), mine, self.context,
                                        len(own))
            headers = EventHeaders(self._buffer, **columns)
        else:
            self._buffer = events.buffer
            headers = own
        section = Section(self.start.offset, self.start.version, [], first_event=0)
        section.continued = carry is not None
        self._layout = Layout([section], headers.offset4, headers.kind, len(self._buffer),
                              event_types=headers.type)
        self.__dict__["_decoded"] = (headers, None)

    def global_row(self, local):
        """The position in the reading of local row `local` (a context row: its own)."""
        local = int(local)
        if local < 0:
            return local + self.lo
        if local < self.context:
            return int(self.context_rows[local])
        return local - self.context + self.lo

    def global_rows_of(self, local):
        """global_row of an array of local rows."""
        local = np.asarray(local, dtype=np.int64)
        own = local - self.context + self.lo
        if self.context:
            own = np.where((local >= 0) & (local < self.context),
                           self.context_rows[np.clip(local, 0, self.context - 1)], own)
        return np.where(local < 0, local + self.lo, own)

    def local_row(self, row):
        """A position in the reading as a row of this chunk: a context event's own row; an
        earlier event not in the context, a negative row (their order kept among
        themselves)."""
        row = int(row)
        if row >= self.lo:
            return row - self.lo + self.context
        at = int(np.searchsorted(self.context_rows, row))
        if at < self.context and int(self.context_rows[at]) == row:
            return at
        return row - self.lo

    def release(self):
        """Forget what was computed for this chunk (the caches other modules keep per
        capture hold it)."""
        from scaptool.scap.capture import _CACHES
        for cache in _CACHES:
            cache.pop(self, None)
        self.__dict__.clear()

    # the section's header blocks, as those of section 0
    def _table(self, name):
        cache = self.__dict__.setdefault("_tables", {})
        if name not in cache:
            try:
                table = self.start.table(name)
            except ScapError as e:
                raise placed(e, path=self.path) from None
            if name != "machine" and table is not None and "section" in table.columns:
                import polars as pl
                table = table.with_columns(pl.lit(0, dtype=table.schema["section"])
                                           .alias("section"))
            cache[name] = table
        return cache[name]

    def _rows(self, name):
        cache = self.__dict__.setdefault("_table_rows", {})
        if name not in cache:
            try:
                rows = self.start.rows(name)
            except ScapError as e:
                raise placed(e, path=self.path) from None
            cache[name] = rows if name == "machine" else [dict(r, section=0) for r in rows]
        return cache[name]

    def mentions(self, needle, event_types=None):
        # the names a chunk's events show may come from any chunk before it: no shortcut
        return True

    def offset_before(self, upto):
        """The stream offset of the block of local row `upto` (progress reports)."""
        if self.context <= upto < len(self):
            first_own = int(self.headers.offset4[self.context]) * 4
            return self.stream_offset + int(self.headers.offset4[upto]) * 4 - first_own
        return self.stream_offset + self.own_bytes

    def param_slices(self, index):
        """(offsets, lengths, present) of parameter number `index`: from a table of every
        parameter's place, read once for the chunk (scap.param_table)."""
        table = self.__dict__.get("_param_table")
        if table is None:
            from scaptool.scap.param_table import ParamTable
            table = self.__dict__["_param_table"] = ParamTable(self.buffer, self.headers)
        return table.slices(index)

    def section_metadata(self, k):
        """The section's header blocks are not in the chunk's buffer: they are its start's."""
        return self.start.data, self.start.local_section

    def progress_point(self, upto):
        """(bytes, bytes in all, events, events in all) read when a pass over this chunk has
        gone through its events before `upto`: positions in the whole reading. How many
        events there are in all is not known while streaming (None); neither are the bytes
        of a pipe or a gzip stream's compressed position (bytes in all: None)."""
        upto = max(self.context, min(upto, len(self)))
        events = self.lo + upto - self.context
        if self.path is None or self.compressed:
            return self.offset_before(upto), None, events, None
        import os
        try:
            total = os.path.getsize(self.path)
        except OSError:
            total = None
        return self.offset_before(upto), total, events, None

    @property
    def counted(self):
        counted = sysdig0293.counted(self.event_types)
        counted[:self.context] = False
        return counted

    @property
    def event_numbers(self):
        counted = self.counted
        before = self.carry_in.numbered if self.carry_in is not None else 0
        num = np.cumsum(counted, dtype=np.uint64) + np.uint64(before)
        return num * counted

    def event_numbers_at(self, rows):
        return self.event_numbers[np.asarray(rows, dtype=np.int64)]


def _joined(theirs, mine, n_theirs, n_mine):
    """A header column over context and own events (zeros where one side has none)."""
    if theirs is None and mine is None:
        return None
    if theirs is None:
        theirs = np.zeros(n_theirs, dtype=mine.dtype)
    if mine is None:
        mine = np.zeros(n_mine, dtype=theirs.dtype)
    dtype = np.result_type(theirs.dtype, mine.dtype)
    return np.concatenate([theirs.astype(dtype), mine.astype(dtype)])


def context_of(chunk, local_rows):
    """The Context holding these rows of a chunk: their blocks copied out, with their header
    columns, for the next chunk."""
    local_rows = np.asarray(local_rows, dtype=np.int64)
    h = chunk.headers
    if not len(local_rows):
        return Context.empty()
    starts = h.block_offset[local_rows]
    buf = chunk.buffer
    words = buf[: len(buf) // 4 * 4].view("<u4")
    lengths = words[starts // 4 + 1].astype(np.int64)
    data = np.concatenate([buf[s:s + n] for s, n in zip(starts.tolist(), lengths.tolist())])
    columns = {"offset4": np.concatenate([[0], np.cumsum(lengths)[:-1]]) // 4}
    for name in _HEADER_COLUMNS[1:]:
        column = getattr(h, name) if name in _LAZY_COLUMNS else h._loaded(name)
        columns[name] = None if column is None else column[local_rows]
    return Context(data, columns, chunk.global_rows_of(local_rows))


def context_rows(chunk):
    """The rows of a chunk (its context and own events) that the next chunk needs to read:
    per thread, its events back from its last one that counts for sysdig's per-thread reset
    to its last enter (the enter an exit pairs with, and the exits whose fd sets came after
    it), and the enters right before that one."""
    n = len(chunk)
    if not n:
        return np.zeros(0, dtype=np.int64)
    h = chunk.headers
    types = np.asarray(h.type)
    tids = np.asarray(h.tid).astype(np.int64)
    counts = ~sysdig0293.skips_reset()[types]
    # the counting events in (thread, position) order: each one's predecessor in its thread
    order = np.lexsort((np.arange(n), tids))
    mine = order[counts[order]]
    if not len(mine):
        return np.zeros(0, dtype=np.int64)
    same_thread = np.r_[False, tids[mine[1:]] == tids[mine[:-1]]]
    previous = np.full(n, -1, dtype=np.int64)
    previous[mine[same_thread]] = mine[np.flatnonzero(same_thread) - 1]
    last = mine[np.r_[tids[mine[1:]] != tids[mine[:-1]], True]]
    keep = [last]
    # back from each thread's last counting event: the exits after its last enter, that
    # enter, and the enters right before it (an enter sysdig does not copy leaves an older
    # copy in place); bounded, for threads that lost their enters
    walking = last
    seen_enter = types[last] % 2 == 0
    for _ in range(_MAX_CONTEXT_PER_THREAD):
        before = previous[walking]
        go_on = before >= 0
        walking, seen_enter, before = walking[go_on], seen_enter[go_on], before[go_on]
        is_enter = types[before] % 2 == 0
        # before the last enter, only consecutive enters
        take = ~seen_enter | is_enter
        walking, seen_enter = before[take], seen_enter[take] | is_enter[take]
        if not len(walking):
            break
        keep.append(walking)
    return np.unique(np.concatenate(keep))


class Reading:
    """One reading of a capture by chunks: the memory its chunks share (EventData.memory),
    and, once it is over, the error that ended it early (None: read to its end)."""

    def __init__(self):
        self.memory = {}
        self.damage = None
        self.reader = None


def event_data_chunks(source, events=DEFAULT_CHUNK_EVENTS, *, max_wait_ms="pipes",
                      reading=None, window=None, **options):
    """EventData over each chunk of a capture in turn (query.events.EventData options), read
    from `source` (a path, an open Capture (its file is read again), a binary file object or a
    file descriptor) with scap.stream.StreamReader, with the state of the chunks before carried
    in. A chunk's state is advanced once the consumer is done with it, whether or not it asked
    for it. `window`: the bytes the reader reads at a time, and the most a chunk holds
    (scap.stream's default when None). Where the capture is damaged the chunks end there, and `reading.damage` (a Reading
    given, or made) says where."""
    from scaptool.scap.stream import EventChunk, StreamReader

    from .events import EventData
    if isinstance(source, Capture):
        source = source.path
    reading = reading if reading is not None else Reading()
    sizes = {} if window is None else {"max_bytes": window, "read_size": window}
    reader = StreamReader(source, max_events=events, max_wait_ms=max_wait_ms, **sizes)
    reading.reader = reader
    memory = reading.memory
    items = iter(reader)
    carry = None
    uncollected = given_up = 0   # events and chunks given up since the last collection
    item = _next(items, reading)
    # From a file, a chunk is handed out once the reader has the next item: whether the
    # section goes on, or the reading ends there (chunk.last), is known then. From a pipe the
    # next item may be a while coming (a live capture hands a chunk out as soon as it goes
    # quiet), so a chunk goes out at once, as continuing; where the stream then ends, an
    # empty chunk follows, the last one, for what is done at the end (a chisel's table).
    ahead = reader.from_file
    previous = None
    while item is not None:
        if not isinstance(item, EventChunk):
            carry = None   # a section starts: its state comes from its header blocks
            item = _next(items, reading)
            continue
        if ahead:
            following = _next(items, reading)
            continues = isinstance(following, EventChunk)
        else:
            continues = True
        chunk = ChunkCapture(item, carry, continues, path=reader.path,
                             compressed=bool(reader.compressed))
        chunk.last = ahead and following is None   # nothing follows it in the reading
        previous = item
        data = EventData(chunk, memory=memory, **options)
        yield data
        _remember(data, memory)
        carry = _advance(chunk, data) if continues else None
        # a chunk's objects refer to each other (caches keyed by it, lookups holding it):
        # collect them before the next chunk, or memory would grow with the capture. Small
        # chunks (a live stream hands one out as soon as it goes quiet) are collected a
        # quarter chunk's worth of events, or eight chunks, at a time: a collection costs
        # 5-25 ms whatever the chunk.
        uncollected += len(chunk)
        given_up += 1
        chunk.release()
        del chunk, data
        if uncollected >= events // 4 or given_up >= 8:
            gc.collect()
            uncollected = given_up = 0
        item = following if ahead else _next(items, reading)
    if not ahead and previous is not None and carry is not None:
        # the stream ended after a chunk handed out as continuing: the empty last one
        chunk = ChunkCapture(_emptied(previous), carry, False, path=reader.path,
                             compressed=bool(reader.compressed))
        chunk.last = True
        data = EventData(chunk, memory=memory, **options)
        yield data
        chunk.release()


def _emptied(events):
    """An EventChunk of no events, where `events` ends (the empty last chunk of a stream)."""
    from scaptool.scap.stream import EventChunk
    end = len(events.buffer)
    layout = Layout([], events.layout.event_offsets4[:0], events.layout.event_kinds[:0], 0,
                    None, None if events.layout.event_types is None else
                    events.layout.event_types[:0])
    headers = events.headers.take(slice(0, 0))
    headers.buffer = events.buffer[end:]
    return EventChunk(events.section, events.buffer[end:], events.offset + end, layout,
                      headers, events.first_event + len(events),
                      events.first_in_section + len(events))


def _next(items, reading):
    """The stream's next item; None at its end, or at damage (kept on the reading)."""
    from scaptool.scap.errors import ScapError
    try:
        return next(items)
    except StopIteration:
        return None
    except ScapError as e:
        reading.damage = e
        return None


def _advance(chunk, data):
    """The Carry a chunk leaves: its state modules run if the consumer did not ask for them."""
    from . import fds, threads
    from .fields_container import carry_containers
    from .fields_proc import carry_memory
    fds.fd_state(chunk)        # the fd tables, with the thread model they keep
    replayed = data.thread_replay
    parts = dict(chunk.carry_out)
    parts["threads"] = threads.with_placeholders(chunk, replayed, parts["threads"])
    carry_memory(data, parts)
    carry_containers(data, parts)
    numbers = chunk.event_numbers
    numbered = int(numbers.max()) if len(numbers) and numbers.max() > 0 else \
        (chunk.carry_in.numbered if chunk.carry_in is not None else 0)
    return Carry(section=chunk.section_index, numbered=numbered,
                 context=context_of(chunk, context_rows(chunk)), parts=parts)


def _remember(data, memory):
    """What the chunks after this one need to know of its events, whatever the consumer
    asked: the first event's time (evt.reltime, -t r) and the last read one's (evt.deltatime)."""
    counted = data.capture.counted
    read = np.flatnonzero(counted)
    if not len(read):
        return
    if "first_ts" not in memory:   # container events do not set it (format._first_timestamp)
        first = np.flatnonzero(counted & ~np.isin(data.headers.type,
                                                  list(sysdig0293.LEADING_STATE_TYPES)))
        if len(first):
            memory["first_ts"] = int(data.headers.ts[first[0]])
    memory["read_ts_before"] = int(data.headers.ts[read[-1]])


# (what fields remember from chunk to chunk lives below the field modules, which this module
# runs; re-exported here for readers of a chunked reading)
from .chunk_memory import (carried_end, carried_start, own_rows, printed_end,  # noqa: E402,F401
                           printed_start, reading_rows)
