"""Export the events around chosen moments, thread by thread, to a capture of their own.

spy_logs, spy_syslog and around remember (timestamp, tid) for every event they show; the export
keeps every event of that thread within `range_ms` milliseconds of that moment, bounds
included (sysdig's evt.around), plus the state a reader needs so that process and fd names
still resolve: the metadata blocks and, state-only, every state-changing event outside the
windows (scap.write_capture does that for any selection).
"""
import numpy as np


def window_mask(capture, moments, range_ms):
    """A bool per event: within range_ms of one of the (ts, tid) moments, on that thread."""
    h = capture.headers
    keep = np.zeros(len(capture), dtype=bool)
    if not len(moments):
        return keep
    half = int(range_ms) * 1_000_000
    by_tid = {}
    for ts, tid in moments:
        by_tid.setdefault(int(tid), []).append(int(ts))
    tids = np.asarray(h.tid)
    ts_all = np.asarray(h.ts).astype(np.int64)
    for tid, stamps in by_tid.items():
        rows = np.flatnonzero(tids == tid)
        if not len(rows):
            continue
        starts, ends = _merged(np.asarray(stamps, dtype=np.int64) - half,
                               np.asarray(stamps, dtype=np.int64) + half)
        ts = ts_all[rows]
        # the last window starting at or before each event: is the event before its end?
        k = np.searchsorted(starts, ts, side="right") - 1
        inside = (k >= 0) & (ts <= ends[np.maximum(k, 0)])
        keep[rows[inside]] = True
    return keep


def _merged(starts, ends):
    """Overlapping [start, end] intervals merged, sorted by start."""
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.r_[True, starts[1:] > reach[:-1]]
    group = np.cumsum(new) - 1
    merged_starts = starts[new]
    merged_ends = np.zeros(len(merged_starts), dtype=np.int64)
    np.maximum.at(merged_ends, group, ends)
    merged_ends = np.maximum(merged_ends, merged_starts)
    return merged_starts, merged_ends


def export(capture, path, moments, range_ms, compress=False):
    """Write the events around the moments (and the state they need) to `path`; returns how
    many events were selected."""
    from scaptool import scap
    rows = window_mask(capture, moments, range_ms)
    scap.write_capture(path, capture, rows=rows, compress=compress)
    return int(np.count_nonzero(rows))
