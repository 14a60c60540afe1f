"""What the filter compiler needs to know about a field: ``Field(expr, kind)``.

The field catalog (another module) implements ``resolve(name, arg) -> Field`` and raises
``UnknownField`` for names (or arguments) it does not know. The compiler never looks at column
names; it only combines the expressions it is given.

Kinds (the RHS text of a comparison is converted according to the kind of the left-hand side,
as sysdig does; reference/filter-and-chisels.md §1.6):

============  =========================================  ====================================
kind          the expression holds                       right-hand values
============  =========================================  ====================================
'string'      pl.String (CHARBUF, FSPATH, rendered       the text as is (no NUL; valid UTF-8)
              evt.arg.*, evt.type, ...)
'bytes'       pl.Binary (BYTEBUF: evt.buffer)            the raw bytes of the text; hex for
                                                         bcontains / bstartswith
'int'         signed integer column                      decimal only: [+-]digits (§1.6)
'uint'        unsigned integer column                    decimal only, not negative
'port'        integer column                             decimal, or a service name resolved
                                                         with getservbyname (fd.sport=http)
'time'        integer nanoseconds (ABSTIME, RELTIME)     decimal only
'bool'        pl.Boolean                                 exactly ``true`` or ``false``
'ip'          pl.String holding address text             an IPv4/IPv6 address (equality) or a
              ('10.0.0.1', '::1')                        CIDR network (membership: fd.net =
                                                         10.0.0.0/8)
'list'        pl.List — a genuinely multi-valued         ``in``: every element is in the RHS
              field; ``item`` is the element kind        list (subset); ``intersects``: some
                                                         element is; ``exists``; ``len()``
'any'         pl.List — the values a filter-only         every operator is applied to each
              field matches against; ``item`` is the     element; true if ANY element
              element kind. Use for un-indexed           satisfies it (§1.7: "true if any
              proc.aname/proc.apid (ancestors, self      ancestor matches", "client or server
              excluded), fd.ip/fd.port/fd.net/fd.proto   side matches")
'around'      integer nanoseconds: the event time        evt.around[T] = D, D in ms: true when
              (only for evt.around[T])                   T-D ms <= time <= T+D ms (§1.11)
============  =========================================  ====================================

A null value means "the field has no value for this event": every comparison on it is false,
``exists`` is false, and ``not`` of a comparison is therefore true (§1.6). For 'list'/'any'
kinds an empty list counts as no value.

``values`` optionally lists the only values a constant RHS may take (e.g. the known event names
for evt.type: sysdig rejects ``evt.type=foo`` with "unknown event type foo"); None accepts any.
``rhs_ok`` is False for fields that sysdig refuses as the argument of ``val()``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import polars as pl

KINDS = frozenset({"string", "bytes", "int", "uint", "port", "time", "bool", "ip",
                   "list", "any", "around"})
ITEM_KINDS = frozenset({"string", "bytes", "int", "uint", "port", "time", "bool", "ip"})


@dataclass(frozen=True, eq=False)   # eq=False: pl.Expr's == builds an expression
class Field:
    expr: pl.Expr
    kind: str
    item: str = "string"
    values: Optional[frozenset] = None
    rhs_ok: bool = True

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r} (one of {sorted(KINDS)})")
        if self.item not in ITEM_KINDS:
            raise ValueError(f"unknown list item kind {self.item!r}")


class UnknownField(LookupError):
    """Raised by a resolver for a field it does not know. ``name`` is the field name; ``message``
    optionally replaces the default "unknown field 'name'" (e.g. "proc.aname[x]: the argument
    must be a number")."""

    def __init__(self, name: str, message: Optional[str] = None):
        self.name = name
        self.message = message or f"unknown field '{name}'"
        super().__init__(self.message)
