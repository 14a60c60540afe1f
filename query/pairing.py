"""Enter/exit pairing: for every exit event, the enter event of the same system call.

sysdig remembers, per thread, the last enter event it saw (events flagged SKIPPARSERESET, like
the scheduler switch, do not count); an exit event is paired with it when its type is the exit's
type minus one. The pair gives the exit its fd (that of a write's enter, say) and its latency.
Computed for all events at once: sort by (thread, position) and carry the last enter position
forward within each thread. The enter's other parameters, which the state parsers read, follow
a stricter rule (stored_enter_rows_at).
"""
import numpy as np

from scaptool.scap import sysdig0293


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
    counts_as_enter = (types % 2 == 0) & ~sysdig0293.skips_reset()[types]
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
    skips = sysdig0293.skips_reset()[np.asarray(types)]
    if not skips.any():
        return out
    # a skipping event shows its thread's last latency: that of its last non-skipping event
    source = last_row_where(~skips, tids)
    carried = np.where(source >= 0, out[np.maximum(source, 0)], 0)
    return np.where(skips, carried, out)


# How far back stored_enter_rows_at first looks for all exits at once (the enter is usually
# among the last few events); how many events one such look may gather.
_WINDOWS = (64, 1024)
_GATHER_BUDGET = 1 << 21


def stored_enter_rows_at(types, tids, rows, stored=None):
    """For some exit rows: the enter event whose parameters sysdig 0.29.3 can still read
    when it parses the exit (-1: none).

    sysdig copies some enter events per thread (store_event) and frees the copy at the
    thread's next exit (event_cleanup), whatever its type. So an exit reads the enter-side
    parameters (a socket's domain, fcntl's command, setuid's id) only if no other exit of its
    thread came between: after an exit whose enter was lost (a capture stopped mid-call), the
    next exit of the same call type is paired for its fd and latency but has no parameters.
    The copy is the thread's last stored enter: `stored(rows)` says which enter rows sysdig
    copies (default: all), and an enter it does not copy leaves an older copy in place.
    """
    types, tids = np.asarray(types), np.asarray(tids)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    found = np.full(len(rows), -1, dtype=np.int64)
    exits = np.flatnonzero(types[rows] % 2 == 1)
    if len(exits):
        exits = exits[_enter_type_seen_before(types, rows[exits])]
    if len(exits) == 0:
        return found
    wanted = types[rows[exits]].astype(np.int64) - 1
    # the thread's last event before the exit must be its enter: reset pairs by type, and any
    # exit in between freed the copy
    last = previous_event_rows(types, tids, rows[exits])
    copy = np.where((last >= 0) & (types[np.maximum(last, 0)].astype(np.int64) == wanted),
                    last, -1)
    if stored is not None:
        # an enter sysdig does not copy leaves the older copy, if no exit came between
        looking = np.flatnonzero(copy >= 0)
        while len(looking):
            kept = np.asarray(stored(copy[looking]), dtype=bool)
            looking = looking[~kept]
            if not len(looking):
                break
            before = previous_event_rows(types, tids, copy[looking])
            is_enter = (before >= 0) & (types[np.maximum(before, 0)] % 2 == 0)
            copy[looking] = np.where(is_enter, before, -1)
            looking = looking[is_enter]
        ok = copy >= 0
        copy[ok] = np.where(types[copy[ok]].astype(np.int64) == wanted[ok], copy[ok], -1)
    found[exits] = copy
    return found


def previous_event_rows(types, tids, rows):
    """For each row, the last earlier event of its thread that counts for sysdig's
    per-thread reset (not a scheduler switch or another SKIPPARSERESET event); -1 if none.
    The events just before are looked at for all rows at once, in windows that grow; the
    rows still unanswered then share one pass over the events of their threads."""
    types, tids = np.asarray(types), np.asarray(tids)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    skips = sysdig0293.skips_reset()
    found = np.full(len(rows), -1, dtype=np.int64)
    pending = np.arange(len(rows))
    searched = 0  # every pending row has been searched this far back
    for window in _WINDOWS:
        step = max(1, _GATHER_BUDGET // window)
        still = []
        for lo in range(0, len(pending), step):
            part = pending[lo:lo + step]
            hits = _nearest_event(types, tids, skips, rows[part], searched, window)
            found[part] = hits
            still.append(part[(hits < 0) & (rows[part] > window)])
        pending = np.concatenate(still) if still else pending[:0]
        searched = window
    if len(pending):
        found[pending] = _last_event_before(types, tids, skips, rows[pending])
    return found


def _nearest_event(types, tids, skips, at, skip, window):
    """For each row in `at`, the nearest event of its thread that does not skip the reset,
    among the events from `skip + 1` to `window` events before it (-1: none there)."""
    back = at[:, None] - np.arange(skip + 1, window + 1, dtype=np.int64)[None, :]
    inside = back >= 0
    back = np.maximum(back, 0)
    hit = inside & (tids[back] == tids[at][:, None]) & ~skips[types[back]]
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


def _last_event_before(types, tids, skips, at):
    """For each row in `at`, the last earlier event of its thread that does not skip the
    reset (-1: none), from one pass over the events of those threads."""
    threads, query_code = np.unique(tids[at], return_inverse=True)
    theirs = np.flatnonzero(member(tids, threads))  # the events of those threads
    counted = theirs[~skips[types[theirs]]]
    code = np.searchsorted(threads, tids[counted])
    # one sorted key per (thread, row): the events' keys are searched for each row's key
    span = len(types) + 1
    keys = code.astype(np.int64) * span + counted
    order = np.argsort(keys, kind="stable")
    keys, counted = keys[order], counted[order]
    pos = np.searchsorted(keys, query_code.astype(np.int64) * span + at) - 1
    same = (pos >= 0) & (keys[np.maximum(pos, 0)] // span == query_code)
    return np.where(same, counted[np.maximum(pos, 0)], -1)


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
