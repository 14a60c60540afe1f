"""Compile a filter AST to one Polars boolean expression.

One translation function per node kind (``_NODES``), one comparison builder per field kind
(``_KINDS``), operators grouped in small families (dicts of op → builder). Whatever is not in
the tables raises ``FilterError("... is not supported", position)``; nothing is silently
approximated.

Null semantics (reference/filter-and-chisels.md §1.6, §1.11): every leaf (a comparison or an
``exists``) is made a plain boolean with ``fill_null(False)`` *before* ``~``/``&``/``|`` combine
it. So on an event without an fd, ``fd.name != x`` is false and ``not fd.name = x`` is true.

Semantics of the operators (§1.4): ``=``/``!=`` exact (byte) comparison; ``<``..``>=`` numeric,
or byte order on strings; ``contains``/``startswith``/``endswith`` literal; ``icontains`` with ASCII
case folding on both sides; ``glob`` = fnmatch(3) with flags 0 (``*`` and ``?`` match ``/``),
anchored; ``iglob`` the same, case-insensitive; ``regex`` must match the WHOLE value; ``pmatch``
path-prefix on whole components, empty components ignored, components may be globs; ``in`` /
``intersects`` membership (on 'list' fields: subset / overlap); ``bcontains``/``bstartswith`` take
hex digits.
"""
from __future__ import annotations

import ipaddress
import operator
import re
import socket
from typing import Callable, Union

import polars as pl

from . import ast
from .errors import FilterError
from .fields import Field, UnknownField
from .grammar import parse

Resolver = Callable[[str, "str | None"], Field]

_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64 = (0, (1 << 64) - 1)


def compile_filter(node_or_text: Union[str, ast.Node], resolve: Resolver) -> pl.Expr:
    """Filter text or AST → a Boolean pl.Expr with no nulls (true = the event matches)."""
    node = parse(node_or_text) if isinstance(node_or_text, str) else node_or_text
    return _Compiler(resolve).node(node)


# --- helpers shared by the families ----------------------------------------------------------

_UPPER = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
_LOWER = [c.lower() for c in _UPPER]
_ASCII_LOWER = str.maketrans("".join(_UPPER), "".join(_LOWER))


def _ascii_lower(x: pl.Expr) -> pl.Expr:
    """C tolower() per byte: only A-Z change (sysdig's tolower / strcasestr)."""
    return x.str.replace_many(_UPPER, _LOWER)


def _ascii_upper(x: pl.Expr) -> pl.Expr:
    return x.str.replace_many(_LOWER, _UPPER)


_RX_META = set("\\.+*?()|[]{}^$#&-~")


def _rx_escape(text: str) -> str:
    return "".join("\\" + c if c in _RX_META else c for c in text)


def _check_regex(rx: str, pos: int, what: str) -> str:
    """Compile the regex once with Polars' (Rust) engine so a bad pattern fails here."""
    try:
        pl.Series([""], dtype=pl.String).str.contains(rx)
    except Exception as exc:  # polars raises ComputeError with a multi-line message
        found = re.search(r"^error: (.*)$", str(exc), re.M)
        detail = f": {found.group(1)}" if found else ""
        raise FilterError(f"invalid {what}{detail}", pos) from None
    return rx


def glob_to_regex(pattern: str, component: bool = False) -> str:
    """fnmatch(3) with flags 0 → an unanchored Rust-regex fragment. ``*`` and ``?`` match any
    character including '/', except when ``component`` (a pmatch path component), where they
    stop at '/'. Backslash quotes the next character; ``[...]``, ``[!...]``, ``[^...]`` with
    ranges and ``[:class:]``; a '[' without its ']' is a literal."""
    anychar = "[^/]" if component else "."
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(anychar + "*")
            while i + 1 < n and pattern[i + 1] == "*":
                i += 1
        elif c == "?":
            out.append(anychar)
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(_rx_escape(pattern[i]))
        elif c == "[":
            cls, end = _glob_class(pattern, i)
            if cls is None:
                out.append(_rx_escape(c))
            else:
                out.append(f"[{cls}&&[^/]]" if component else cls)
                i = end - 1
        else:
            out.append(_rx_escape(c))
        i += 1
    return "".join(out)


