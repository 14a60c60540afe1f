"""Queries over captures: state, the field catalog, the filter language, output formats.

The notebook API is here: query.frame(cap, fields, filter), query.batches(...),
query.filter_expr(text).
"""
from .api import batches, filter_expr, filter_fields, frame  # noqa: F401
