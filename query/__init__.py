"""Queries over captures: state, the field catalog, the filter language, output formats.

The notebook API is here: query.frame(cap, fields, filter), query.batches(...),
query.filter_expr(text), query.filter_fields(text). They load on first use, so that commands
needing none of them (scaptool -S -q) do not pay for polars and the filter grammar.
"""
_API = ("frame", "batches", "filter_expr", "filter_fields")


def __getattr__(name):
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'query' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
