"""Export the events around chosen moments, thread by thread, to a capture of their own.

spy_logs, spy_syslog and around remember (timestamp, tid) for every event they show; the export
keeps every event of that thread within `range_ms` milliseconds of that moment, bounds
included (sysdig's evt.around), plus the state a reader needs so that process and fd names
still resolve: the metadata blocks and, state-only, every state-changing event outside the
windows (scap.rewrite.CaptureWriter does that for any selection). The chisels find their
moments while they read the capture a chunk at a time; the export is a second such reading,
once every moment is known, since a window may reach back into any chunk before its moment.
"""
import numpy as np

from scaptool.query.windows import Windows


def export(readings, path, moments, range_ms, compress=False):
    """Write the events around the moments (and the state they need) to `path` from
    `readings`, the EventData of a second reading of the capture (ChiselRun.read_again: a
    chunk at a time, since the windows may reach back into chunks read long before the moment
    was seen; or the whole capture at once); returns how many events were selected."""
    from scaptool.scap.rewrite import CaptureWriter
    windows = Windows(moments, range_ms)
    selected = 0
    with CaptureWriter(path, compress=compress) as writer:
        for n, data in enumerate(readings):
            chunk = data.capture
            if not n:
                chunk.report("writing", 0)
            rows = windows.mask(chunk)
            rows[:getattr(chunk, "context", 0)] = False
            selected += int(np.count_nonzero(rows))
            writer.add(chunk, rows)
    return selected
