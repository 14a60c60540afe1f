"""AST of a sysdig/Falco filter condition: one small frozen dataclass per node kind.

Every node carries ``pos``, the 0-based character index in the filter text where the node starts
(used for error messages). ``pos`` takes no part in equality, so tests can compare trees built by
hand with trees produced by the parser.

Node kinds
----------
Boolean structure:   Or(children), And(children), Not(child)
Checks (leaves):     Compare(lhs, op, rhs), Exists(lhs), Identifier(name)
Operands:            FieldRef(name, arg), Transform(func, operand), Val(operand)
Right-hand values:   Value(text, quoted), ListValue(items)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union


def _pos():
    return field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class FieldRef:
    """A field name such as ``proc.name``, with its optional bracketed argument
    (``proc.aname[2]`` → name='proc.aname', arg='2'). The argument is kept as text (quoted
    arguments are unescaped); what it means is the field catalog's business."""
    name: str
    arg: Optional[str] = None
    pos: int = _pos()


@dataclass(frozen=True)
class Transform:
    """A single-field transformer: ``tolower(x)``, ``toupper(x)``, ``b64(x)``, ``basename(x)``,
    ``len(x)``. ``operand`` is a FieldRef or another Transform (they nest)."""
    func: str
    operand: "Operand"
    pos: int = _pos()


@dataclass(frozen=True)
class Val:
    """``val(field)`` on the right-hand side: compare against another field of the same event."""
    operand: FieldRef
    pos: int = _pos()


Operand = Union[FieldRef, Transform]


@dataclass(frozen=True)
class Value:
    """A literal right-hand value. ``text`` is the decoded text: escapes of quoted strings are
    resolved; ``\\xHH`` escapes that do not form UTF-8 are kept as surrogate escapes, so
    ``text.encode('utf-8', 'surrogateescape')`` gives the exact bytes. ``quoted`` tells whether it
    was written in quotes (a bare word otherwise; for numeric operators a number token)."""
    text: str
    quoted: bool = False
    pos: int = _pos()

    def raw(self) -> bytes:
        return self.text.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class ListValue:
    """``(a, "b c", 'd')`` — the right-hand side of in / intersects / pmatch. May be empty."""
    items: tuple[Value, ...]
    pos: int = _pos()


@dataclass(frozen=True)
class Compare:
    """``lhs op rhs``. ``op`` is normalised (``==`` becomes ``=``). ``rhs`` is a Value, a ListValue,
    a Val, a Transform (a transformer over another field), or an Identifier (a Falco list name,
    which libsinsp itself rejects). ``op_pos`` is where the operator starts."""
    lhs: Operand
    op: str
    rhs: Union[Value, ListValue, Val, Transform, "Identifier"]
    pos: int = _pos()
    op_pos: int = _pos()


@dataclass(frozen=True)
class Exists:
    """``lhs exists``."""
    lhs: Operand
    pos: int = _pos()


@dataclass(frozen=True)
class Identifier:
    """A bare identifier where a check (a Falco macro) or a list (a Falco list) is expected.
    The grammar accepts it like libsinsp's parser does; the compiler rejects it, as libsinsp's
    compiler does, since neither sysdig nor scaptool define macros."""
    name: str
    pos: int = _pos()


@dataclass(frozen=True)
class Not:
    child: "Node"
    pos: int = _pos()


@dataclass(frozen=True)
class And:
    children: tuple["Node", ...]
    pos: int = _pos()


@dataclass(frozen=True)
class Or:
    children: tuple["Node", ...]
    pos: int = _pos()


Node = Union[Or, And, Not, Compare, Exists, Identifier]
