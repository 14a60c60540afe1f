"""Selecting events with a filter: the filter compiles to one Polars expression over the
columns of the fields it names, computed once for all events."""
import numpy as np
import polars as pl

from .events import EventData
from .fields import UnknownFieldError, lookup
from .filter import Field, UnknownField, compile_filter


def filter_mask(capture, text, data=None):
    """A bool per event: does it match the filter `text`? (FilterError on bad filters.)"""
    data = data or EventData(capture)
    columns = {}

    def resolve(name, arg):
        reference = name if arg is None else f"{name}[{arg}]"
        try:
            definition, argument = lookup(reference)
        except UnknownFieldError:
            raise UnknownField(reference) from None
        column = f"f{len(columns)}"
        columns[column] = definition.series(data, argument).alias(column)
        return Field(pl.col(column), definition.kind)

    expr = compile_filter(text, resolve)
    frame = pl.DataFrame(list(columns.values())) if columns else \
        pl.DataFrame({"_": np.zeros(len(data), dtype=np.int8)})
    return frame.select(expr).to_series().to_numpy()
