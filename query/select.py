"""Selecting events with a filter: the filter compiles to one Polars expression over the
columns of the fields it names, computed once for all events."""
from .api import _data, filter_expr, filter_fields
from .fields import columns


def filter_mask(capture, text, data=None):
    """A bool per event: does it match the filter `text`? (FilterError on bad filters.)"""
    expr = filter_expr(text)  # checks the filter before any column is computed
    data = data or _data(capture)
    return columns(data, filter_fields(text)).select(expr).to_series().to_numpy()
