"""A capture read a chunk of events at a time, with sysdig's state carried from one chunk to
the next.

sysdig keeps state while it reads: its thread and fd tables, the last enter event of each
thread (to pair the exit with), counters. A chunk here is a small capture of its own, a
ChunkCapture: the events of one stretch of one section, preceded by a few *context* events
(the enter events the chunk's first exits pair with), and opened not with the section's
process and fd lists but with the state the previous chunk left (a Carry). The engine then
computes every field of a chunk as it does for a whole capture; what a chunk leaves is taken
from it before the next one starts, so memory follows the chunk, not the capture.

Context events are hidden: they are not numbered, shown, counted, nor replayed again (their
effects are in the carried state); they are there to be read, as sysdig reads its copies.
"""
import dataclasses
import gc

import numpy as np

from scaptool.scap.capture import SYSDIG_0293_EVENT_MAX, Capture
from scaptool.scap.scan import Layout, Section

from .pairing import _skips_reset

DEFAULT_CHUNK_EVENTS = 1 << 17
# how far back a thread's context goes at most (its last enter is almost always 1-2 back)
_MAX_CONTEXT_PER_THREAD = 64


@dataclasses.dataclass
class Carry:
    """What the events read so far leave to the next chunk of a section.

    Each part belongs to the module that made it (threads, fds, fields with a memory):
    `parts[name]` is theirs to read and write. Rows in carried values are global (the
    index of the event in the whole section's reading), so that a chunk can tell them from
    its own."""
    section: int = 0
    numbered: int = 0             # events sysdig numbered before this chunk (evt.num)
    first_row: int = 0            # global index of the chunk's first own event
    context: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(0, dtype=np.int64))  # global rows of context events
    parts: dict = dataclasses.field(default_factory=dict)


class ChunkCapture(Capture):
    """Events [lo, hi) of one section of a capture, with context events before them: a
    capture of its own for the engine. `carry` is what the chunks before it left (None for
    the first chunk of a section: its state comes from the section's header blocks)."""

    def __init__(self, parent, section_index, lo, hi, carry, continues):
        self.path = parent.path
        self.compressed = parent.compressed
        self._stream_damage = None
        self.parent = parent
        self._buffer = parent.buffer
        context = carry.context if carry is not None else np.zeros(0, dtype=np.int64)
        rows = np.concatenate([context, np.arange(lo, hi, dtype=np.int64)])
        self.context = len(context)          # rows [0, context) are context events
        self.offset = lo - self.context      # global row of local row r is rows[r]
        self.global_rows = rows
        self.carry_in = carry
        self.carry_out = {}                  # what the engine leaves to the next chunk
        self.continues = continues           # does the section go on after this chunk?
        self.lo = lo
        self.section_index = section_index
        parent_section = parent.sections[section_index]
        headers = parent.headers.take(rows)
        section = Section(parent_section.offset, parent_section.version,
                          parent_section.metadata, first_event=0)
        section.continued = carry is not None
        section.parent_index = section_index
        self._layout = Layout([section], headers.offset4, headers.kind, parent.layout.end,
                              event_types=headers.type)
        self.__dict__["_decoded"] = (headers, None)

    def global_row(self, local):
        """The index in the whole reading of local row `local` (a context row: its own)."""
        local = int(local)
        if local < 0:
            return local + self.lo
        if local < self.context:
            return int(self.global_rows[local])
        return local - self.context + self.lo

    def global_rows_of(self, local):
        """global_row of an array of local rows (not before the context)."""
        local = np.asarray(local, dtype=np.int64)
        own = local - self.context + self.lo
        if self.context:
            own = np.where((local >= 0) & (local < self.context),
                           self.global_rows[np.clip(local, 0, self.context - 1)], own)
        return np.where(local < 0, local + self.lo, own)

    def local_row(self, row):
        """A global row as a row of this chunk: a context event's own row; an earlier event
        not in the context, a negative row (their order kept among themselves)."""
        row = int(row)
        if row >= self.lo:
            return row - self.lo + self.context
        at = int(np.searchsorted(self.global_rows[:self.context], row))
        if at < self.context and int(self.global_rows[at]) == row:
            return at
        return row - self.lo

    def release(self):
        """Forget what was computed for this chunk (the caches other modules keep per
        capture hold it), keeping the parent's buffer, which other chunks still read."""
        from scaptool.scap.capture import _CACHES
        for cache in _CACHES:
            cache.pop(self, None)
        self.__dict__.clear()

    # the metadata tables of the parent's section, as section 0
    def _table(self, name):
        cache = self.__dict__.setdefault("_tables", {})
        if name not in cache:
            table = self.parent._table(name)
            if name != "machine" and table is not None and "section" in table.columns:
                import polars as pl
                table = table.filter(pl.col("section") == self.section_index) \
                    .with_columns(pl.lit(0, dtype=table.schema["section"]).alias("section"))
            cache[name] = table
        return cache[name]

    def _rows(self, name):
        cache = self.__dict__.setdefault("_table_rows", {})
        if name not in cache:
            cache[name] = [dict(r, section=0) for r in self.parent._rows(name)
                           if r.get("section", 0) == self.section_index]
        return cache[name]

    @property
    def counted(self):
        counted = self.event_types < SYSDIG_0293_EVENT_MAX
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


def section_chunks(capture, events=DEFAULT_CHUNK_EVENTS):
    """(section index, lo, hi) of the chunks of every section, in file order."""
    starts = [s.first_event for s in capture.sections] + [len(capture)]
    for k in range(len(capture.sections)):
        for lo in range(starts[k], starts[k + 1], events):
            yield k, lo, min(lo + events, starts[k + 1])
        if starts[k] == starts[k + 1]:
            yield k, starts[k], starts[k]


