"""Enter/exit pairing: for every exit event, the enter event of the same system call.

sysdig remembers, per thread, the last enter event it saw (events flagged SKIPPARSERESET, like
the scheduler switch, do not count); an exit event is paired with it when its type is the exit's
type minus one. The pair gives the exit its enter-side parameters (the fd of a write, say) and
its latency. Computed for all events at once: sort by (thread, position) and carry the last
enter position forward within each thread.
"""
import functools

import numpy as np

from scap import eventtable
from scap.eventtable import EF


@functools.cache
def _skips_reset():
    """Per event id: does sysdig 0.29.3 skip its per-thread reset for it (EF_SKIPPARSERESET)?
    Current libs dropped the flag from some events (the switch among them): 0.29.3's table
    decides for the ids it knows."""
    old, new = eventtable.sysdig_0293(), eventtable.libs()
    flags = new.flags.copy()
    flags[:len(old)] = old.flags
    skips = np.zeros(65536, dtype=bool)
    skips[:len(new)] = (flags & int(EF.SKIPPARSERESET)) != 0
    # the scheduler switch is not flagged, but sysdig's reset leaves the thread's last enter
    # and latency alone for it too (evt.latency of a switch is its thread's last latency)
    skips[list(new.ids_named("switch"))] = True
    return skips


def last_row_where(mask, tids, section=None):
    """Per row: the last row at or before it, of the same thread (and section), where mask
    holds; -1 if none. One sort by (section, thread, row), then a running maximum that cannot
    cross thread boundaries (each thread's rows are offset past the previous thread's)."""
    tids = np.asarray(tids)
    n = len(tids)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = (np.arange(n), tids) if section is None else (np.arange(n), tids, section)
    order = np.lexsort(keys)
    new_group = np.r_[True, tids[order][1:] != tids[order][:-1]]
    if section is not None:
        sec = np.asarray(section)[order]
        new_group |= np.r_[True, sec[1:] != sec[:-1]]
    base = (np.cumsum(new_group) - 1).astype(np.int64) * np.int64(n + 1)
    key = np.where(np.asarray(mask)[order], base + order, base - 1)
    out = np.empty(n, dtype=np.int64)
    out[order] = np.maximum.accumulate(key) - base
    return out


def enter_rows(types, tids):
    """Per event, the row of its enter event, or -1 (enter events, unpaired exits)."""
    types = np.asarray(types)
    counts_as_enter = (types % 2 == 0) & ~_skips_reset()[types]
    last_enter = last_row_where(counts_as_enter, tids)
    is_exit = types % 2 == 1
    safe = np.maximum(last_enter, 0)
    matched = is_exit & (last_enter >= 0) & (types[safe].astype(np.int64) ==
                                              types.astype(np.int64) - 1)
    return np.where(matched, last_enter, -1)


def latency(ts, enter, types=None, tids=None):
    """evt.latency: exit time minus its enter's time, 0 for enters and unpaired exits.

    Events that skip sysdig's per-thread reset (the scheduler switch) show whatever latency
    their thread last computed; pass types and tids to get that too.
    """
    ts = np.asarray(ts, dtype=np.uint64)
    has = enter >= 0
    out = np.zeros(len(ts), dtype=np.int64)
    out[has] = (ts[has] - ts[enter[has]]).astype(np.int64)
    if types is None:
        return out
    skips = _skips_reset()[np.asarray(types)]
    if not skips.any():
        return out
    # a skipping event shows its thread's last latency: that of its last non-skipping event
    source = last_row_where(~skips, tids)
    carried = np.where(source >= 0, out[np.maximum(source, 0)], 0)
    return np.where(skips, carried, out)


# How far back enter_rows_at first looks for all exits at once (the enter is usually among
# the last few events); how many events one such look may gather.
_WINDOWS = (64, 1024)
_GATHER_BUDGET = 1 << 21


