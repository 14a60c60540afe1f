"""This machine's events as a stream: the helper writes into a pipe, the engine reads it.

    with LiveStream(snaplen=80) as events:      # root; the helper attached on entry
        for chunk in StreamReader(events):      # (query.chunks: event_data_chunks(events))
            ...
        # ends when stop() was called (Ctrl+C), the duration passed or the count was reached

The stream is an unbuffered binary file object: the section header and the metadata blocks
(made in Python before the helper starts, kept in memory: a machine's process list is bigger
than a pipe holds), then the helper's event blocks as it writes them, a poll cycle at a time.
It ends when the helper exits, having drained its ring buffer into the pipe. A reader too slow
for the machine makes the helper wait on the pipe and the kernel's ring buffer fill: what is
lost then is counted (stats["drops"]), never silently.

With `spool`, everything read is also copied into a temporary file, so that a chisel that
reads its capture again at the end (spy_logs' export, explain) finds it there: `path` names
that file once the stream has ended.
"""
import fcntl
import io
import os
import select
import signal
import tempfile
import time

from . import LiveCapture, LiveCaptureError

__all__ = ["LiveStream", "LiveCaptureError"]

# What errors name the stream by, where a file would be named by its path.
NAME = "<live capture>"

# The pipe's size: the kernel's 64 KiB default makes the helper and the reader take turns
# every 64 KiB (a context switch each way, hundreds a second on a busy machine); the helper
# writes a poll cycle's blocks at once, up to this much.
PIPE_BYTES = 8 << 20

# How long the reader waits for events before it calls `on_idle` (and then again each time).
IDLE_SECONDS = 0.2


class LiveStream(io.RawIOBase):
    """The running capture as a readable stream (see the module's docstring). Options are
    LiveCapture's (snaplen, duration, max_events, pid, command, switch, ring_kib, syscalls,
    ...); `spool`: keep a copy of the stream in a temporary file (`path` once it ended)."""

    name = NAME

    def __init__(self, spool=False, **options):
        super().__init__()
        self._options = options
        self._capture = None
        self._read_fd = None
        self._head = b""
        self.header_bytes = b""
        self._spool = tempfile.NamedTemporaryFile(prefix="scaptool-live-", suffix=".scap",
                                                  delete=False) if spool else None
        self.spooled = spool
        self.ended = False
        self.stats = None
        self._stopping = False
        # called while no events come, every IDLE_SECONDS: what must happen on the clock
        # rather than on the next event (-G's file switch)
        self.on_idle = None
        # event type ids to hand out at once; the others may gather for a while (None: all
        # at once): what scap.stream.StreamReader reads as its source's prompt_types
        self.prompt_types = None

    # -- the capture -------------------------------------------------------------------------
    def start(self):
        read_fd, write_fd = os.pipe()
        _enlarge(read_fd)
        try:
            self._capture = LiveCapture(write_fd, **self._options).start()
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            self._drop_spool()
            raise
        # the helper holds the pipe's write end now; ours goes, so that the stream ends
        # when the helper does
        os.close(write_fd)
        self._read_fd = read_fd
        self._head = self.header_bytes = self._capture.header_bytes
        return self

    def stop(self):
        """Ask the helper to stop: it drains what is left into the pipe and exits, and the
        stream then ends (reading goes on until it does)."""
        if self._capture is not None and not self._stopping:
            self._stopping = True
            self._capture.stop()

    def finish(self):
        """Stop, wait for the helper and return its statistics (events, drops, ...). The
        stream's unread events are given up (a reader that stopped early, -n)."""
        if self._capture is None:
            return self.stats
        self.stop()
        if self._read_fd is not None:
            # the helper may be waiting for room in the pipe: read on, into nothing
            os.set_blocking(self._read_fd, False)
            while self._capture.running():
                try:
                    if not os.read(self._read_fd, 1 << 16):
                        break
                except BlockingIOError:
                    time.sleep(0.01)
        try:
            self.stats = self._capture.wait()
        finally:
            self._capture = None
        return self.stats

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.finish()
        finally:
            self.close()
        return False

    # -- the stream --------------------------------------------------------------------------
    def readable(self):
        return True

    def fileno(self):
        if self._read_fd is None:
            raise ValueError("the live stream is not started")
        return self._read_fd

    def readinto(self, view):
        if self._head:
            n = min(len(self._head), len(view))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
        elif self._read_fd is None:
            return 0
        else:
            if self.on_idle is not None:
                while not select.select([self._read_fd], [], [], IDLE_SECONDS)[0]:
                    self.on_idle()
            n = os.readv(self._read_fd, [view])   # (retried by Python when interrupted)
            self.ended = n == 0
        if self._spool is not None and n:
            self._spool.write(view[:n])
        return n

    @property
    def path(self):
        """The spooled copy of everything read (once the stream has ended), else None."""
        if self._spool is None or not self.ended:
            return None
        self._spool.flush()
        return self._spool.name

    def capture_read(self):
        """What was read, as an opened scap.Capture: the spooled copy, or without one the
        header blocks alone (for a reader that got no events: none came)."""
        from scaptool import scap
        if self.path is not None:
            capture = scap.open(self.path)
        else:
            with tempfile.NamedTemporaryFile(prefix="scaptool-live-", suffix=".scap") as f:
                f.write(self.header_bytes)
                f.flush()
                capture = scap.open(f.name)
                capture.buffer   # (read now, while the file is there)
        capture.path = NAME
        return capture

    def close(self):
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None
        self._drop_spool()
        super().close()

    def _drop_spool(self):
        if self._spool is not None:
            self._spool.close()
            try:
                os.unlink(self._spool.name)
            except FileNotFoundError:
                pass
            self._spool = None


def _enlarge(pipe_fd):
    """PIPE_BYTES for the pipe, or as much as this machine allows (root may go past
    /proc/sys/fs/pipe-max-size; a smaller pipe works, only with more turns)."""
    for size in (PIPE_BYTES, 1 << 20):
        try:
            fcntl.fcntl(pipe_fd, fcntl.F_SETPIPE_SZ, size)
            return
        except OSError:
            continue


def stop_on_signals(stream):
    """Make Ctrl+C (SIGINT) and SIGTERM stop the capture cleanly instead of raising in the
    middle of the reader: the helper drains, the stream ends, and everything seen so far is
    printed or written. Another Ctrl+C, a second or more later, interrupts at once (one
    within the second is taken for the same keypress delivered twice, and ignored)."""
    first = []

    def stopping(signum, frame):
        if not first:
            first.append(time.monotonic())
            stream.stop()
        elif signum == signal.SIGINT and time.monotonic() - first[0] >= 1:
            raise KeyboardInterrupt
    signal.signal(signal.SIGINT, stopping)
    signal.signal(signal.SIGTERM, stopping)
