"""pyparsing grammar of the current sysdig/Falco filter condition syntax (libs >= 0.7, as in
reference/filter-and-chisels.md §1.2–1.5, §1.8b) → the nodes of ``ast.py``.

    expr      := and_expr { OR and_expr }              OR/AND: the keyword, then a blank or '('
    and_expr  := not_expr { AND not_expr }
    not_expr  := NOT not_expr | check                   NOT: 'not', then a blank or '('
    check     := '(' expr ')' | operand condition | IDENTIFIER
    operand   := FIELD ['[' ARG ']'] | TRANSFORMER '(' operand ')'
    condition := 'exists'
               | NUM_OP  (rhs_field | NUMBER)            <  <=  >  >=
               | STR_OP  (rhs_field | STRING)            =  ==  !=  and the word operators
               | LIST_OP ('(' [STRING {',' STRING}] ')' | rhs_field | IDENTIFIER)
    rhs_field := 'val(' FIELD ['[' ARG ']'] ')' | TRANSFORMER '(' operand ')'
    STRING    := QUOTED | BARE

Precedence: not > and > or; and/or chains are n-ary; parentheses group (§1.3).

Error handling: wherever the text is committed to one reading (a field was read, so an operator
must follow; ``and`` + blank was read, so a check must follow ...), a last alternative raises
``FilterError`` with the position of the offending character. Parse actions build AST nodes.

Deliberate differences from libsinsp's hand-written lexer (all on inputs it mishandles or that
only a quirk accepts): a quoted string ends at the first quote not escaped by an *unescaped*
backslash (libsinsp looks only at the previous character, so ``"a\\\\"`` never ends there);
``in``/``intersects``/``pmatch``/``exists`` must not run into a following identifier character
(``inx`` is an unknown operator, not ``in`` + list name ``x``); ``and``/``or``/``not`` are not
accepted as macro identifiers.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import pyparsing as pp

from . import ast
from .errors import FilterError

BLANKS = " \t\b\r\n"
_BLANK_CLASS = r" \t\b\r\n"
TRANSFORMERS = ("tolower", "toupper", "b64", "basename", "len")
WORD_STR_OPS = ("glob", "iglob", "contains", "icontains", "bcontains", "startswith",
                "bstartswith", "endswith", "regex")
LIST_OPS = ("intersects", "in", "pmatch")
NUM_OPS = ("<=", "<", ">=", ">")
MODIFIERS = ("oneof", "anyof", "allof")

# (any character: one that Python calls a space, U+0085 say, is no blank of the filter's)
_TOKEN_AT = re.compile(r"[A-Za-z0-9_.]+|.", re.DOTALL)


def describe(text: str, loc: int) -> str:
    """How to name what stands at ``loc`` in an error message."""
    while loc < len(text) and text[loc] in BLANKS:
        loc += 1
    if loc >= len(text):
        return "end of filter"
    return repr(_TOKEN_AT.match(text, loc).group(0))


def _skip_blanks(text: str, loc: int) -> int:
    while loc < len(text) and text[loc] in BLANKS:
        loc += 1
    return loc


# --- quoted strings and escapes (§1.5) -------------------------------------------------------

_SIMPLE_ESCAPES = {"b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t",
                   "\\": b"\\", "/": b"/", " ": b"\\"}
_HEX = set("0123456789abcdefABCDEF")


def scan_quoted(text: str, loc: int) -> tuple[str, int]:
    """Read the quoted string starting at ``text[loc]`` (a ' or "). Returns (decoded text, end)."""
    quote = text[loc]
    out = bytearray()
    i = loc + 1
    while i < len(text):
        c = text[i]
        if c == quote:
            return out.decode("utf-8", "surrogateescape"), i + 1
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        if i + 1 >= len(text):
            break
        e = text[i + 1]
        if e in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[e]
            i += 2
        elif e in "\"'":
            if e != quote:
                other = "single" if quote == "'" else "double"
                raise FilterError(f"invalid escape '\\{e}' in a {other}-quoted string", i)
            out += e.encode()
            i += 2
        elif e == "x":
            digits = text[i + 2:i + 4]
            if len(digits) != 2 or not set(digits) <= _HEX:
                raise FilterError("escape '\\x' needs exactly two hex digits", i)
            out.append(int(digits, 16))
            i += 4
        else:
            raise FilterError(f"unsupported escape sequence '\\{e}'", i)
    raise FilterError("unterminated string", loc)


class _Quoted(pp.Token):
    """A '…' or "…" string → ast.Value(quoted=True)."""

    def __init__(self):
        super().__init__()
        self.set_whitespace_chars(BLANKS)
        self.mayReturnEmpty = False
        self.mayIndexError = False
        self.errmsg = "expected a quoted string"

    def parseImpl(self, instring, loc, do_actions=True):
        if loc >= len(instring) or instring[loc] not in "\"'":
            raise pp.ParseException(instring, loc, self.errmsg, self)
        value, end = scan_quoted(instring, loc)
        return end, ast.Value(value, True, pos=loc)


_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+")
_FIELD_ARG_BARE = re.compile(r"[^\]\[\"'" + _BLANK_CLASS + r"]+")


class _Field(pp.Token):
    """``class.name`` with an optional ``[arg]`` right after it → ast.FieldRef (§1.2)."""

    def __init__(self):
        super().__init__()
        self.set_whitespace_chars(BLANKS)
        self.mayReturnEmpty = False
        self.mayIndexError = False
        self.errmsg = "expected a field name"

    def parseImpl(self, instring, loc, do_actions=True):
        m = _FIELD_NAME.match(instring, loc)
        if not m:
            raise pp.ParseException(instring, loc, self.errmsg, self)
        name, end, arg = m.group(0), m.end(), None
        if end < len(instring) and instring[end] == "[":
            start = end + 1
            if start < len(instring) and instring[start] in "\"'":
                arg, end = scan_quoted(instring, start)
            else:
                am = _FIELD_ARG_BARE.match(instring, start)
                if not am:
                    raise FilterError(f"expected an argument inside '{name}[...]'", start,
                                      "a quoted string or a bare word")
                arg, end = am.group(0), am.end()
            if end >= len(instring) or instring[end] != "]":
                raise FilterError(f"expected ']' closing the argument of '{name}'", end)
            end += 1
        return end, ast.FieldRef(name, arg, pos=loc)


# --- small element helpers -------------------------------------------------------------------

def _re(pattern: str) -> pp.Regex:
    return pp.Regex(pattern).set_whitespace_chars(BLANKS)


def _lit(s: str) -> pp.Literal:
    return pp.Literal(s).set_whitespace_chars(BLANKS)


def _fail(message, hint=None) -> pp.ParserElement:
    """An element that matches anything and raises FilterError there. ``message`` may be a
    callable (text, loc) -> str."""

    def action(s, loc, toks):
        loc = _skip_blanks(s, loc)
        msg = message(s, loc) if callable(message) else message
        raise FilterError(msg, loc, hint)

    return pp.Empty().set_whitespace_chars(BLANKS).add_parse_action(action)


def _unexpected(hint):
    """Raise "unexpected <token>"; a keyword left dangling at the end of the filter is reported
    as "unexpected end of filter after 'and'" at the end position."""

    def action(s, loc, toks):
        loc = _skip_blanks(s, loc)
        m = re.match(r"(and|or|not)[" + _BLANK_CLASS + r"]*$", s[loc:])
        if m:
            raise FilterError(f"unexpected end of filter after '{m.group(1)}'",
                              loc + len(m.group(1)))
        raise FilterError(f"unexpected {describe(s, loc)}", loc, hint)

    return pp.Empty().set_whitespace_chars(BLANKS).add_parse_action(action)


def _kw(word: str) -> pp.Regex:
    """A keyword that must be followed by a blank or '(' (and, or, not)."""
    return _re(word + r"(?=[" + _BLANK_CLASS + r"(])")


# --- the grammar -----------------------------------------------------------------------------

def _build() -> pp.ParserElement:
    expr = pp.Forward()
    operand = pp.Forward()

    field = _Field()
    quoted = _Quoted()
    bare = _re(r"[^()\"'=," + _BLANK_CLASS + r"\v\f]+").add_parse_action(
        lambda s, loc, t: ast.Value(t[0], False, pos=loc))
    number = _re(r"0[xX][0-9a-zA-Z]+|[+-]?[0-9]+\.?[0-9]*(?:[eE][+-][0-9]+)?").add_parse_action(
        lambda s, loc, t: ast.Value(t[0], False, pos=loc))
    identifier = _re(r"(?!(?:and|or|not)(?![A-Za-z0-9_]))[A-Za-z][A-Za-z0-9_]*").add_parse_action(
        lambda s, loc, t: ast.Identifier(t[0], pos=loc))

    # transformers: the name and '(' with nothing between them, as in libsinsp
    tr_open = _re(r"(?:" + "|".join(TRANSFORMERS) + r")\(")
    no_arg_after = pp.Opt(_lit("[") + _fail("an argument after a transformer is not supported"))

    def tr_action(s, loc, t):
        return ast.Transform(t[0][:-1], t[1], pos=loc)

    transform = (tr_open
                 + (operand | _fail(lambda s, loc: f"expected a field inside "
                                    f"'{_opener(s, loc)}...)'"))
                 + (_lit(")").suppress() | _unexpected("expected ')' closing the transformer"))
                 + no_arg_after.suppress()).add_parse_action(tr_action)
    operand <<= transform | field

    val = (_lit("val(").suppress()
           + (field | _fail("expected a field inside 'val(...)'"))
           + (_lit(")").suppress() | _unexpected("expected ')' closing 'val('"))
           ).add_parse_action(lambda s, loc, t: ast.Val(t[0], pos=loc))
    rhs_field = val | transform

    ops_alt = "|".join(re.escape(o) for o in sorted(
        ("==", "=", "!=") + NUM_OPS + WORD_STR_OPS + LIST_OPS, key=len, reverse=True))
    op_before = re.compile(r"(" + ops_alt + r")[" + _BLANK_CLASS + r"]*$")

    def op_of(s, loc):
        """The operator just before loc (for error messages)."""
        m = op_before.search(s[:loc])
        return m.group(1) if m else "operator"

    modifier = _re(r"(?:" + "|".join(MODIFIERS) + r")(?=[" + _BLANK_CLASS + r"]*\()")
    modifier.add_parse_action(lambda s, loc, t: _raise(
        f"string modifier '{t[0]}' is not supported", loc))

    num_op = _re("|".join(re.escape(o) for o in NUM_OPS))
    str_op = _re(r"==|=|!=|(?:" + "|".join(WORD_STR_OPS) + r")(?=[" + _BLANK_CLASS + r"])")
    list_op = _re(r"(?:" + "|".join(LIST_OPS) + r")(?![A-Za-z0-9_.])")
    exists = _re(r"exists(?![A-Za-z0-9_.])")

    num_rhs = rhs_field | number | _fail(
        lambda s, loc: f"expected a number after '{op_of(s, loc)}', found {describe(s, loc)}")
    str_rhs = rhs_field | modifier | quoted | bare | _fail(
        lambda s, loc: f"expected a value after '{op_of(s, loc)}', found {describe(s, loc)}")
    item = quoted | bare
    list_value = (_lit("(").suppress()
                  + pp.Opt(item + pp.ZeroOrMore(
                      _lit(",").suppress() + (item | _unexpected("expected a list value"))))
                  + (_lit(")").suppress() | _unexpected("expected ',' or ')' in the list"))
                  ).add_parse_action(lambda s, loc, t: ast.ListValue(tuple(t), pos=loc))
    list_rhs = list_value | rhs_field | identifier | _fail(
        lambda s, loc: f"expected a list after '{op_of(s, loc)}', found {describe(s, loc)}")

    def bad_operator(s, loc):
        if loc >= len(s):
            return "expected an operator, found end of filter"
        word = re.match(r"[^" + _BLANK_CLASS + r"()]*", s[loc:]).group(0) or s[loc]
        for op in sorted(WORD_STR_OPS, key=len, reverse=True):
            if word.startswith(op) and word != op:
                return f"operator '{op}' must be followed by a blank"
        if word in WORD_STR_OPS:
            return f"expected a value after '{word}'"
        return f"unknown operator '{word}'"

    def binary(t):
        return _Cond(t[0].op, t[1], t[0].pos)

    for op_el in (num_op, str_op, list_op):
        op_el.add_parse_action(lambda s, loc, t: _Cond(t[0], None, loc))

    condition = (exists.copy().add_parse_action(lambda t: _Cond("exists", None))
                 | (num_op + num_rhs).add_parse_action(binary)
                 | (str_op + str_rhs).add_parse_action(binary)
                 | (list_op + list_rhs).add_parse_action(binary)
                 | _fail(bad_operator))

    def check_action(s, loc, t):
        lhs, cond = t[0], t[1]
        if cond.op == "exists":
            return ast.Exists(lhs, pos=loc)
        op = "=" if cond.op == "==" else cond.op
        return ast.Compare(lhs, op, cond.rhs, pos=loc, op_pos=cond.pos)

    field_check = (operand + condition).add_parse_action(check_action)
    # a single word followed by an operator: a misspelt field rather than a macro
    not_a_field = _re(r"[A-Za-z][A-Za-z0-9_]*(?=[" + _BLANK_CLASS + r"]*(?:[=<>!]|(?:"
                      + "|".join(WORD_STR_OPS + LIST_OPS + ("exists",))
                      + r")(?![A-Za-z0-9_.])))").add_parse_action(
        lambda s, loc, t: _raise(f"'{t[0]}' is not a field name (fields are written "
                                 "class.name)", loc))
    paren = (_lit("(").suppress() + expr
             + (_lit(")").suppress() | _unexpected("expected 'and', 'or' or ')'")))
    check = (paren | field_check
             | _re(r"val\(").add_parse_action(
                 lambda s, loc, t: _raise("val() is allowed only on the right-hand side", loc))
             | not_a_field
             | identifier
             | _unexpected("expected a field, 'not' or '('"))

    not_expr = pp.Forward()
    not_expr <<= ((_kw("not").suppress() + not_expr).add_parse_action(
        lambda s, loc, t: ast.Not(t[0], pos=loc)) | check)

    def nary(cls):
        def action(s, loc, t):
            return t[0] if len(t) == 1 else cls(tuple(t), pos=loc)
        return action

    and_expr = (not_expr + pp.ZeroOrMore(_kw("and").suppress() + not_expr)
                ).add_parse_action(nary(ast.And))
    expr <<= (and_expr + pp.ZeroOrMore(_kw("or").suppress() + and_expr)
              ).add_parse_action(nary(ast.Or))

    end = pp.StringEnd().set_whitespace_chars(BLANKS)
    return expr + (end | _unexpected("expected 'and' or 'or'")).suppress()


@dataclass(frozen=True)
class _Cond:
    op: str
    rhs: object
    pos: int = -1


def _opener(s, loc):
    m = re.search(r"([A-Za-z0-9_]+\()[" + _BLANK_CLASS + r"]*$", s[:loc])
    return m.group(1) if m else "("


def _raise(message, loc):
    raise FilterError(message, loc)


_GRAMMAR = _build()


def parse(text: str) -> ast.Node:
    """Parse a filter condition into an AST. Raises FilterError on bad syntax."""
    if not isinstance(text, str):
        raise TypeError(f"filter text must be str, not {type(text).__name__}")
    return _parsed(text)


# A reading by chunks asks for the same filter at every chunk (a live one, many times a
# second): pyparsing took 3 ms of each. The trees are never changed once made.
@functools.lru_cache(maxsize=128)
def _parsed(text):
    if not text.strip(BLANKS):
        raise FilterError("filter is empty", 0)
    try:
        result = _GRAMMAR.parse_string(text, parse_all=False)
    except pp.ParseBaseException as exc:  # every path ends in a _fail; this is a safety net
        raise FilterError(f"unexpected {describe(text, exc.loc)}", exc.loc) from None
    except RecursionError:
        raise FilterError("filter is nested too deeply", 0) from None
    return result[0]
