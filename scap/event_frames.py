"""Capture.events() and Capture.lazy_events(): one row per event in file order.

Columns: `num` (evt.num as sysdig 0.29.3 numbers events; null for the types it does not know),
`ts` (ns since the epoch), `tid`, `cpu`, `type` (the event id), `dump_flags`, `nparams`,
`offset` (of the event's block in the uncompressed stream), `arg.NAME` for each parameter asked
for, `name` (the event's name) and `dir` (`>` enter, `<` exit).
"""
import numpy as np

from . import eventtable

_HEADER_COLUMNS = ("num", "ts", "tid", "cpu", "type", "dump_flags", "nparams", "offset")


def _dtypes():
    import polars as pl
    return {"num": pl.Int64, "ts": pl.UInt64, "tid": pl.Int64, "cpu": pl.UInt16,
            "type": pl.UInt16, "dump_flags": pl.UInt32, "nparams": pl.UInt32,
            "offset": pl.Int64, "name": pl.String, "dir": pl.String}


def _names(params):
    return [*_HEADER_COLUMNS, *(f"arg.{p}" for p in params), "name", "dir"]


def _column(capture, name):
    """The column `name` for every event."""
    import polars as pl
    h = capture.headers
    if name.startswith("arg."):
        return capture.param(name[4:]).alias(name)
    if name == "num":
        num = capture.event_numbers
        return pl.Series(name, num, dtype=pl.Int64).set(pl.Series(num == 0), None)
    if name == "name":
        table = eventtable.libs()
        names = pl.Series([table[i].name for i in range(len(table))], dtype=pl.String)
        known = h.type < len(table)  # ids newer than the table have no name
        return names.gather(np.where(known, h.type, 0)).alias(name).set(pl.Series(~known), None)
    if name == "dir":
        return pl.Series(name, [">", "<"], dtype=pl.String).gather(h.type % 2)
    values = {"ts": h.ts, "tid": h.tid, "cpu": h.cpu, "type": h.type,
              "dump_flags": h.dump_flags, "nparams": h.nparams, "offset": h.block_offset}
    return pl.Series(name, values[name], dtype=_dtypes()[name])


def events(capture, params=()):
    import polars as pl
    return pl.DataFrame([_column(capture, name) for name in _names(params)])


def _param_dtype(capture, name):
    """The dtype of capture.param(name), from one event of each type that has it (the dtype
    depends on which parameter types occur, not on the values)."""
    types = capture.event_types
    rows = np.flatnonzero(capture.param_index(name) >= 0)
    _, first = np.unique(types[rows], return_index=True)
    return capture.param(name, rows=rows[first]).dtype


def lazy_events(capture, params=()):
    from .lazy_source import lazy_source
    names = _names(params)

    def schema():
        dtypes = _dtypes()
        return {n: dtypes[n] if n in dtypes else _param_dtype(capture, n[4:]) for n in names}

    def produce(needed, size):
        import polars as pl
        whole = pl.DataFrame([_column(capture, name) for name in needed])
        for lo in range(0, max(whole.height, 1), size):
            yield whole.slice(lo, size)

    return lazy_source(schema, produce, f"scaptool events of {capture.path}")