def _glob_class(p: str, start: int):
    """Translate the bracket expression at p[start] == '['. Returns (regex class, end) or
    (None, start) when it is not closed."""
    i, n = start + 1, len(p)
    negate = i < n and p[i] in "!^"
    if negate:
        i += 1
    items, first = [], True
    while i < n:
        c = p[i]
        if c == "]" and not first:
            body = "".join(items)
            return ("[^" if negate else "[") + body + "]", i + 1
        first = False
        if c == "[" and p.startswith(":", i + 1):
            close = p.find(":]", i + 2)
            if close != -1 and re.fullmatch(r"[a-z]+", p[i + 2:close]):
                items.append(p[i:close + 2])
                i = close + 2
                continue
        if c == "\\" and i + 1 < n:
            i += 1
            c = p[i]
        lit = "\\" + c if c in _RX_META else c
        if i + 2 < n and p[i + 1] == "-" and p[i + 2] != "]":
            hi = p[i + 2]
            if hi == "\\" and i + 3 < n:
                hi = p[i + 3]
                i += 1
            items.append(lit + "-" + ("\\" + hi if hi in _RX_META else hi))
            i += 3
            continue
        items.append(lit)
        i += 1
    return None, start


def _pmatch_regex(paths: list[ast.Value]) -> "str | None":
    """One anchored regex for a pmatch list; None when some entry is the root (matches all)."""
    alternatives = []
    for v in paths:
        parts = []
        for comp in (c for c in v.text.split("/") if c):
            if any(ch in comp for ch in "?*["):
                parts.append(glob_to_regex(comp, component=True))
            else:
                parts.append(_rx_escape(comp))
        if not parts:
            return None
        alternatives.append("/+".join(parts))
    if not alternatives:
        return r"\A\z[^\s\S]"  # empty list: never matches
    return r"(?s)\A/*(?:" + "|".join(alternatives) + r")(?:/.*)?\z"


# --- value conversion per kind (§1.6) ---------------------------------------------------------

def _conv_string(v: ast.Value, field: Field, name: str) -> str:
    if "\x00" in v.text:
        raise FilterError("a value may not contain NUL (only byte-buffer fields may)", v.pos)
    try:
        v.text.encode("utf-8")
    except UnicodeEncodeError:
        raise FilterError(f"value {v.text!r} is not valid UTF-8, which a text field "
                          "can never hold", v.pos) from None
    return v.text


def _conv_bytes(v: ast.Value, field: Field, name: str) -> bytes:
    return v.raw()


def _conv_integer(bounds, what):
    def conv(v: ast.Value, field: Field, name: str) -> int:
        if not re.fullmatch(r"[+-]?[0-9]+", v.text):
            raise FilterError(f"'{v.text}' is not a valid number (decimal digits only)", v.pos)
        n = int(v.text)
        if not bounds[0] <= n <= bounds[1]:
            raise FilterError(f"'{v.text}' is out of range for {what} field {name}", v.pos)
        return n
    return conv


def _conv_port(v: ast.Value, field: Field, name: str) -> int:
    if re.fullmatch(r"[+-]?[0-9]+", v.text):
        return _conv_integer(_UINT64, "an unsigned")(v, field, name)
    try:
        return socket.getservbyname(v.text)
    except (OSError, ValueError):   # (ValueError: a NUL in the name)
        raise FilterError(f"'{v.text}' is not a port number or a known service name",
                          v.pos) from None


def _conv_bool(v: ast.Value, field: Field, name: str) -> bool:
    if v.text == "true":
        return True
    if v.text == "false":
        return False
    raise FilterError(f"unrecognized boolean value '{v.text}' (true or false)", v.pos)


