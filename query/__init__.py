"""Queries over captures: state, the field catalog, the filter language, output formats.

The notebook API (query.api, which `import scaptool` exposes): frame, lazy_frame, batches,
filter_expr, filter_fields, text, fields. They load on first use, so that commands needing none
of them (scaptool -S -q) do not pay for polars and the filter grammar.
"""
_API = ("frame", "lazy_frame", "batches", "filter_expr", "filter_fields", "text", "fields")


def __getattr__(name):
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'query' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