def enter_rows_at(types, tids, rows):
    """enter_rows for some exit rows only: the events just before the exits are checked for
    all of them at once, in windows that grow; the exits still unpaired then share one pass
    over the events of their threads."""
    types, tids = np.asarray(types), np.asarray(tids)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    skips = _skips_reset()
    found = np.full(len(rows), -1, dtype=np.int64)
    pending = np.flatnonzero(types[rows] % 2 == 1)  # exits not paired yet
    searched = 0  # every pending exit has been searched this far back
    for window in _WINDOWS:
        step = max(1, _GATHER_BUDGET // window)
        still = []
        for lo in range(0, len(pending), step):
            part = pending[lo:lo + step]
            hits = _nearest_enter(types, tids, skips, rows[part], searched, window)
            found[part] = hits
            still.append(part[(hits < 0) & (rows[part] > window)])
        pending = np.concatenate(still) if still else pending[:0]
        searched = window
    if len(pending):
        pending = pending[_enter_type_seen_before(types, rows[pending])]
    if len(pending):
        found[pending] = _last_enter_before(types, tids, skips, rows[pending])
    matched = (found >= 0) & (types[np.maximum(found, 0)].astype(np.int64) ==
                              types[rows].astype(np.int64) - 1)
    return np.where(matched, found, -1)


def _nearest_enter(types, tids, skips, at, skip, window):
    """For each exit row in `at`, the nearest enter of its thread among the events from
    `skip + 1` to `window` events before it (-1: none there)."""
    back = at[:, None] - np.arange(skip + 1, window + 1, dtype=np.int64)[None, :]
    inside = back >= 0
    back = np.maximum(back, 0)
    kinds = types[back]
    hit = inside & (tids[back] == tids[at][:, None]) & (kinds % 2 == 0) & ~skips[kinds]
    near = hit.any(axis=1)
    out = np.full(len(at), -1, dtype=np.int64)
    out[near] = back[near, hit[near].argmax(axis=1)]
    return out


def _enter_type_seen_before(types, exits):
    """For each exit row, does an event of its enter's type come before it anywhere in the
    capture? Where none does, the exit has no enter, and no search of its thread's events
    is needed (execve exits of a capture started during the execve: one compare per event,
    instead of gathering every event of the thread)."""
    wanted = types[exits].astype(np.int64) - 1
    seen = np.zeros(len(exits), dtype=bool)
    for enter_type in set(wanted.tolist()):
        mine = wanted == enter_type
        is_enter = types[:int(exits[mine].max())] == enter_type
        first = int(np.argmax(is_enter)) if is_enter.any() else len(types)
        seen[mine] = exits[mine] > first
    return seen


def _last_enter_before(types, tids, skips, at):
    """For each row in `at`, the last enter of its thread before it (-1: none), from one
    pass over the events of those threads."""
    threads, query_code = np.unique(tids[at], return_inverse=True)
    theirs = np.flatnonzero(member(tids, threads))  # the events of those threads
    kinds = types[theirs]
    enters = theirs[(kinds % 2 == 0) & ~skips[kinds]]
    enter_code = np.searchsorted(threads, tids[enters])
    # one sorted key per (thread, row): the enters' keys are searched for each row's key
    span = len(types) + 1
    keys = enter_code.astype(np.int64) * span + enters
    order = np.argsort(keys, kind="stable")
    keys, enters = keys[order], enters[order]
    pos = np.searchsorted(keys, query_code.astype(np.int64) * span + at) - 1
    same = (pos >= 0) & (keys[np.maximum(pos, 0)] // span == query_code)
    return np.where(same, enters[np.maximum(pos, 0)], -1)


def member(values, wanted):
    """np.isin(values, wanted) for thread ids: a table lookup when their range is small
    (it is), several times faster than isin's sort."""
    wanted = np.asarray(sorted(wanted), dtype=np.int64)
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    lo, hi = int(values.min()), int(values.max())
    if hi - lo >= 1 << 24:
        return np.isin(values, wanted)
    table = np.zeros(hi - lo + 1, dtype=bool)
    table[wanted[(wanted >= lo) & (wanted <= hi)] - lo] = True
    return table[values if lo == 0 else values.astype(np.int64) - lo]