def _unmap(a):
    """An IPv4-mapped IPv6 address compares as its IPv4 address."""
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def _conv_ip(v: ast.Value, field: Field, name: str):
    try:
        if "/" in v.text:
            return ipaddress.ip_network(v.text, strict=False)
        return _unmap(ipaddress.ip_address(v.text))
    except ValueError:
        raise FilterError(f"'{v.text}' is not a valid IP address or network", v.pos) from None


_CONVERT = {
    "string": _conv_string,
    "bytes": _conv_bytes,
    "int": _conv_integer(_INT64, "an integer"),
    "uint": _conv_integer(_UINT64, "an unsigned"),
    "time": _conv_integer(_INT64, "a time"),
    "port": _conv_port,
    "bool": _conv_bool,
    "ip": _conv_ip,
}


def _hex(v: ast.Value) -> bytes:
    text = v.text
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
        raise FilterError("bcontains and bstartswith take an even number of hex digits, "
                          f"not '{text}'", v.pos)
    return bytes.fromhex(text)


# --- operator families -----------------------------------------------------------------------
# A builder takes (x, rhs) where x is the field's expression and rhs a converted constant
# (or, where noted, a pl.Expr from val()) and returns a Boolean expression (nulls allowed).

EQUALITY = {"=": operator.eq, "!=": operator.ne}
ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
TEXT = {
    "contains": lambda x, v: x.str.contains(v, literal=True),
    "startswith": lambda x, v: x.str.starts_with(v),
    "endswith": lambda x, v: x.str.ends_with(v),
    "icontains": lambda x, v: _ascii_lower(x).str.contains(
        v.translate(_ASCII_LOWER) if isinstance(v, str) else _ascii_lower(v), literal=True),
}
BINARY = {
    "contains": lambda x, v: x.bin.contains(v),
    "startswith": lambda x, v: x.bin.starts_with(v),
    "endswith": lambda x, v: x.bin.ends_with(v),
}
HEX = {  # rhs: already hex-decoded bytes; x: a Binary expression
    "bcontains": lambda x, v: x.bin.contains(v),
    "bstartswith": lambda x, v: x.bin.starts_with(v),
}
PATTERN = {  # rhs: the pattern text → the whole-value regex
    "glob": lambda p: r"(?s)\A(?:" + glob_to_regex(p) + r")\z",
    "iglob": lambda p: r"(?si)\A(?:" + glob_to_regex(p) + r")\z",
    "regex": lambda p: r"\A(?:" + p + r")\z",
}
MEMBERSHIP = ("in", "intersects")

# which operators each scalar kind accepts
_ALLOWED = {
    "string": {*EQUALITY, *ORDER, *TEXT, *PATTERN, "bcontains", "pmatch", *MEMBERSHIP},
    "bytes": {*EQUALITY, *BINARY, *HEX, *MEMBERSHIP},
    "int": {*EQUALITY, *ORDER, *MEMBERSHIP},
    "uint": {*EQUALITY, *ORDER, *MEMBERSHIP},
    "port": {*EQUALITY, *ORDER, *MEMBERSHIP},
    "time": {*EQUALITY, *ORDER, *MEMBERSHIP},
    "bool": {*EQUALITY, *MEMBERSHIP},
    "ip": {*EQUALITY, *MEMBERSHIP},
}
# operators that accept val()/transformer fields on the right-hand side
_FIELD_RHS_OPS = {*EQUALITY, *ORDER, *TEXT}


