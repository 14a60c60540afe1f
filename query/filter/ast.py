"""AST of a sysdig/Falco filter condition: one small immutable class per node kind.

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

from typing import Union


class _Node:
    """Fields given by position or name (those in ``_defaults`` may be left out), set once,
    compared and hashed by value except the positions, shown as ``Kind(field=value, ...)``.
    Frozen dataclasses would do the same, but generating eleven of them took 3.7 ms of the
    start of every filter run."""

    __slots__ = ()
    _fields: tuple = ()       # compared, in constructor order
    _positions = ("pos",)     # where in the text; not compared
    _defaults: dict = {}

    def __init__(self, *args, **kwargs):
        names = self._fields + self._positions
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} arguments")
        values = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names or name in values:
                raise TypeError(f"{type(self).__name__}: unexpected or repeated {name!r}")
            values[name] = value
        for name in names:
            if name in values:
                value = values[name]
            elif name in self._positions:
                value = -1
            elif name in self._defaults:
                value = self._defaults[name]
            else:
                raise TypeError(f"{type(self).__name__}: missing {name!r}")
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _key(self):
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash((type(self), self._key()))

    def __repr__(self):
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"


class FieldRef(_Node):
    """A field name such as ``proc.name``, with its optional bracketed argument
    (``proc.aname[2]`` → name='proc.aname', arg='2'). The argument is kept as text (quoted
    arguments are unescaped); what it means is the field catalog's business."""
    __slots__ = ("name", "arg", "pos")
    _fields = ("name", "arg")
    _defaults = {"arg": None}


class Transform(_Node):
    """A single-field transformer: ``tolower(x)``, ``toupper(x)``, ``b64(x)``, ``basename(x)``,
    ``len(x)``. ``operand`` is a FieldRef or another Transform (they nest)."""
    __slots__ = ("func", "operand", "pos")
    _fields = ("func", "operand")


class Val(_Node):
    """``val(field)`` on the right-hand side: compare against another field of the same event."""
    __slots__ = ("operand", "pos")
    _fields = ("operand",)


Operand = Union[FieldRef, Transform]


class Value(_Node):
    """A literal right-hand value. ``text`` is the decoded text: escapes of quoted strings are
    resolved; ``\\xHH`` escapes that do not form UTF-8 are kept as surrogate escapes, so
    ``text.encode('utf-8', 'surrogateescape')`` gives the exact bytes. ``quoted`` tells whether it
    was written in quotes (a bare word otherwise; for numeric operators a number token)."""
    __slots__ = ("text", "quoted", "pos")
    _fields = ("text", "quoted")
    _defaults = {"quoted": False}

    def raw(self) -> bytes:
        return self.text.encode("utf-8", "surrogateescape")


class ListValue(_Node):
    """``(a, "b c", "d")`` — the right-hand side of in / intersects / pmatch. May be empty."""
    __slots__ = ("items", "pos")
    _fields = ("items",)


class Compare(_Node):
    """``lhs op rhs``. ``op`` is normalised (``==`` becomes ``=``). ``rhs`` is a Value, a ListValue,
    a Val, a Transform (a transformer over another field), or an Identifier (a Falco list name,
    which libsinsp itself rejects). ``op_pos`` is where the operator starts."""
    __slots__ = ("lhs", "op", "rhs", "pos", "op_pos")
    _fields = ("lhs", "op", "rhs")
    _positions = ("pos", "op_pos")


class Exists(_Node):
    """``lhs exists``."""
    __slots__ = ("lhs", "pos")
    _fields = ("lhs",)


class Identifier(_Node):
    """A bare identifier where a check (a Falco macro) or a list (a Falco list) is expected.
    The grammar accepts it like libsinsp's parser does; the compiler rejects it, as libsinsp's
    compiler does, since neither sysdig nor scaptool define macros."""
    __slots__ = ("name", "pos")
    _fields = ("name",)


class Not(_Node):
    """``not child``."""
    __slots__ = ("child", "pos")
    _fields = ("child",)


class And(_Node):
    """``a and b and ...``: two or more children, in order."""
    __slots__ = ("children", "pos")
    _fields = ("children",)


class Or(_Node):
    """``a or b or ...``: two or more children, in order."""
    __slots__ = ("children", "pos")
    _fields = ("children",)


Node = Union[Or, And, Not, Compare, Exists, Identifier]


def child_nodes(node):
    """The nodes directly under `node`, in field order."""
    for name in node._fields:
        value = getattr(node, name)
        for item in (value if isinstance(value, tuple) else (value,)):
            if isinstance(item, _Node):
                yield item
