"""Write an opened capture (all of it, or some of its events) in the current format."""
import functools

import numpy as np

from . import sysdig0293
from .eventtable import EC, EF
from .writer import Writer


def write_capture(path, capture, *, rows=None, compress=False, keep_state=True):
    """Write capture to path: each section's header blocks in current versions, then its events.

    rows selects events (bool mask or sorted indexes over the capture's events); None = all.
    With a selection and keep_state, the events left out that change state (clone, execve,
    open, close, ...; sysdig's EF_MODIFIES_STATE) and the internal ones (procinfo, container
    information) are written too, flagged state-only where they would show: a reader then
    still knows every process and fd name, and shows the selected events only.
    Returns the number of events written.
    """
    return write_captures(path, [(capture, rows)], compress=compress, keep_state=keep_state)


def write_captures(path, parts, *, compress=False, keep_state=True):
    """Write several captures, one after the other, to one file: `parts` holds (capture, rows)
    pairs, rows as for write_capture. Each capture's sections keep their own header blocks,
    so every event keeps the process and fd names of its own capture. Returns the number of
    events written."""
    for capture, _ in parts:
        capture.report("writing", 0)
    with CaptureWriter(path, compress=compress, keep_state=keep_state) as out:
        for capture, rows in parts:
            out.add(capture, rows)
        return out.events_written


class CaptureWriter:
    """Writes a capture from what is given to it, in order: whole captures, or the chunks of
    one read a chunk at a time (query.chunks), each section's header blocks where it starts.
    A context manager; nothing is visible at `path` until it is closed without error."""

    def __init__(self, path, *, compress=False, keep_state=True, header=None):
        from . import metadata  # construct loads only when a capture is written
        self._metadata = metadata
        self.keep_state = keep_state
        self._out = Writer(path, compress=compress)
        # header: the bytes of a section header and its metadata blocks to start with (a
        # live capture's next file, with the machine's state of the moment); the events
        # given then all go into that one section
        self._headed = header is not None
        if self._headed:
            self._out.write(header)

    @property
    def events_written(self):
        return self._out.events_written

    @property
    def size(self):
        return self._out.size

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._out.__exit__(*exc)

    def add(self, capture, rows=None):
        """Write the capture's events (rows: a bool mask or sorted indexes; None: all), and
        the events left out that change state, as state-only events. A chunk's context events
        (its first `capture.context` rows) are the previous chunk's: never written again; a
        chunk that continues a section adds no header blocks."""
        n = len(capture)
        if rows is None:
            keep = np.ones(n, dtype=bool)
        else:
            rows = np.asarray(rows)
            keep = rows.copy() if rows.dtype == bool else np.isin(np.arange(n), rows)
        own_from = getattr(capture, "context", 0)
        keep[:own_from] = False
        state = np.zeros(n, dtype=bool)
        if self.keep_state and not keep[own_from:].all():
            modifies, internal = _state_kinds()
            types = capture.headers.type
            state = ~keep & (modifies[types] | internal[types])
            state[:own_from] = False
            state_only = state & ~internal[types]
        bounds = [s.first_event for s in capture.sections] + [n]
        for k, section in enumerate(capture.sections):
            if not (getattr(section, "continued", False) or self._headed):
                self._out.write_section_header()
                for block in self._metadata.current_blocks(capture, k):
                    self._out.write(block)
            lo, hi = bounds[k], bounds[k + 1]
            sel = np.flatnonzero((keep | state)[lo:hi]) + lo
            flags = state_only[sel] if state.any() else None
            self._out.write_capture_events(capture, sel, state_only=flags,
                                           on_chunk=_reporter(capture, sel, hi))


def _reporter(capture, sel, end):
    """Where the writer's progress goes, as capture.report() wants it: the rows of `sel`
    written so far, as the capture events gone through (all up to `end`, the end of the
    section, once the last is written). None when nobody watches."""
    if capture.progress is None:
        return None

    def written(count):
        capture.report("writing", int(sel[count - 1]) + 1 if count < len(sel) else end)
    return written


@functools.cache
def _state_kinds():
    """Per event id: does it change sysdig's state; is it internal (never shown)?"""
    internal = np.zeros(65536, dtype=bool)
    categories = np.asarray(sysdig0293.per_type("category"), dtype=np.int64)
    internal[:len(categories)] = (categories & int(EC.INTERNAL)) != 0
    return sysdig0293.has_flag(EF.MODIFIES_STATE), internal