def context_rows(capture, rows):
    """The events among `rows` (global, ascending: a chunk's context and own events) that the
    next chunk needs to read: per thread, its events back from its last one that counts for
    sysdig's per-thread reset to its last enter (the enter an exit pairs with, and the exits
    whose fd sets came after it), and the enters right before that one."""
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return rows
    h = capture.headers
    types = np.asarray(h.type)[rows]
    tids = np.asarray(h.tid)[rows].astype(np.int64)
    counts = ~_skips_reset()[types]
    # the counting events in (thread, position) order: each one's predecessor in its thread
    order = np.lexsort((np.arange(len(rows)), tids))
    mine = order[counts[order]]
    if not len(mine):
        return rows[:0]
    same_thread = np.r_[False, tids[mine[1:]] == tids[mine[:-1]]]
    previous = np.full(len(rows), -1, dtype=np.int64)
    previous[mine[same_thread]] = mine[np.flatnonzero(same_thread) - 1]
    last = mine[np.r_[tids[mine[1:]] != tids[mine[:-1]], True]] if len(mine) else mine
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
    return rows[np.unique(np.concatenate(keep))]


def event_data_chunks(capture, events=DEFAULT_CHUNK_EVENTS, **options):
    """EventData over each chunk of the capture in turn (query.events.EventData options),
    with the state of the chunks before it carried in. A chunk's state is advanced once the
    consumer is done with it (before the next one is made), whether or not it asked for it."""
    from .events import EventData
    ends = [s.first_event for s in capture.sections[1:]] + [len(capture)]
    carry = None
    memory = {}
    for k, lo, hi in section_chunks(capture, events):
        continues = hi < ends[k]
        chunk = ChunkCapture(capture, k, lo, hi, carry if carry is not None and
                             carry.section == k else None, continues)
        data = EventData(chunk, memory=memory, **options)
        yield data
        _remember(data, memory)
        if not continues:
            carry = None
        else:
            carry = _advance(chunk, data, k)
        # a chunk's objects refer to each other (caches keyed by it, lookups holding it):
        # collect them now, before the next chunk, or memory would grow with the capture
        chunk.release()
        del chunk, data
        gc.collect()


def _remember(data, memory):
    """What the chunks after this one need to know of its events, whatever the consumer
    asked: the first event's time (evt.reltime, -t r) and the last read one's (evt.deltatime)."""
    from .summary import INITIAL_STATE_TYPES_0293
    counted = data.capture.counted
    read = np.flatnonzero(counted)
    if not len(read):
        return
    if "first_ts" not in memory:   # container events do not set it (format._first_timestamp)
        first = np.flatnonzero(counted & ~np.isin(data.headers.type,
                                                  list(INITIAL_STATE_TYPES_0293)))
        if len(first):
            memory["first_ts"] = int(data.headers.ts[first[0]])
    memory["read_ts_before"] = int(data.headers.ts[read[-1]])


def _advance(chunk, data, section):
    """The Carry a chunk leaves: its state modules run if the consumer did not ask for them."""
    from . import fds, threads
    fds.fd_state(chunk)        # the fd tables, with the thread model they keep
    replayed = data.thread_replay
    parts = dict(chunk.carry_out)
    parts["threads"] = threads.with_placeholders(chunk, replayed, parts["threads"])
    from .fields_container import carry_containers
    from .fields_proc import carry_memory
    carry_memory(data, parts)
    carry_containers(data, parts)
    numbers = chunk.event_numbers
    numbered = int(numbers.max()) if len(numbers) and numbers.max() > 0 else \
        (chunk.carry_in.numbered if chunk.carry_in is not None else 0)
    return Carry(section=section, numbered=numbered, first_row=chunk.lo + len(chunk) -
                 chunk.context, context=context_rows(chunk.parent, chunk.global_rows),
                 parts=parts)


def carried_start(data, key, default):
    """What a field that remembers the events before (a running value, a last one) starts
    this chunk's scan with: `default` for a whole capture or a reading's first chunk, else
    what the scan of the chunk before ended with. Asked again for the same chunk, the same
    start (the field's value may be computed more than once)."""
    lo = getattr(data.capture, "lo", None)
    entry = data.memory.get(key)
    if lo is None or entry is None:
        return default
    return entry[1] if entry[0] == lo else entry[2]


def carried_end(data, key, start, end):
    """Remember where this chunk's scan ended (see carried_start)."""
    lo = getattr(data.capture, "lo", None)
    if lo is not None:
        data.memory[key] = (lo, start, end)


def own_rows(data):
    """The rows of a chunk that are its own (after its context events); all for a capture."""
    return np.arange(getattr(data.capture, "context", 0), len(data), dtype=np.int64)


def printed_start(data, key, rows, default):
    """What a field that remembers the last printed event starts a batch of printed `rows`
    with: what the batch before left, if these rows come after its rows in the reading
    (batches and chunks in order); `default` for a new pass."""
    entry = data.memory.get(key)
    if entry is None or not len(rows):
        return default
    first = int(reading_rows(data, np.asarray(rows[:1]))[0])
    return entry[1] if entry[0] < first else default


def printed_end(data, key, rows, value):
    if len(rows):
        data.memory[key] = (int(reading_rows(data, np.asarray(rows[-1:]))[0]), value)


def reading_rows(data, rows):
    """Where rows are in the whole reading: a chunk's rows after those of the chunks before
    it; a whole capture's rows as they are."""
    to_global = getattr(data.capture, "global_rows_of", None)
    rows = np.asarray(rows, dtype=np.int64)
    return rows if to_global is None else to_global(rows)
