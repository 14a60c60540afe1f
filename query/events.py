"""Per-event values computed once per capture and shared by fields, filters and output.

An EventData wraps an opened Capture and computes, on first use, whole columns: a parameter
by name, enter/exit pairing, latency, the thread and fd state columns, the rendered evt.info.
Every field of the catalog is built from these.
"""
import functools

import numpy as np
import polars as pl

from scaptool.scap import eventtable

from . import pairing
from .render import Renderer, visible_rows


def _cached_per_instance(method):
    """functools.cache for a method, with the cache kept on the instance: a module-wide one
    would keep every EventData, its capture and the capture's memory alive for good."""
    @functools.wraps(method)
    def cached(self, *args):
        memo = self.__dict__.setdefault(f"_cache_{method.__name__}", {})
        if args not in memo:
            memo[args] = method(self, *args)
        return memo[args]
    return cached


class EventData:
    def __init__(self, capture, *, bytebuf_limit=80, buffer_format="normal", memory=None):
        self.capture = capture
        self.headers = capture.headers
        self.bytebuf_limit = bytebuf_limit
        self.buffer_format = buffer_format
        # What a reading in chunks (query.chunks) knows of the events before this chunk, and
        # where fields that remember earlier events (evt.deltatime, thread.exectime...) keep
        # that memory from one chunk to the next: one dict for the whole reading.
        self.memory = {} if memory is None else memory

    def __len__(self):
        return len(self.headers)

    @functools.cached_property
    def enter_rows(self):
        return pairing.enter_rows(self.headers.type, self.headers.tid)

    @functools.cached_property
    def latency(self):
        h = self.headers
        return pairing.latency(h.ts, self.enter_rows, h.type, h.tid)

    @_cached_per_instance
    def param(self, name):
        """The raw value of the parameter called `name`, null where the event has none."""
        return self.capture.param(name)

    @functools.cached_property
    def visible(self):
        mask = np.zeros(len(self), dtype=bool)
        mask[visible_rows(self.capture)] = True
        return mask

    def visible_at(self, rows):
        """Those of the (ascending) rows that sysdig prints by default."""
        if "visible" in self.__dict__:
            rows = np.asarray(rows, dtype=np.int64)
            return rows[self.visible[rows]]
        return visible_rows(self.capture, rows)

    @functools.cached_property
    def threads(self):
        """Thread state columns (query.threads) of every event."""
        from . import threads
        return self.thread_columns(threads.COLUMNS)

    def thread_columns(self, names):
        """A frame of the named thread state columns for every event; each column is
        computed once (those asked together share their lookups)."""
        from . import threads
        cache = self.__dict__.setdefault("_thread_columns", {})
        missing = [n for n in names if n not in cache]
        if missing:
            frame = threads.thread_columns(self.capture, replayed=self.thread_replay,
                                           columns=missing)
            cache.update({n: frame[n] for n in frame.columns})
        return pl.DataFrame([cache[n] for n in names])

    @functools.cached_property
    def thread_replay(self):
        """The thread versions made by the state-changing events (query.threads.replay)."""
        from . import threads
        return threads.replay(self.capture)

    @functools.cached_property
    def thread_versions(self):
        """Every thread version, placeholders included (query.threads.thread_versions)."""
        from . import threads
        return threads.thread_versions(self.capture, replayed=self.thread_replay)

    def threads_at(self, rows, columns=None):
        """The named thread state columns (all of query.threads.COLUMNS by default) at the
        given rows only. What was computed for some rows serves later asks for any of them
        (a filter's candidates, then the lines printed among them); a column is computed
        only when asked for."""
        from . import threads
        columns = list(threads.COLUMNS if columns is None else columns)
        rows = np.asarray(rows, dtype=np.int64)
        known_rows, cache = self.__dict__.get("_threads_at", (None, None))
        at = _positions(known_rows, rows) if known_rows is not None else None
        if at is None:
            known_rows, cache, at = rows, {}, slice(None)
            self._threads_at = (known_rows, cache)
        missing = [c for c in columns if c not in cache]
        if missing:
            replayed = self.thread_replay
            wanted = threads.placeholder_tids(self.capture, known_rows, replayed)
            known = self.__dict__.get("_versions_for")
            if known is None or not wanted <= known[0]:
                # the versions of some threads serve any rows of those threads
                known = (wanted, threads.thread_versions(self.capture, tids=wanted,
                                                         replayed=replayed))
                self._versions_for = known
            frame = threads.thread_columns(self.capture, known_rows, replayed=replayed,
                                           versions=known[1], columns=missing)
            cache.update({c: frame[c] for c in frame.columns})
        return pl.DataFrame([cache[c] if isinstance(at, slice) else cache[c].gather(at)
                             for c in columns])

    def thread_value(self, column, row):
        """One thread state value, at one row: from what was computed for the rows asked
        for before when it is among them, else computed for that row alone."""
        full = self.__dict__.get("_thread_columns", {})
        if column in full:
            return full[column][row]
        return self.threads_at([row], [column])[column][0]

    @functools.cached_property
    def fds(self):
        from . import fds
        return fds.FdColumns(self.capture)

    @functools.cached_property
    def fd_param_texts(self):
        """{parameter position: Series of the `<typechar l4char>name` text sysdig shows for
        that FD-typed parameter, per event}."""
        from . import fds
        return dict(fds.fd_param_texts(self.capture))

    @functools.cached_property
    def fd_lookup(self):
        """(rows, fds) -> the resolved text of each fd at each row, in bulk."""
        from . import fds
        return fds.fd_name_at(self.capture)

    @functools.cached_property
    def state(self):
        from .state import capture_state
        return capture_state(self.capture, self)

    @functools.cached_property
    def renderer(self):
        return Renderer(self.capture, self.state, bytebuf_limit=self.bytebuf_limit,
                        buffer_format=self.buffer_format)

    @functools.cached_property
    def type_names(self):
        """evt.type per event: the table name, or the syscall name of a generic event."""
        return self.type_names_at(slice(None))

    def type_names_at(self, rows):
        """evt.type at the given rows (a slice or row numbers)."""
        table = _type_name_table()
        ids = np.asarray(self.headers.type[rows])
        known = ids < len(table)
        out = pl.Series("evt.type", table, dtype=pl.String).gather(np.where(known, ids, 0))
        if not known.all():   # an id no table knows (damage): no name (sysdig skips it)
            out = out.scatter(np.flatnonzero(~known), None)
        generic = np.flatnonzero(ids <= 1)
        if len(generic):
            from scaptool.scap import names as name_tables
            at = np.arange(len(self))[rows][generic]
            ids = self.capture.param("ID", rows=at).to_list()
            text = [(name_tables.syscall_name(i, "0293") if i is not None else None)
                    or "<unknown>" for i in ids]
            out = out.scatter(generic, text)
        return out

    def rendered_at(self, what, arg, rows):
        """The same text as rendered(), for the given rows only: built as columns
        (query.info_columns), a few rare rows event by event."""
        from .info_columns import rendered_texts
        return rendered_texts(self, what, arg, rows)[0]

    @_cached_per_instance
    def rendered(self, what, arg=None):
        """Per-event Python text for the visible events only (null elsewhere): evt.info /
        evt.args, or one parameter (evt.arg.NAME, evt.arg[N])."""
        rows = np.flatnonzero(self.visible)
        out = pl.Series(what, [None] * len(self), dtype=pl.String)
        return out.scatter(rows, self.rendered_at(what, arg, rows))


@functools.cache
def _type_name_table():
    """Event id -> name: 0.29.3's for the ids it knows, current libs' for the others."""
    table = eventtable.sysdig_0293()
    libs = eventtable.libs()
    return [table[i].name if i < len(table) else libs[i].name for i in range(len(libs))]


def _positions(known, rows):
    """Where each of `rows` is in the ascending array `known`, or None if some is not."""
    if len(known) == 0 or (len(known) > 1 and not np.all(known[1:] > known[:-1])):
        return None
    at = np.searchsorted(known, rows)
    if np.any(at >= len(known)) or not np.array_equal(known[np.minimum(at, len(known) - 1)],
                                                     rows):
        return None
    return at
