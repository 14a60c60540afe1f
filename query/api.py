"""The notebook API: captures as Polars frames of catalog fields, filtered with sysdig's
language.

    import scaptool

    with scaptool.open("trace.scap") as cap:
        scaptool.frame(cap, ["evt.num", "proc.name", "fd.name"], "evt.type=open")
        scaptool.frame(cap, "proc.name").filter(scaptool.filter_expr("proc.name=nginx"))

Eager and lazy twins (the lazy ones compute a column only when a query uses it):

    frame(capture, fields, filter)       -> DataFrame   lazy_frame(capture, fields, filter)
    batches(capture, fields, filter)     -> DataFrames of `size` rows, in file order, the
                                            capture read a chunk at a time (bounded memory)
    Capture.events(params)               -> DataFrame   Capture.lazy_events(params)

`capture` is an opened capture or a path; `fields` a field name or a list of them; `filter` a
filter string, evaluated as sysdig evaluates it. Columns hold values, typed after the catalog
(query.frame_types): times as Datetime (ns, UTC), numbers as numbers, byte buffers as Binary
(text(column) decodes them). filter_expr(text) is a filter as an expression over such frames;
fields() lists the catalog with each field's column dtype.
"""
import contextlib
import os
import warnings

import numpy as np
import polars as pl

from .events import EventData
from .fields import FIELDS, UnknownFieldError, columns, lookup
from .filter import Field, UnknownField, compile_filter, parse
from .filter.ast import FieldRef, child_nodes
from .frame_types import CLOCKS, as_frame_column, clock_column, filter_view, frame_dtype

DEFAULT_FIELDS = ("evt.num", "evt.rawtime", "proc.name", "thread.tid", "evt.dir", "evt.type",
                  "evt.info")


def _data(capture):
    """One EventData per capture, so that state and columns are computed once."""
    data = getattr(capture, "_query_data", None)
    if data is None:
        data = EventData(capture)
        capture._query_data = data
    return data


def _definition(reference):
    """The catalog entry of a field reference, as the filter compiler's resolvers need."""
    try:
        definition, _ = lookup(reference)
    except UnknownFieldError:
        raise UnknownField(reference) from None
    return definition


def _reference(name, arg):
    return name if arg is None else f"{name}[{arg}]"


def _resolve_by_name(name, arg):
    """Resolver over the engine's columns (query.fields.columns): the values sysdig compares."""
    reference = _reference(name, arg)
    definition = _definition(reference)
    return Field(pl.col(reference), definition.kind, getattr(definition, "item", "string"))


def _resolve_on_frame(name, arg):
    """Resolver over the columns of frame(): typed values, turned back into what sysdig
    compares where they differ (frame_types.filter_view)."""
    reference = _reference(name, arg)
    definition = _definition(reference)
    return Field(filter_view(reference, definition), definition.kind,
                 getattr(definition, "item", "string"))


def filter_expr(text):
    """A filter as a Polars expression over columns named after the fields it uses, as
    frame() and lazy_frame() make them: `frame.filter(filter_expr("fd.name contains /etc"))`."""
    return compile_filter(text, _resolve_on_frame)


def filter_fields(text):
    """The field names a filter uses."""
    return _collect_fields(parse(text))


def _collect_fields(node):
    found = []

    def walk(node):
        if isinstance(node, FieldRef):
            found.append(node.name if node.arg is None else f"{node.name}[{node.arg}]")
        for child in child_nodes(node):
            walk(child)
    walk(node)
    return list(dict.fromkeys(found))


# -- frames ------------------------------------------------------------------------------------

def _field_names(fields):
    """A field name or a list of them -> the list, without repeats; unknown names fail here."""
    names = [fields] if isinstance(fields, str) else list(dict.fromkeys(fields))
    for name in names:
        lookup(name)
    return names


@contextlib.contextmanager
def _opened(capture):
    """The capture, opened here (and closed on the way out) when it is a path."""
    if isinstance(capture, (str, os.PathLike)):
        from scaptool.scap import open as open_capture
        with open_capture(capture) as opened:
            yield opened
    else:
        yield capture


def _frame_batches(capture, names, filter, all_events, size, data=None):
    """The frame's rows in DataFrames of `size` rows (None: one), in file order; at least one
    DataFrame, empty when no event is selected. `data`: an EventData to read (a chunk of a
    reading) instead of the capture's own."""
    data = data if data is not None else _data(capture)
    if all_events:
        keep = np.ones(len(data), dtype=bool)
        keep[:getattr(data.capture, "context", 0)] = False   # a chunk's context: not its own
    else:
        keep = data.visible.copy()
    # the clock fields are made from the timestamps: their text is computed only for a filter
    engine = [n for n in names if lookup(n)[0].name not in CLOCKS]
    # (a field both asked for and filtered on is computed once)
    table = columns(data, list(dict.fromkeys(engine + (filter_fields(filter) if filter else []))))
    if filter:
        keep &= table.select(compile_filter(filter, _resolve_by_name)).to_series().to_numpy()
    rows = np.flatnonzero(keep)
    table = table.filter(pl.Series(keep))
    size = size or max(len(rows), 1)
    for lo in range(0, max(len(rows), 1), size):
        part = table.slice(lo, size)
        out = []
        for name in names:
            definition = lookup(name)[0]
            if definition.name in CLOCKS:
                out.append(clock_column(name, data.headers.ts[rows[lo:lo + size]]))
            else:
                out.append(as_frame_column(part[name], definition))
        yield pl.DataFrame(out) if out else pl.DataFrame(height=part.height)


