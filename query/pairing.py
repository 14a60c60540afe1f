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
    flags = [old[i].flags if i < len(old) else new[i].flags for i in range(len(new))]
    skips = np.array([bool(f & EF.SKIPPARSERESET) for f in flags] + [False] * (65536 - len(new)))
    # the scheduler switch is not flagged, but sysdig's reset leaves the thread's last enter
    # and latency alone for it too (evt.latency of a switch is its thread's last latency)
    skips[[i for i in range(len(new)) if new[i].name == "switch"]] = True
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


def enter_rows_at(types, tids, rows):
    """enter_rows for a few exit rows only: each one's enter is searched backwards from it,
    in windows that grow, so a handful of exits does not cost a pass over every event."""
    types, tids = np.asarray(types), np.asarray(tids)
    skips = _skips_reset()
    out = []
    for row in rows:
        row = int(row)
        tid, found, hi, step = tids[row], -1, row, 256
        if types[row] % 2 == 1:
            while hi > 0 and found < 0:
                lo = max(0, hi - step)
                window = types[lo:hi]
                hit = np.flatnonzero((tids[lo:hi] == tid) & (window % 2 == 0) & ~skips[window])
                if len(hit):
                    found = lo + int(hit[-1])
                hi, step = lo, step * 8
        matched = found >= 0 and int(types[found]) == int(types[row]) - 1
        out.append(found if matched else -1)
    return np.asarray(out, dtype=np.int64)
