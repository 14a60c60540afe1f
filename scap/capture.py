"""A capture opened for reading: metadata tables and frames of events.

Opening a capture maps (or inflates) the file, finds every block and gathers the fixed event
headers into numpy columns. Parameters are decoded only when asked for, by name, for all events
at once; metadata blocks are few and small, so construct parses them.

A capture is a context manager: `with scap.open(path) as cap:` closes it on the way out, which
releases its memory map (see Capture.close).
"""
import functools
import mmap
import os
import weakref
from collections import Counter

import numpy as np

from . import blocktypes as bt
from . import eventtable
from . import sysdig0293
from .errors import ScapError, TruncatedError, placed
from .eventtable import PT
from .events import decode_headers, param_slices
from .scan import scan
from .source import load



# Up to this many events, searching some event types copies them out rather than searching the
# whole file.
_FEW_EVENTS = 200_000
# Up to this many rows, a byte-like parameter is copied into Python bytes, not viewed by Arrow.
_FEW_ROWS = 1 << 15


# Dicts keyed by Capture that other modules keep (per_capture_cache): close() empties the
# capture's entries, whose values often hold the capture itself and would keep it alive.
_CACHES = []


def per_capture_cache():
    """A dict keyed by Capture (weakly) whose entry for a capture goes when it is closed."""
    cache = weakref.WeakKeyDictionary()
    _CACHES.append(cache)
    return cache


