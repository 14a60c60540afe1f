"""Time windows around (timestamp, tid) moments, thread by thread: which events fall in them.

sysdig's evt.around: an event is kept when it is on the thread of a moment and within
`range_ms` milliseconds of it, bounds included. spy_logs' exports and `slice --around` both
ask it, a capture or a chunk of one at a time.
"""
import numpy as np


class Windows:
    """The time windows of some (ts, tid) moments, thread by thread: [ts - range, ts + range]
    merged where they overlap. Built once, asked of any capture or chunk of one."""

    def __init__(self, moments, range_ms):
        half = int(range_ms) * 1_000_000
        by_tid = {}
        for ts, tid in moments:
            by_tid.setdefault(int(tid), []).append(int(ts))
        self.by_tid = {tid: _merged(np.asarray(stamps, dtype=np.int64) - half,
                                    np.asarray(stamps, dtype=np.int64) + half)
                       for tid, stamps in by_tid.items()}

    def mask(self, capture):
        """A bool per event of the capture: within a window of its own thread."""
        h = capture.headers
        keep = np.zeros(len(capture), dtype=bool)
        if not self.by_tid or not len(capture):
            return keep
        tids = np.asarray(h.tid)
        ts_all = np.asarray(h.ts).astype(np.int64)
        present = np.unique(tids)
        for tid in present[np.isin(present, list(self.by_tid))].tolist():
            starts, ends = self.by_tid[int(tid)]
            rows = np.flatnonzero(tids == tid)
            ts = ts_all[rows]
            # the last window starting at or before each event: is the event before its end?
            k = np.searchsorted(starts, ts, side="right") - 1
            inside = (k >= 0) & (ts <= ends[np.maximum(k, 0)])
            keep[rows[inside]] = True
        return keep


def window_mask(capture, moments, range_ms):
    """A bool per event: within range_ms of one of the (ts, tid) moments, on that thread."""
    return Windows(moments, range_ms).mask(capture)


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
