"""Selecting events with a filter: the filter compiles to one Polars expression over the
columns of the fields it names.

Computing a state field (proc.name, fd.name...) for millions of events costs far more than
the test itself, and most filters also say something cheap about the event: its type, or a
parameter only some event types have (`evt.buffer contains GET` can only hold for the few
events with data). So the filter is first *relaxed* to a mask that every matching event is in
(cheap tests kept exact, tests on a parameter reduced to "the event type has it", the rest
dropped); when that leaves a small share of the events, the fields are computed for those
rows only and the whole filter decides among them.
"""
import numpy as np

from .api import _data, filter_expr, filter_fields
from .fields import columns, columns_at, lookup
from .filter import ast, compile_filter, parse

# Fields computed from the event headers alone: exact in the relaxed mask.
CHEAP = frozenset({"evt.num", "evt.type", "evt.dir", "thread.tid", "evt.cpu", "evt.rawtime",
                   "evt.is_io", "evt.is_io_read", "evt.is_io_write", "syscall.type"})
# Beyond this share of the events, computing the fields for every event is as cheap.
_MOST = 0.25


def filter_mask(capture, text, data=None):
    """A bool per event: does it match the filter `text`? (FilterError on bad filters.)"""
    expr = filter_expr(text)  # checks the filter before any column is computed
    data = data or _data(capture)
    names = filter_fields(text)
    candidates = None
    if not all(name in CHEAP for name in names):
        candidates = _relaxed(data, parse(text))
    if candidates is None or np.count_nonzero(candidates) > _MOST * len(data):
        return columns(data, names).select(expr).to_series().to_numpy()
    rows = np.flatnonzero(candidates)
    hits = columns_at(data, names, rows).select(expr).to_series().to_numpy()
    mask = np.zeros(len(data), dtype=bool)
    mask[rows[hits]] = True
    return mask


def _relaxed(data, node):
    """A bool mask holding for every event the node can match, or None (any event can)."""
    if isinstance(node, ast.And):
        masks = [m for m in (_relaxed(data, c) for c in node.children) if m is not None]
        if not masks:
            return None
        out = masks[0].copy()
        for m in masks[1:]:
            out &= m
        return out
    if isinstance(node, ast.Or):
        masks = [_relaxed(data, c) for c in node.children]
        if any(m is None for m in masks):
            return None
        out = masks[0].copy()
        for m in masks[1:]:
            out |= m
        return out
    if isinstance(node, ast.Not):
        child = node.child
        if _uses_only_cheap(child):
            return ~_exact(data, child)
        return None
    if _uses_only_cheap(node):
        return _exact(data, node)
    if isinstance(node, (ast.Compare, ast.Exists)) and isinstance(node.lhs, ast.FieldRef) \
            and not isinstance(getattr(node, "rhs", None), ast.Val):
        # a test on a missing value is false (even !=): the field must have one
        reference = node.lhs.name if node.lhs.arg is None else f"{node.lhs.name}[{node.lhs.arg}]"
        definition, arg = lookup(reference)
        if definition.present is not None:
            return definition.present(data, arg)
    return None


def _field_names(node):
    from .api import _collect_fields
    return _collect_fields(node)


def _uses_only_cheap(node):
    names = _field_names(node)
    return bool(names) and all(name in CHEAP for name in names)


def _exact(data, node):
    from .api import _resolve_by_name
    expr = compile_filter(node, _resolve_by_name)
    return columns(data, _field_names(node)).select(expr).to_series().to_numpy()


def first_events(capture, count):
    """A bool per event: the first `count` events sysdig reads (its -n). The container events
    that lead a section are consumed while the file is opened: numbered, but not counted."""
    from scaptool.scap import sysdig0293

    from .render import opening_rows
    counted = np.asarray(capture.event_numbers) > 0
    for first, end in sysdig0293.leading_state_runs(capture.event_types, opening_rows(capture)):
        counted[first:end] = False
    return counted & (np.cumsum(counted) <= count)
