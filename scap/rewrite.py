"""Write an opened capture (all of it, or some of its events) in the current format."""
import numpy as np

from .writer import Writer


def write_capture(path, capture, *, rows=None, compress=False):
    """Write capture to path: each section's header blocks in current versions, then its events.

    rows selects events (bool mask or sorted indexes over the capture's events); None = all.
    Returns the number of events written.
    """
    from . import metadata  # construct loads only when a capture is written
    n = len(capture)
    if rows is None:
        keep = np.ones(n, dtype=bool)
    else:
        rows = np.asarray(rows)
        keep = rows if rows.dtype == bool else np.isin(np.arange(n), rows)
    bounds = [s.first_event for s in capture.sections] + [n]
    with Writer(path, compress=compress) as out:
        for k, section in enumerate(capture.sections):
            out.write_section_header()
            for block in metadata.current_blocks(capture, k):
                out.write(block)
            lo, hi = bounds[k], bounds[k + 1]
            sel = np.flatnonzero(keep[lo:hi]) + lo
            out.write_capture_events(capture, sel)
        return out.events_written