class Capture:
    """A .scap capture: scap.open(path), or `with scap.open(path) as cap:`."""

    # Who hears how far the long passes over a capture got: None, or an object with
    # inflating(path, bytes read, file size), called while a gzip file is inflated, and
    # passed(capture, phase, upto), called once the capture is opened (phase 'opened') and by
    # report(). The command line sets one here, for every capture, when it shows a progress bar
    # or -P's lines (cli/progress.py); a program may set its own, on the class or on a capture.
    progress = None

    def __init__(self, path):
        self.path = str(path)
        watcher = self.progress
        self._buffer, self.compressed, self._stream_damage = load(
            path, None if watcher is None else functools.partial(watcher.inflating, self.path))
        self._layout = scan(self._buffer, self.path)
        if watcher is not None:
            watcher.passed(self, "opened", 0)

    @property
    def buffer(self):
        """The block stream as a read-only uint8 numpy array (over a memory map for a plain
        file, over the inflated bytes for a gzip one)."""
        if self._buffer is None:
            raise ScapError("capture is closed", path=self.path)
        return self._buffer

    @property
    def layout(self):
        """Where the sections, metadata blocks and events lie (scan.Layout)."""
        if self._layout is None:
            raise ScapError("capture is closed", path=self.path)
        return self._layout

    # -- closing -------------------------------------------------------------------------------
    @property
    def closed(self):
        return self._buffer is None

    def close(self):
        """Drop everything read or computed from the capture and release its memory map.
        Afterwards any use of the capture raises ScapError("capture is closed").

        Columns handed out before (a byte-buffer column of a frame, say) may still view the
        mapped bytes: unmapping them would leave those columns pointing at nothing, so then
        the mapping stays until the last of them is gone, and Python releases it."""
        if self._buffer is None:
            return
        owner = self._buffer.base
        mapping = getattr(owner, "obj", owner)
        # our own references first: our numpy array and its memoryview are views that pin it
        self._buffer = self._layout = None
        owner = None
        for name in [name for name in self.__dict__ if name not in _KEPT_ON_CLOSE]:
            del self.__dict__[name]
        for cache in _CACHES:
            cache.pop(self, None)
        if isinstance(mapping, mmap.mmap):
            _unmap(mapping)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"<scap.Capture {self.path!r}{' (closed)' if self.closed else ''}>"

    def report(self, phase, upto):
        """Tell the progress watcher, if any, that a pass over the events ('printing',
        'writing') has gone through every event before index `upto` ('end': reading stops
        there, as with -n). Nothing to do when nobody watches."""
        if self.progress is not None:
            self.progress.passed(self, phase, upto)

    def offset_before(self, upto):
        """Bytes of the block stream before event `upto`; all of them for upto = the number
        of events."""
        offsets = self.layout.event_offsets4
        return int(offsets[upto]) * 4 if upto < len(offsets) else len(self.buffer)

    def section_metadata(self, k):
        """(bytes, scan.Section) where section k's metadata blocks are read: the section's
        offsets index the bytes."""
        return self.buffer, self.sections[k]

    def progress_point(self, upto):
        """How far a pass that has gone through the events before `upto` got, for progress
        reports: (bytes of the file, bytes in all, events, events in all). A gzip capture's
        bytes are those of its file on disk, in proportion to the inflated stream."""
        total = self.file_size
        done = round(total * self.offset_before(upto) / max(1, len(self.buffer)))
        return done, total, upto, len(self.layout.event_offsets4)

    @functools.cached_property
    def file_size(self):
        """Bytes of the file on disk (compressed, for a gzip capture)."""
        return os.path.getsize(self.path) if self.compressed else len(self.buffer)

    @functools.cached_property
    def _decoded(self):
        headers, damage = decode_headers(self.buffer, self.layout, self.path)
        self.layout.event_types = None  # headers.type has them now
        self.__dict__.pop("event_types", None)
        if damage is not None and self.layout.damage is None:
            import warnings
            from .errors import ScapWarning
            warnings.warn(ScapWarning(f"{damage}; keeping everything before it"), stacklevel=3)
        # an event that cannot be read comes before the scan's damage: reading stops there
        return headers, damage or self.layout.damage

    @property
    def headers(self):
        """Fixed header columns of every event (decoded on first use)."""
        return self._decoded[0]

    @property
    def damage(self):
        """The ScapError that stopped reading early, or None: the first damage there is. (A
        gzip stream cut short or damaged is named rather than the block it leaves unfinished
        at the end of the data, its consequence.)"""
        first = self._decoded[1]
        if self._stream_damage is not None and (first is None or
                                                isinstance(first, TruncatedError)):
            return self._stream_damage
        return first

    @functools.cached_property
    def event_types(self):
        """The type of every event, without decoding the other header fields where possible.

        V1 records need their parameter count inferred before we know which events are
        readable (libscap stops at the first it cannot convert), so those go the long way."""
        if "_decoded" in self.__dict__:
            return self.headers.type
        kinds = self.layout.event_kinds
        if np.count_nonzero((kinds & 2) == 0):  # V1 records
            return self.headers.type
        if self.layout.event_types is not None:
            return self.layout.event_types
        offsets = self.layout.event_offsets4.astype(np.int64) * 4
        # the record starts 10 bytes in (14 with a flags field); its type 20 bytes later
        offsets += 30 + 4 * (kinds & 1)
        return (self.buffer[offsets].astype(np.uint16) |
                (self.buffer[offsets + 1].astype(np.uint16) << 8))

    # -- sections and metadata -------------------------------------------------------------
    @property
    def sections(self):
        return self.layout.sections

    @property
    def version(self):
        major, minor = self.layout.sections[0].version
        return f"{major}.{minor}"

    def _table(self, name):
        """A metadata table, parsed from its blocks on first use."""
        cache = self.__dict__.setdefault("_tables", {})
        if name not in cache:
            from . import metadata  # polars and construct load only when tables are asked for
            rows = self._rows(name)
            cache[name] = rows if name == "machine" else metadata.table_of(rows, name)
        return cache[name]

    def _rows(self, name):
        """A metadata table as the list of its rows (dicts), parsed on first use."""
        cache = self.__dict__.setdefault("_table_rows", {})
        if name not in cache:
            from . import metadata
            try:
                cache[name] = metadata.read_rows(self.buffer, self.layout.sections, name)
            except ScapError as e:
                raise placed(e, path=self.path) from None
        return cache[name]

    @property
    def process_rows(self):
        """The rows of `processes` as dicts, without building the table (a thread replay
        reads them one by one)."""
        return self._rows("processes")

    @property
    def machine(self):
        """Machine info of the first section, as a dict (empty if the capture has none)."""
        return self._table("machine")

    @property
    def processes(self):
        """One row per thread from the process-list blocks (column `section` tells which)."""
        return self._table("processes")

    @property
    def fds(self):
        return self._table("fds")

    @property
    def users(self):
        return self._table("users")

    @property
    def groups(self):
        return self._table("groups")

    @property
    def interfaces(self):
        return self._table("interfaces")

    def block_counts(self):
        """Blocks by type name, in order of first appearance."""
        counts = Counter()
        for section in self.layout.sections:
            counts["SHB"] += 1
            for _, btype, _ in section.metadata:
                counts[bt.name(btype)] += 1
            for btype, count in section.skipped.items():
                counts[bt.name(btype)] += count
        names, per = np.unique(self.headers.block_type, return_counts=True)
        for btype, count in zip(names, per):
            counts[bt.name(int(btype))] += int(count)
        return dict(counts)

    def mentions(self, needle, event_types=None):
        """Do these bytes occur in the capture? (A fast necessary test: a name that no block
        holds can be no event's fd name.) With event_types (a bool per event id), only the
        metadata blocks and the events of those types are searched. True when it cannot tell
        cheaply."""
        if event_types is not None:
            rows = np.flatnonzero(event_types[self.event_types])
            if len(rows) <= _FEW_EVENTS:
                return self._mentions_in(needle, rows)
        base = self.buffer.base
        owner = getattr(base, "obj", base)
        if hasattr(owner, "find"):   # an mmap, bytes or bytearray: searched without a copy
            return owner.find(needle) >= 0
        return True

    def _mentions_in(self, needle, rows):
        view = memoryview(self.buffer)
        ranges = [(offset, offset + length) for section in self.sections
                  for offset, _, length in section.metadata]
        if len(rows):
            starts = self.layout.event_offsets4[rows].astype(np.int64) * 4
            lengths = self.buffer[:len(self.buffer) // 4 * 4].view("<u4")[starts // 4 + 1]
            ranges += zip(starts.tolist(), (starts + lengths).tolist())
        # separated, so that a needle cannot be made of the end of one block and the next
        return needle in b"\0".join([view[lo:hi] for lo, hi in ranges])

    # -- events ----------------------------------------------------------------------------
    def __len__(self):
        return len(self.headers)

    @functools.cached_property
    def event_numbers(self):
        """evt.num as sysdig 0.29.3 counts: every event it returns, from 1; 0 for skipped types."""
        return sysdig0293.event_numbers(self.event_types)

    def event_numbers_at(self, rows):
        """event_numbers[rows], without numbering every event: the uncounted types are few."""
        rows = np.asarray(rows, dtype=np.int64)
        if "event_numbers" in self.__dict__:
            return self.event_numbers[rows]
        uncounted = np.flatnonzero(~sysdig0293.counted(self.event_types))
        num = rows + 1 - np.searchsorted(uncounted, rows, side="right")
        num[np.isin(rows, uncounted)] = 0
        return num.astype(np.uint64)

    @functools.cached_property
    def counted(self):
        """Does sysdig 0.29.3 read (and number) each event? It skips types it does not know."""
        return sysdig0293.counted(self.event_types)

    def events(self, params=()):
        """A DataFrame of the events in file order, the named parameters as `arg.NAME`
        (event_frames.py lists the columns). lazy_events is its lazy twin."""
        from .event_frames import events
        return events(self, params)

    def lazy_events(self, params=()):
        """events() as a LazyFrame: a column is computed (a parameter decoded) only when a
        query uses it."""
        from .event_frames import lazy_events
        return lazy_events(self, params)

    def param(self, name, rows=None):
        """A Series with the parameter called `name` for every event (null where absent), or
        for the events at `rows` only (an array of row numbers), in that order."""
        import polars as pl

        from .columns import polars_series
        h, types = self.headers, self.event_types
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            h, types = h.take(rows), types[rows]
        n = len(h)
        index, ptypes, codecs = self._param_codecs(name, _types_seen(types))
        kinds = sorted(codecs)
        if not codecs:
            return pl.Series(name, [None] * n, dtype=pl.Null)
        if all(c.column_kind in ("binary", "string") for c in codecs.values()):
            strip, empty = _byte_rules(ptypes, codecs)
            if rows is not None and len(rows) <= _FEW_ROWS:
                return pl.Series(name, self._bytes_values(h, types, index, strip, empty),
                                 dtype=pl.Binary)
            return polars_series(name, self._bytes_column(h, types, index, strip, empty))
        if all(c.column_kind in ("int", "float") for c in codecs.values()):
            return self._number_column(h, types, name, index, ptypes, codecs)
        per_type = ptypes[types]
        offsets, lengths, present = param_slices(self.buffer, h, index[types])
        parts = []
        for pt in kinds:
            mine = present & (per_type == pt)
            arr = codecs[pt].decode_column(self.buffer, np.where(mine, offsets, 0),
                                           np.where(mine, lengths, 0))
            parts.append((mine, polars_series(name, arr)))
        dtype = _common_dtype([s.dtype for _, s in parts])
        out = pl.Series(name, [None] * n, dtype=dtype)
        for mine, series in parts:
            out = pl.select(pl.when(pl.Series(mine)).then(series.cast(dtype)).otherwise(out)) \
                .to_series().alias(name)
        return out

    def param_lists(self, names, rows):
        """{name: self.param(name, rows).to_list()} for each name, for a few rows: where the
        parameters lie is worked out once for all the names, and no Series is built."""
        from .row_params import RowParams
        rows = np.asarray(rows, dtype=np.int64)
        h, types = self.headers.take(rows), self.event_types[rows]
        where = RowParams(self.buffer, h)
        seen = _types_seen(types)
        out = {}
        for name in names:
            index, ptypes, codecs = self._param_codecs(name, seen)
            column_kinds = {c.column_kind for c in codecs.values()}
            if not codecs:
                out[name] = [None] * len(rows)
            elif column_kinds <= {"binary", "string"}:
                strip, empty = _byte_rules(ptypes, codecs)
                out[name] = self._bytes_values(h, types, index, strip, empty, where)
            elif column_kinds <= {"int", "float"}:
                decoded = self._number_values(h, types, index, ptypes, codecs, where)
                if decoded is None:
                    out[name] = [None] * len(rows)
                else:
                    values, valid = decoded
                    out[name] = [v if ok else None for v, ok in
                                 zip(values.tolist(), valid.tolist())]
            else:
                out[name] = self.param(name, rows=rows).to_list()
        return out

    def _param_layout(self, name):
        """Per event type: the position and the PT type of the parameter called `name`."""
        return _param_layout(name)

    def _param_codecs(self, name, seen):
        """(position per event type, PT type per event type, {PT type: codec} of the types
        the parameter has among the event types `seen`)."""
        from .codecs import codec_for
        index, ptypes = self._param_layout(name)
        codecs = {t: codec_for(t) for t in sorted({int(t) for t in ptypes[seen] if t >= 0})}
        return index, ptypes, codecs

    def _number_column(self, h, types, name, position, ptypes, codecs):
        """A numeric parameter: decoded only for the events whose type has it."""
        import polars as pl
        decoded = self._number_values(h, types, position, ptypes, codecs)
        if decoded is None:
            return pl.Series(name, [None] * len(h), dtype=pl.Null)
        values, valid = decoded
        series = pl.Series(name, values)
        return series if valid.all() else series.set(pl.Series(~valid), None)

    def _number_values(self, h, types, position, ptypes, codecs, where=None):
        """(values, valid) of a numeric parameter, in one numpy dtype (None: no event has
        it); where: the events' RowParams, if found already."""
        n = len(h)
        rows = np.flatnonzero(position[types] >= 0)
        if where is None:
            part = h.take(rows)
            offsets, lengths, present = param_slices(self.buffer, part, position[types[rows]])
        else:
            offsets, lengths, present = where.slices(position[types])
            offsets, lengths, present = offsets[rows], lengths[rows], present[rows]
        per_type = ptypes[types[rows]]
        decoded = []
        for pt, codec in codecs.items():
            mine = present & (per_type == pt)
            if mine.any():
                values, valid = codec.decode_numbers(self.buffer, offsets[mine], lengths[mine])
                decoded.append((mine, values, valid))
        if not decoded:
            return None
        kinds = {values.dtype.kind for _, values, _ in decoded}
        dtype = np.float64 if "f" in kinds else np.int64 if "i" in kinds or len(decoded) > 1 \
            else decoded[0][1].dtype
        out = np.zeros(n, dtype=dtype)
        valid_all = np.zeros(n, dtype=bool)
        for mine, values, valid in decoded:
            at = rows[mine]
            out[at] = np.where(valid, values, 0)
            valid_all[at] = valid
        return out, valid_all

    def _bytes_values(self, h, types, position, strip_by_type, empty_by_type, where=None):
        """A byte-like parameter as a list of bytes (None where absent): for a few rows, where
        building Arrow views costs more than copying the values. where: the events'
        RowParams, if found already."""
        from .events import _param_slices_chunk
        buf = self.buffer
        offsets, lengths, present = _param_slices_chunk(buf, h, position[types]) \
            if where is None else where.slices(position[types])
        lengths, present = _trimmed(buf, offsets, lengths, present, strip_by_type[types],
                                    empty_by_type[types])
        view = memoryview(buf)
        return [bytes(view[o:o + n]) if p else None for o, n, p in
                zip(offsets.tolist(), lengths.tolist(), present.tolist())]

    def _bytes_column(self, h, types, position, strip_by_type, empty_by_type):
        """A BinaryView column of a byte-like parameter, built straight into its final views
        in small chunks (no full-length temporaries beside the result), and only for the events
        whose type has the parameter: the others stay empty nulls."""
        from .columns import fill_views, new_views, views_array
        from .events import _param_slices_chunk
        buf = self.buffer
        views = new_views(len(h))
        present_all = np.zeros(len(h), dtype=bool)
        having = np.flatnonzero(position[types] >= 0)
        dense = len(having) > len(h) // 2
        step = 1 << 16  # small chunks: temporaries recycled, not faulted anew
        for lo in range(0, len(h) if dense else len(having), step):
            where = slice(lo, lo + step) if dense else having[lo:lo + step]
            part = h.take(where)
            offsets, lengths, present = _param_slices_chunk(buf, part, position[part.type])
            lengths, present = _trimmed(buf, offsets, lengths, present,
                                        strip_by_type[part.type], empty_by_type[part.type])
            offsets, lengths = np.where(present, offsets, 0), np.where(present, lengths, 0)
            if dense:
                fill_views(views[where], buf, offsets, lengths)
            else:
                chunk = new_views(len(where))
                fill_views(chunk, buf, offsets, lengths)
                views[where] = chunk
            present_all[where] = present
        return views_array(views, buf, validity=np.packbits(present_all, bitorder="little"))

    def param_index(self, name):
        """Per event, the position of the parameter called `name` in its type (-1: none)."""
        return self._param_layout(name)[0][self.event_types]

    def param_slices(self, index):
        """(offsets, lengths, present) into self.buffer of parameter number `index`."""
        return param_slices(self.buffer, self.headers, index)


def _param_layout(name):
    """(position, PT type) of the parameter `name` for each event id (-1: none), from the
    current libs table; the same for every capture, so worked out once per name. A name no
    event has shares one table: kept per name, evt.arg.NAME with ever new names (a fuzzer's,
    or a notebook's typos) grew the process by 192 KB a name."""
    if name not in _params_by_name():
        name = None
    return _layout_of(name)


@functools.cache
def _layout_of(name):
    position = np.full(65536, -1, dtype=np.int8)  # compact: one table per name asked for
    ptypes = np.full(65536, -1, dtype=np.int16)
    for event_id, k, ptype in _params_by_name().get(name, ()):
        position[event_id] = k
        ptypes[event_id] = ptype
    position.flags.writeable = False
    ptypes.flags.writeable = False
    return position, ptypes


def _types_seen(types):
    """The distinct event types among `types`."""
    return np.flatnonzero(np.bincount(types, minlength=65536)) if len(types) else \
        np.zeros(0, dtype=np.int64)


@functools.cache
def _params_by_name():
    """{name: [(event id, position, PT type)]} of every parameter of the current libs table,
    its first one of that name per event (one pass over the table for all names)."""
    table = eventtable.libs()
    out = {}
    for info in map(table.__getitem__, range(len(table))):
        seen = set()
        for k, p in enumerate(info.params):
            if p.name not in seen:
                seen.add(p.name)
                out.setdefault(p.name, []).append((info.id, k, p.type))
    return out


def _byte_rules(ptypes, codecs):
    """Per event type, for a byte-like parameter (ptypes: its PT type per event type): is
    its value a string that drops its NUL terminator, and is an empty value still a value?
    (An empty data buffer is one, as sysdig's evt.buffer is "" for a read of 0 bytes; an
    empty string or address is none.)"""
    strip = np.zeros(65536, dtype=bool)
    strip[[t for t, c in codecs.items() if c.column_kind == "string"]] = True
    return strip[np.maximum(ptypes, 0)], ptypes == PT.BYTEBUF


def _trimmed(buf, offsets, lengths, present, strip, keep_empty):
    """(lengths, present) of byte-like values: strings (`strip`) drop their NUL terminator;
    an empty value is no value, except where `keep_empty` (data buffers)."""
    strip = strip & (lengths > 0)
    strip[strip] = buf[offsets[strip] + lengths[strip] - 1] == 0
    lengths = lengths - strip
    return lengths, present & ((lengths > 0) | keep_empty)


def _common_dtype(dtypes):
    import polars as pl
    if all(d.is_integer() for d in dtypes):
        return pl.Int64 if any(d.is_signed_integer() for d in dtypes) else pl.UInt64
    return pl.Binary


def _unmap(mapping):
    """Close a memory map unless views of it remain (then it goes with the last of them)."""
    try:
        mapping.close()
        return
    except BufferError:
        pass
    # what we computed may still be held by reference cycles the collector has not freed yet
    # (query's EventData and its CaptureState refer to each other): free them and try again
    # (the young generations first: the cycles are this capture's, made since it opened, and
    # a full collection of a big process costs tens of milliseconds per capture)
    import gc
    for generation in (1, 2):
        gc.collect(generation)
        try:
            mapping.close()
            return
        except BufferError:  # the caller's own frames view it
            pass


# what close() keeps: enough to say which capture it was
_KEPT_ON_CLOSE = frozenset({"path", "compressed", "_buffer", "_layout", "_stream_damage"})


def open(path):  # noqa: A001 - mirrors the builtin on purpose: scap.open(path)
    """Open a capture for reading; `with scap.open(path) as cap:` closes it afterwards."""
    return Capture(path)
