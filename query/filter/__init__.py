"""The sysdig/Falco filter language: parse (pyparsing → AST) and compile (AST → Polars).

    from scaptool.query.filter import parse, compile_filter, Field, UnknownField, FilterError
    expr = compile_filter("proc.name = cat and fd.name startswith /etc", resolve)
    frame.filter(expr)

``resolve(name, arg) -> Field`` is supplied by the caller (the field catalog); see fields.py.
"""
from .errors import FilterError
from .fields import Field, UnknownField, KINDS
from .grammar import parse
from .compile import compile_filter

__all__ = ["parse", "compile_filter", "FilterError", "Field", "UnknownField", "KINDS"]
