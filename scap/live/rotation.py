"""A live capture written to a series of files, as sysdig's -C, -G and -W write them.

    -C SIZE_MB   a new file once the current one holds SIZE_MB million bytes: OUT0, OUT1, ...
    -G SECONDS   a new file every SECONDS: OUT through strftime(3) if it holds a % format,
                 else OUT0, OUT1, ...
    -W COUNT     with -C, at most COUNT files, reused from the first (a ring); with -G, the
                 capture ends once COUNT files are written

Every file stands on its own: it starts with a section header and the machine's state of the
moment it was opened (threads and open files, read from /proc as when a capture starts), so
the names of processes and files that existed before it resolve in it. Files are switched
between chunks of the stream, so a file may pass SIZE_MB by up to one chunk (8 MiB at most).
The first file is opened when the writer is made, and -G's switch also happens on the clock
(tick(), called by the reader while no events come), so -G -W ends on time on a quiet
machine too. A period in which nothing (or nothing the filter keeps) happened gives a file with
no events, which sysdig 0.29.3 refuses to read ("no events in file"), as it refuses its own.
"""
import time

from scaptool.scap.rewrite import CaptureWriter


class RotatingWriter:
    """CaptureWriter's add() over a series of files (see the module's docstring)."""

    def __init__(self, pattern, *, size_mb=None, seconds=None, count=None, compress=False,
                 keep_state=True, skip_pids=()):
        self.pattern = pattern
        self.size = None if size_mb is None else int(size_mb * 1_000_000)
        self.seconds = seconds
        self.count = count
        self.compress = compress
        self.keep_state = keep_state
        self.skip_pids = tuple(skip_pids)
        self.files = []          # the names written, in order
        self.finished = False    # -G with -W: the last file is written, the capture ends
        self._current = None
        self._opened_at = None
        self._number = 0
        self._next_file()

    def tick(self):
        """The clock moved on and no events came: switch files if -G says it is time."""
        if not self.finished and self.seconds is not None and self._due():
            self._next_file()

    def add(self, capture, rows=None):
        if self.finished:
            return
        if self._current is None or self._due():
            if not self._next_file():
                return
        self._current.add(capture, rows)

    def _due(self):
        if self.size is not None and self._current.size >= self.size:
            return True
        return self.seconds is not None and time.monotonic() - self._opened_at >= self.seconds

    def _name(self):
        if self.seconds is not None and "%" in self.pattern:
            return time.strftime(self.pattern)
        number = self._number % self.count if (self.count and self.size is not None) \
            else self._number
        return f"{self.pattern}{number}"

    def _next_file(self):
        """Close the current file and open the next; False when -G -W's files are all done."""
        if self._current is not None:
            self._current.__exit__(None, None, None)
            self._current = None
            if self.seconds is not None and self.count and self._number >= self.count:
                self.finished = True
                return False
        from . import host
        name = self._name()
        self._current = CaptureWriter(name, compress=self.compress,
                                      keep_state=self.keep_state,
                                      header=host.header_bytes(skip_pids=self.skip_pids))
        self._opened_at = time.monotonic()
        self._number += 1
        self.files.append(name)
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._current is not None:
            self._current.__exit__(*exc)
            self._current = None
        return False