def _ip_predicate(x: pl.Expr, targets: list, negate: bool = False) -> pl.Expr:
    """Address text in x → does it equal / lie in any of ``targets``. Parsed once per distinct
    value with ipaddress; text that is not an address gives null (→ false)."""

    def hit(a):
        for t in targets:
            if isinstance(t, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                if a.version == t.version and a in t:
                    return True
            elif a == t:
                return True
        return False

    def batch(s: pl.Series) -> pl.Series:
        mapping = {}
        for text in s.unique().drop_nulls().to_list():
            try:
                a = _unmap(ipaddress.ip_address(text))
            except ValueError:
                continue
            mapping[text] = hit(a) != negate
        if not mapping:
            return pl.Series(s.name, [None] * len(s), dtype=pl.Boolean)
        return s.replace_strict(mapping, default=None, return_dtype=pl.Boolean)

    return x.map_batches(batch, return_dtype=pl.Boolean, is_elementwise=True)


# --- the compiler ----------------------------------------------------------------------------

class _Compiler:
    def __init__(self, resolve: Resolver):
        self.resolve = resolve

    # nodes
    def node(self, node) -> pl.Expr:
        try:
            handler = _NODES[type(node)]
        except KeyError:
            raise FilterError(f"AST node {type(node).__name__} is not supported",
                              getattr(node, "pos", None)) from None
        return handler(self, node)

    # n-ary, not a chain of `|`/`&`: a chain thousands deep (a Falco condition with its
    # macros expanded) took Polars minutes to plan; the operands are plain booleans already
    def _or(self, node: ast.Or) -> pl.Expr:
        children = [self.node(c) for c in node.children]
        return children[0] if len(children) == 1 else pl.any_horizontal(children)

    def _and(self, node: ast.And) -> pl.Expr:
        children = [self.node(c) for c in node.children]
        return children[0] if len(children) == 1 else pl.all_horizontal(children)

    def _not(self, node: ast.Not) -> pl.Expr:
        return ~self.node(node.child)

    def _identifier(self, node: ast.Identifier) -> pl.Expr:
        raise FilterError(f"unexpected identifier '{node.name}' "
                          "(macros and lists are not supported)", node.pos)

    def _exists(self, node: ast.Exists) -> pl.Expr:
        field = self.operand(node.lhs)
        expr = field.expr.is_not_null()
        if field.kind in ("list", "any"):
            expr = expr & (field.expr.list.len() > 0)
        return expr.fill_null(False)

    def _compare(self, node: ast.Compare) -> pl.Expr:
        field = self.operand(node.lhs)
        name = _display(node.lhs)
        if isinstance(node.rhs, ast.Identifier):
            raise FilterError(f"unexpected identifier '{node.rhs.name}' "
                              "(lists are not supported)", node.rhs.pos)
        if isinstance(node.rhs, (ast.Val, ast.Transform)):
            expr = self.field_rhs(node, field, name)
        else:
            expr = _KINDS[field.kind](self, node, field, name)
        return expr.fill_null(False)

    # operands
    def operand(self, op) -> Field:
        if isinstance(op, ast.FieldRef):
            try:
                field = self.resolve(op.name, op.arg)
            except UnknownField as exc:
                raise FilterError(exc.message, op.pos) from None
            if not isinstance(field, Field):
                raise TypeError(f"resolver returned {type(field).__name__} for {op.name}, "
                                "expected Field")
            return field
        if isinstance(op, ast.Transform):
            inner = self.operand(op.operand)
            return _transform(op, inner, _display(op.operand))
        raise FilterError(f"{type(op).__name__} is not supported as an operand",
                          getattr(op, "pos", None))

    # right-hand side: another field
    def field_rhs(self, node: ast.Compare, lhs: Field, name: str) -> pl.Expr:
        rhs_node = node.rhs.operand if isinstance(node.rhs, ast.Val) else node.rhs
        if node.op not in _FIELD_RHS_OPS:
            raise FilterError(f"a field on the right-hand side of '{node.op}' is not supported",
                              node.rhs.pos)
        if not lhs.rhs_ok or lhs.kind in ("list", "any", "around"):
            raise FilterError(f"{name} cannot be compared with another field", node.pos)
        rhs = self.operand(rhs_node)
        if not rhs.rhs_ok or rhs.kind in ("list", "any", "around"):
            raise FilterError(f"{_display(rhs_node)} cannot be used on the right-hand side",
                              node.rhs.pos)
        if rhs.kind != lhs.kind:
            raise FilterError(f"{_display(rhs_node)} ({rhs.kind}) has a type incompatible "
                              f"with {name} ({lhs.kind})", node.rhs.pos)
        if node.op not in _ALLOWED[lhs.kind]:
            raise _op_error(node, lhs, name)
        x, y = lhs.expr, rhs.expr
        if node.op in EQUALITY or node.op in ORDER:
            if node.op in ORDER and lhs.kind in ("bytes", "bool", "ip"):
                raise _op_error(node, lhs, name)
            return {**EQUALITY, **ORDER}[node.op](x, y)
        family = BINARY if lhs.kind == "bytes" else TEXT
        return family[node.op](x, y)


def _op_error(node: ast.Compare, field: Field, name: str) -> FilterError:
    return FilterError(f"operator '{node.op}' is not supported on {field.kind} field {name}",
                       node.op_pos if node.op_pos >= 0 else node.pos)


def _display(op) -> str:
    if isinstance(op, ast.FieldRef):
        return op.name + (f"[{op.arg}]" if op.arg is not None else "")
    if isinstance(op, ast.Transform):
        return f"{op.func}({_display(op.operand)})"
    return "?"


def _values(node: ast.Compare) -> list[ast.Value]:
    """The constant values of the RHS: one Value, or the items of a ListValue."""
    return list(node.rhs.items) if isinstance(node.rhs, ast.ListValue) else [node.rhs]


def _need_list(node: ast.Compare):
    if node.op in MEMBERSHIP or node.op == "pmatch":
        if not isinstance(node.rhs, ast.ListValue):
            raise FilterError(f"'{node.op}' needs a list", node.rhs.pos)


# --- comparisons per field kind --------------------------------------------------------------

def _scalar(comp: _Compiler, node: ast.Compare, field: Field, name: str, x=None,
            kind=None) -> pl.Expr:
    """A check on a single-valued expression ``x`` of ``kind`` (defaults: the field's)."""
    x = field.expr if x is None else x
    kind = kind or field.kind
    op = node.op
    if op not in _ALLOWED[kind]:
        raise _op_error(node, Field(field.expr, kind), name)
    _need_list(node)
    conv = _CONVERT[kind]

    if op == "pmatch":
        rx = _pmatch_regex(_values(node))
        if rx is None:
            return x.is_not_null()
        return x.str.contains(_check_regex(rx, node.rhs.pos, "pmatch path"))
    if op in PATTERN:
        v = node.rhs
        _conv_string(v, Field(field.expr, "string"), name)
        what = "regular expression" if op == "regex" else "glob pattern"
        return x.str.contains(_check_regex(PATTERN[op](v.text), v.pos, what))
    if op in HEX:
        data = _hex(node.rhs)
        return HEX[op](x if kind == "bytes" else x.cast(pl.Binary), data)

    if field.values is not None and (op in EQUALITY or op in MEMBERSHIP):
        for v in _values(node):
            if v.text not in field.values:
                raise FilterError(f"'{v.text}' is not a valid value for {name}", v.pos)
    if kind == "ip":
        targets = [conv(v, field, name) for v in _values(node)]
        return _ip_predicate(x, targets, negate=(op == "!="))
    if op in MEMBERSHIP:
        values = [conv(v, field, name) for v in _values(node)]
        if not values:
            return pl.lit(False)
        if kind in ("string", "bytes"):
            dtype = pl.String if kind == "string" else pl.Binary
            return x.is_in(pl.Series(values, dtype=dtype).implode())
        tests = [x == pl.lit(v) for v in values]
        return tests[0] if len(tests) == 1 else pl.any_horizontal(tests)
    if op in ORDER and kind == "string":
        v = node.rhs  # a number token: compared as text (strcmp order), no catalog check
        return ORDER[op](x, pl.lit(v.text))
    value = conv(node.rhs, field, name)
    if op in EQUALITY or op in ORDER:
        return {**EQUALITY, **ORDER}[op](x, pl.lit(value))
    if kind == "bytes":
        return BINARY[op](x, value)
    return TEXT[op](x, value)


def _list(comp: _Compiler, node: ast.Compare, field: Field, name: str) -> pl.Expr:
    """A genuinely multi-valued field: in = subset (non-empty), intersects = overlap."""
    if node.op not in MEMBERSHIP:
        raise FilterError(f"operator '{node.op}' is not supported on list field {name} "
                          "(use in, intersects or exists)", node.op_pos)
    _need_list(node)
    per_item = _scalar(comp, ast.Compare(node.lhs, "in", node.rhs, node.pos, node.op_pos),
                       field, name, x=pl.element(), kind=field.item).fill_null(False)
    hits = field.expr.list.eval(per_item)
    if node.op == "in":
        return hits.list.all() & (field.expr.list.len() > 0)
    return hits.list.any()


def _any(comp: _Compiler, node: ast.Compare, field: Field, name: str) -> pl.Expr:
    """A filter-only multi-match field: true if any value satisfies the check."""
    per_item = _scalar(comp, node, field, name, x=pl.element(), kind=field.item)
    return field.expr.list.eval(per_item.fill_null(False)).list.any()


def _around(comp: _Compiler, node: ast.Compare, field: Field, name: str) -> pl.Expr:
    """evt.around[T] = D: the event time within ±D ms of T ns, both ends included."""
    lhs = node.lhs
    if node.op != "=":
        raise FilterError(f"only '=' is supported with {name}", node.op_pos)
    if not isinstance(lhs, ast.FieldRef) or lhs.arg is None or not lhs.arg.isdigit():
        raise FilterError(f"{name} needs a timestamp in ns as argument", node.pos)
    if not isinstance(node.rhs, ast.Value):
        raise FilterError(f"{name} needs a delta in ms", node.rhs.pos)
    center = int(lhs.arg)
    delta = _conv_integer(_UINT64, "an unsigned")(node.rhs, field, name) * 1_000_000
    return field.expr.is_between(center - delta, center + delta, closed="both")


_KINDS = {kind: _scalar for kind in ("string", "bytes", "int", "uint", "port", "time",
                                     "bool", "ip")}
_KINDS.update({"list": _list, "any": _any, "around": _around})

_NODES = {
    ast.Or: _Compiler._or,
    ast.And: _Compiler._and,
    ast.Not: _Compiler._not,
    ast.Compare: _Compiler._compare,
    ast.Exists: _Compiler._exists,
    ast.Identifier: _Compiler._identifier,
}


# --- transformers (§1.8b) ----------------------------------------------------------------------

def _tr_case(fn):
    def build(f: Field) -> Field:
        return Field(fn(f.expr), "string") if f.kind == "string" else None
    return build


def _tr_b64(f: Field) -> "Field | None":
    """base64 decode. The result is a byte buffer (kind 'bytes': compared on raw bytes with the
    RHS text's bytes), since decoded data need not be UTF-8; invalid base64 gives no value."""
    if f.kind == "string":
        return Field(f.expr.str.decode("base64", strict=False), "bytes")
    if f.kind == "bytes":
        return Field(f.expr.bin.decode("base64", strict=False), "bytes")
    return None


def _tr_basename(f: Field) -> "Field | None":
    if f.kind == "string":  # everything after the last '/'; '' when the path ends in '/'
        return Field(f.expr.str.replace(r"(?s)\A.*/", ""), "string")
    return None


def _tr_len(f: Field) -> "Field | None":
    if f.kind == "string":
        return Field(f.expr.str.len_bytes(), "uint")
    if f.kind == "bytes":
        return Field(f.expr.bin.size(), "uint")
    if f.kind in ("list", "any"):
        return Field(f.expr.list.len(), "uint")
    return None


TRANSFORMS = {
    "tolower": _tr_case(_ascii_lower),
    "toupper": _tr_case(_ascii_upper),
    "b64": _tr_b64,
    "basename": _tr_basename,
    "len": _tr_len,
}


def _transform(node: ast.Transform, inner: Field, inner_name: str) -> Field:
    build = TRANSFORMS.get(node.func)
    if build is None:
        raise FilterError(f"transformer '{node.func}' is not supported", node.pos)
    result = build(inner)
    if result is None:
        raise FilterError(f"transformer '{node.func}' is not supported on {inner.kind} field "
                          f"{inner_name}", node.pos)
    return result
