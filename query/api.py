"""The notebook API: captures as Polars frames of catalog fields, filtered with sysdig's
language.

    >>> import scap, query
    >>> cap = scap.open("trace.scap")
    >>> query.frame(cap, ["evt.num", "proc.name", "fd.name"], "evt.type=open")
    >>> query.frame(cap, ["proc.name"]).filter(query.filter_expr("proc.name=nginx"))
"""
import numpy as np
import polars as pl

from .events import EventData
from .fields import UnknownFieldError, columns, lookup
from .filter import Field, UnknownField, compile_filter, parse
from .filter.ast import FieldRef, child_nodes


def _data(capture):
    """One EventData per capture, so that state and columns are computed once."""
    data = getattr(capture, "_query_data", None)
    if data is None:
        data = EventData(capture)
        capture._query_data = data
    return data


def _resolve_by_name(name, arg):
    reference = name if arg is None else f"{name}[{arg}]"
    try:
        definition, _ = lookup(reference)
    except UnknownFieldError:
        raise UnknownField(reference) from None
    return Field(pl.col(reference), definition.kind, getattr(definition, "item", "string"))


def filter_expr(text):
    """A filter as a Polars expression over columns named after the fields it uses (as
    query.frame makes them): `frame.filter(filter_expr("fd.name contains /etc"))`."""
    return compile_filter(text, _resolve_by_name)


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


def frame(capture, fields=("evt.num", "evt.rawtime", "proc.name", "thread.tid", "evt.dir",
                           "evt.type", "evt.info"), filter=None, *, all_events=False):
    """A DataFrame with one column per field (named after it) and one row per event sysdig
    would print (all_events=True: every event, hidden ones too), selected by the filter."""
    data = _data(capture)
    names = list(dict.fromkeys(fields))
    table = columns(data, names + (filter_fields(filter) if filter else []))
    keep = np.ones(len(data), dtype=bool) if all_events else data.visible.copy()
    if filter:
        keep &= table.select(filter_expr(filter)).to_series().to_numpy()
    return table.select(names).filter(pl.Series(keep))


def batches(capture, fields=("evt.num", "proc.name", "evt.type", "evt.info"), filter=None,
            size=100_000):
    """The rows of frame(...) in DataFrames of at most `size` rows, in file order."""
    table = frame(capture, fields, filter)
    for lo in range(0, table.height, size):
        yield table.slice(lo, size)