def frame(capture, fields=DEFAULT_FIELDS, filter=None, *, all_events=False):
    """A DataFrame with one column per field (named after it) and one row per event sysdig
    would print (all_events=True: every event, hidden ones too), selected by the filter.
    capture: an opened capture or a path; fields: one field name or a list of them."""
    names = _field_names(fields)
    with _opened(capture) as opened:
        return next(_frame_batches(opened, names, filter, all_events, None))


def batches(capture, fields=("evt.num", "proc.name", "evt.type", "evt.info"), filter=None,
            size=100_000, *, all_events=False, chunk_events=None):
    """The rows of frame(...) in DataFrames of `size` rows (the last one may be shorter), in
    file order, read a chunk of `chunk_events` events at a time (query.chunks) with sysdig's
    state carried from one chunk to the next: memory follows the chunk, not the capture, and
    the first batch comes after the first chunk. `capture`: a path, an opened capture (its
    file is read again), or a binary stream or file descriptor (a pipe, a live capture)."""
    from scaptool.scap import Capture, ScapError, ScapWarning, TruncatedError

    from .chunks import DEFAULT_CHUNK_EVENTS, Reading, event_data_chunks
    names = _field_names(fields)
    if filter:
        parse(filter)  # a bad filter fails before anything is read
    if isinstance(capture, Capture) and capture.closed:
        raise ScapError("capture is closed", path=capture.path)
    reading = Reading()
    pending, held = [], 0
    for data in event_data_chunks(capture, chunk_events or DEFAULT_CHUNK_EVENTS,
                                  reading=reading):
        for part in _frame_batches(data.capture, names, filter, all_events, None, data):
            if part.height:
                pending.append(part)
                held += part.height
        while held >= size:
            joined = pl.concat(pending) if len(pending) > 1 else pending[0]
            yield joined.slice(0, size)
            rest = joined.slice(size)
            pending, held = ([rest] if rest.height else []), rest.height
    if held:
        yield pl.concat(pending) if len(pending) > 1 else pending[0]
    damage = reading.damage
    if isinstance(damage, TruncatedError) and reading.reader.events_read:
        # as scap.open does: what came before the damage is the capture
        warnings.warn(ScapWarning(f"{damage}; keeping everything before it"), stacklevel=2)
    elif damage is not None:
        raise damage


def lazy_frame(capture, fields=None, filter=None, *, all_events=False):
    """frame() as a LazyFrame: a query computes only the fields it uses (projection
    pushdown), in batches. fields=None: every catalog field that needs no argument.
    A capture given as a path is opened here and stays open while the LazyFrame lives."""
    from scaptool.scap import Capture
    from scaptool.scap.lazy_source import lazy_source
    if isinstance(capture, (str, os.PathLike)):
        capture = Capture(capture)
    names = [n for n, d in FIELDS.items() if d.arg != "required"] if fields is None \
        else _field_names(fields)
    if filter:
        parse(filter)  # a bad filter fails now, not at the first collect

    def schema():
        return {name: _declared_dtype(capture, name) for name in names}

    def produce(needed, size):
        return _frame_batches(capture, needed, filter, all_events, size)

    return lazy_source(schema, produce, f"scaptool fields of {capture.path}")


def _declared_dtype(capture, name):
    definition, arg = lookup(name)
    dtype = frame_dtype(definition)
    if dtype is None:  # evt.rawarg.NAME: the parameter's own type
        from scaptool.scap.event_frames import _param_dtype
        dtype = _param_dtype(capture, arg)
    return dtype


def fields():
    """The field catalog as a DataFrame: `name`, `type` (sysdig's type name), `dtype` (of the
    field's column in frames), `argument` (none, optional or required: evt.arg.NAME,
    proc.aname[N]) and `description`."""
    rows = [(d.name, d.type, str(frame_dtype(d) or "the parameter's"), d.arg, d.description)
            for d in FIELDS.values()]
    return pl.DataFrame(rows, schema=["name", "type", "dtype", "argument", "description"],
                        orient="row")


# -- text --------------------------------------------------------------------------------------

def text(column):
    """A byte-buffer column (a name or an expression) decoded as UTF-8, each invalid byte
    replaced by U+FFFD: `frame.with_columns(scaptool.text("evt.buffer"))`."""
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.map_batches(_utf8, return_dtype=pl.String, is_elementwise=True)


_FEW_ROWS = 64


def _utf8(series):
    if series.dtype in (pl.String, pl.Null):
        return series.cast(pl.String)
    if series.dtype != pl.Binary:
        raise TypeError(f"text() decodes Binary columns; {series.name!r} is {series.dtype}")
    try:  # the usual case, valid text everywhere: one strict cast
        return series.cast(pl.String)
    except pl.exceptions.ComputeError:
        pass
    # some value is not UTF-8: halves are cast again, and only small runs that hold an
    # invalid value are decoded row by row in Python
    if len(series) <= _FEW_ROWS:
        return pl.Series(series.name, [None if b is None else b.decode("utf-8", "replace")
                                       for b in series.to_list()], dtype=pl.String)
    half = len(series) // 2
    return pl.concat([_utf8(series.slice(0, half)), _utf8(series.slice(half))])
