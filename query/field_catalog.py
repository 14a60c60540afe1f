"""The field catalog's registry: every field a filter, a -p format or JSON output can name.

Each field is an entry with its name, sysdig's type name (as `-l` lists it), the kind the
filter compiler works with, a description, and how to compute it: a function from the
capture's EventData (and the field's argument, for fields like `evt.arg.NAME` or
`proc.aname[2]`) to a Polars Series with one value per event, null where sysdig has none.

The modules that define fields (query.fields and the query.fields_* it loads) register them
here with @field; query.fields is the catalog as users see it, every field loaded.
"""
from dataclasses import dataclass
from typing import Callable

FIELDS = {}


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str          # sysdig's type name, for -l
    kind: str          # the filter compiler's kind: string bytes int uint bool ip port time list
    description: str
    compute: Callable
    arg: str = "none"  # "none", "optional" or "required": an argument as [N] or .NAME
    per_row: Callable = None  # for text made event by event: (data, arg, rows) -> Series
    # (data, arg) -> bool per event: where the field can have a value at all (by event type)
    present: Callable = None
    # (data, arg, rows) -> Series: the filter value at some rows only, where that is cheaper
    # than computing every event; per_row gives the *printed* value, which may differ
    at_rows: Callable = None

    def series(self, data, arg=None):
        return self.compute(data, arg)

    def series_at(self, data, arg, rows):
        """The field as printed, for the given rows only (cheaper for text rendered event by
        event)."""
        if self.per_row is not None:
            return self.per_row(data, arg, rows)
        return self.compute(data, arg).gather(rows)

    def filter_values_at(self, data, arg, rows):
        """The field as filters compare it, for the given rows only."""
        if self.at_rows is not None:
            return self.at_rows(data, arg, rows)
        return self.compute(data, arg).gather(rows)


def field(name, type_, kind, description, arg="none", per_row=None, present=None,
          at_rows=None):
    """Register a field. at_rows=True: per_row gives the filter value too."""
    def register(compute):
        FIELDS[name] = FieldDef(name, type_, kind, description, compute, arg, per_row, present,
                                per_row if at_rows is True else at_rows)
        return compute
    return register


class UnknownFieldError(KeyError):
    pass


class FormatError(ValueError):
    """A format, or a field's argument in it, that sysdig would refuse (a one-line error)."""


def lookup(text):
    """(FieldDef, argument) for a field reference: `evt.num`, `evt.arg.fd`, `evt.arg[1]`,
    `proc.aname[2]`."""
    name, arg = text, None
    if text.endswith("]") and "[" in text:
        name, arg = text[:-1].split("[", 1)
    if name in FIELDS:
        return FIELDS[name], arg
    # dotted arguments: evt.arg.NAME, evt.rawarg.NAME, thread.cgroup.X ...
    head, _, tail = name.rpartition(".")
    while head:
        if head in FIELDS and FIELDS[head].arg != "none":
            return FIELDS[head], tail
        head, _, more = head.rpartition(".")
        tail = more + "." + tail
    raise UnknownFieldError(text)
