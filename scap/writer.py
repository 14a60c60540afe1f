"""Write captures in the current format: SHB 1.2, V2 metadata blocks, EV_V2 event blocks.

What we write is what sysdig 0.29.3 writes (minus its interface-list length bug), so that every
reader from 0.29.3 to current libs reads it. Event records are assembled for all events at once
from numpy columns; the bytes of each event's length array and values are copied unchanged from
wherever they come from (another capture's buffer, or parameters encoded in Python).
Output goes to a temporary name beside the target and is renamed into place on success.
"""
import errno
import gzip
import os
import shutil
import tempfile
from typing import NamedTuple, Sequence

import numpy as np

from . import blocktypes as bt
from . import eventtable
from .errors import WriteError
from .events import V1_HEADER, V2_HEADER

SECTION_HEADER = (bt.SHB.to_bytes(4, "little") + (28).to_bytes(4, "little")
                  + (0x1A2B3C4D).to_bytes(4, "little") + (1).to_bytes(2, "little")
                  + (2).to_bytes(2, "little") + b"\xff" * 8 + (28).to_bytes(4, "little"))
_CHUNK_BYTES = 32 << 20
STATE_ONLY = np.uint32(1)      # SCAP_DF_STATE_ONLY: update state, do not show
_STATE_ONLY_MASK = ~np.uint32(4)  # SCAP_DF_LARGE is never stored: it picks the _LARGE block type


class Event(NamedTuple):
    """One event to write: its parameters as raw bytes, in table order."""
    ts: int
    tid: int
    cpu: int
    type: int
    params: Sequence[bytes] = ()
    flags: int = 0


# The path that means standard output (`-w -`): written as it comes, nothing to rename.
STDOUT = "-"


class Writer:
    """Writes one capture file. Use as a context manager; nothing is visible until close().
    The path "-" is standard output, written as the capture is made."""

    def __init__(self, path, compress=False):
        self.path = os.fspath(path)
        self.events_written = 0
        if self.path == STDOUT:
            import sys
            self._tmp = None
            sys.stdout.flush()
            raw = _WholeWrites(sys.stdout.fileno())
            self._file = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") \
                if compress else raw
            self._raw = raw
            return
        check_output(self.path)
        self._tmp = Temporary(self.path)
        raw = os.fdopen(self._tmp.fd, "wb")
        # mtime 0 and no file name: the same bytes for the same capture, as sysdig -z writes
        self._file = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") if compress \
            else raw
        self._raw = raw
        self.events_written = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def write(self, data):
        try:
            self._file.write(data)
        except OSError as e:
            raise self._failed(e) from None

    def _failed(self, error):
        """What writing failed with (a full disk, a device error), as one line naming the
        file; what was written so far is dropped. (Standard output's errors, a closed pipe
        say, stay as they are.)"""
        if self._tmp is None or isinstance(error, WriteError):
            return error
        self.abort()
        return WriteError(f"cannot write: {error.strerror or error}", path=self.path)

    @property
    def size(self):
        """Bytes in the file so far (compressed ones, with compress)."""
        return self._raw.tell()

    def write_section_header(self):
        self.write(SECTION_HEADER)

    def write_block(self, block_type, body):
        """A block from the raw bytes of its body."""
        self.write(frame_block(block_type, body))

    def write_metadata(self, block_type, value):
        """A metadata block from a value of its construct schema (see scap.schema)."""
        from . import schema
        self.write(schema.build_block(block_type, value))

    def write_events(self, ts, tid, cpu, etype, payload_buf, payload_offsets, payload_lengths,
                     nparams, dump_flags=None, on_chunk=None):
        """Write events from columns; the payload of event i (length array, then values) is
        payload_buf[payload_offsets[i]:payload_offsets[i] + payload_lengths[i]].
        on_chunk, if given, is called with the number of events written so far after each
        chunk of them (a progress bar's hook)."""
        n = len(ts)
        for lo in range(0, n, 1 << 20):
            hi = min(n, lo + (1 << 20))
            lens = np.asarray(payload_lengths[lo:hi], dtype=np.int64)
            # keep each assembled chunk to a bounded size
            cum = np.cumsum(lens)
            start = 0
            while start < hi - lo:
                stop = int(np.searchsorted(cum, (cum[start - 1] if start else 0) + _CHUNK_BYTES,
                                           side="right"))
                stop = max(stop, start + 1)
                sl = slice(lo + start, lo + stop)
                self.write(assemble_event_blocks(
                    ts[sl], tid[sl], cpu[sl], etype[sl], payload_buf, payload_offsets[sl],
                    payload_lengths[sl], nparams[sl],
                    None if dump_flags is None else dump_flags[sl]))
                start = stop
                if on_chunk is not None:
                    on_chunk(lo + stop)
        self.events_written += n

    def write_event_list(self, events):
        """Write events given in Python: each an Event (or a tuple in its field order) whose
        params are the raw bytes of each parameter. For small, hand-described captures."""
        events = [e if isinstance(e, Event) else Event(*e) for e in events]
        libs = eventtable.libs()
        payload, offsets = bytearray(), []
        for e in events:
            large = e.type < len(libs.large_payload) and libs.large_payload[e.type]
            width = 4 if large else 2
            offsets.append(len(payload))
            for p in e.params:
                payload += len(p).to_bytes(width, "little")
            for p in e.params:
                payload += p
        offsets.append(len(payload))
        offsets = np.array(offsets, dtype=np.int64)
        col = lambda name, dtype: np.array([getattr(e, name) for e in events], dtype=dtype)
        self.write_events(col("ts", np.uint64), col("tid", np.int64), col("cpu", np.uint16),
                          col("type", np.int64), np.frombuffer(bytes(payload), dtype=np.uint8),
                          offsets[:-1], np.diff(offsets),
                          np.array([len(e.params) for e in events], dtype=np.int64),
                          col("flags", np.uint32))

    def write_capture_events(self, capture, rows=None, state_only=None, on_chunk=None):
        """Copy events of an opened Capture (all, or the given row indexes / bool mask);
        state_only (aligned with the rows written) marks events to flag as state-only:
        readers update their state with them but do not show them (sysdig's -F).
        on_chunk: as for write_events."""
        h = capture.headers if rows is None else capture.headers.take(rows)
        payload_start = h.lens_start
        header = np.where(h.lens_start - h.record == V2_HEADER, V2_HEADER, V1_HEADER)
        length = h.length.astype(np.int64)
        quirk = (header == V1_HEADER) & np.isin(h.type, (280, 286))
        payload_len = length - header - np.where(quirk, 3, 0)
        flags = h.dump_flags
        if state_only is not None:
            flags = flags | np.where(state_only, STATE_ONLY, 0).astype(np.uint32)
        self.write_events(h.ts, h.tid, h.cpu, h.type, capture.buffer, payload_start,
                          payload_len, h.nparams, flags, on_chunk)

    def close(self):
        try:
            if self._file is not self._raw:
                self._file.close()
            self._raw.flush()
            if self._tmp is None:   # standard output: nothing to rename
                return
            os.fsync(self._raw.fileno())
            self._tmp.publish()
        except OSError as e:
            raise self._failed(e) from None
        self._raw.close()

    def abort(self):
        if self._tmp is None or self._raw.closed:   # standard output: what went out stays
            return
        try:
            if self._file is not self._raw:
                try:
                    self._file.close()
                except OSError:
                    pass
        finally:
            self._tmp.discard()
            try:
                self._raw.close()
            except OSError:   # a full disk: what was buffered could not go; nothing to keep
                pass


class Temporary:
    """Where a file is written before it is complete: a file with no name in the directory
    of `path` (O_TMPFILE), given the name `path` by publish() once complete. Until then
    nothing is visible; a process killed, even with SIGKILL, leaves nothing behind, as the
    kernel frees a file no name refers to. Where the file system cannot make one, a named
    temporary file beside `path`, removed by discard() (but not by SIGKILL).

    Errors name `path`: the temporary is ours, not the user's."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.name = None
        folder = os.path.dirname(os.path.abspath(self.path))
        _sweep(folder)
        umask = os.umask(0)
        os.umask(umask)
        try:
            try:
                self.fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC,
                                  0o666 & ~umask)
            except (IsADirectoryError, NotADirectoryError, AttributeError) as e:
                raise _NoTmpfile from e
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.EISDIR):
                    raise
                raise _NoTmpfile from e
        except _NoTmpfile:
            try:
                self.fd, self.name = tempfile.mkstemp(prefix=f".scaptool-{os.getpid()}-",
                                                      suffix=".tmp", dir=folder)
            except OSError as e:
                raise WriteError(f"cannot write here: {e.strerror}", path=self.path) from None
            os.fchmod(self.fd, 0o666 & ~umask)
        except OSError as e:
            raise WriteError(f"cannot write here: {e.strerror}", path=self.path) from None

    def publish(self):
        """Give the complete file its name (replacing what had it, at once)."""
        try:
            if self.name is None:
                # a name for it first (link cannot replace), then the name it is for
                self.name = _linked(self.fd, os.path.dirname(os.path.abspath(self.path)))
            os.replace(self.name, self.path)
        except OSError as e:
            self.discard()
            raise WriteError(f"cannot write here: {e.strerror}", path=self.path) from None
        self.name = None

    def discard(self):
        """Drop what was written (the previous file at `path`, if any, stays as it was)."""
        if self.name is not None:
            try:
                os.unlink(self.name)
            except FileNotFoundError:
                pass
            self.name = None


class _NoTmpfile(Exception):
    pass


def _linked(fd, folder):
    """A new name in `folder` for the unnamed file open at `fd`. (A dir_fd makes os.link call
    linkat with AT_SYMLINK_FOLLOW, which links the file /proc/self/fd/N stands for; without
    one it calls link(2), which refuses a /proc link: EXDEV.)"""
    root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        while True:
            name = os.path.join(folder, f".scaptool-{os.getpid()}-{os.urandom(6).hex()}.tmp")
            try:
                os.link(f"/proc/self/fd/{fd}", name, src_dir_fd=root, follow_symlinks=True)
                return name
            except FileExistsError:
                continue
    finally:
        os.close(root)


def _sweep(folder):
    """Remove the named temporaries in `folder` that a scaptool process killed before it
    could (SIGKILL) left there: .scaptool-PID-*.tmp whose PID is gone."""
    try:
        names = [n for n in os.listdir(folder)
                 if n.startswith(".scaptool-") and n.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        pid = name.split("-")[1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)   # a dataset's folder (query.export)
            else:
                os.unlink(path)
        except OSError:
            pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temporary_beside(path):
    """(fd, name) of a new named temporary file in the directory of `path`, for a writer
    that needs a name (the live helper opens its output itself), with the permissions a new
    file gets; errors name `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        _sweep(folder)
        fd, tmp = tempfile.mkstemp(prefix=f".scaptool-{os.getpid()}-", suffix=".tmp",
                                   dir=folder)
    except OSError as e:
        # the temporary name is ours, not the user's: the message names their file
        raise WriteError(f"cannot write here: {e.strerror}", path=path) from None
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, tmp


class _WholeWrites:
    """Standard output for a capture: every write goes out whole, straight to the fd.

    (Through sys.stdout.buffer, a signal that came while a write waited on a full pipe lost
    the rest of that write: half a megabyte gone from the middle of a live `-w -`, with
    no error.)"""

    def __init__(self, fd):
        self._fd = fd

    def write(self, data):
        view = memoryview(data).cast("B")
        while len(view):
            try:
                done = os.write(self._fd, view)
            except InterruptedError:
                continue
            view = view[done:]
        return len(data)

    def flush(self):
        pass

    def fileno(self):
        return self._fd

    def close(self):
        pass


def check_output(path, inputs=()):
    """Refuse an output before anything is read or written: one whose directory does not
    exist or cannot be written, a directory, or one of the captures being read (writing it
    would replace the input, which the events still come from)."""
    path = os.fspath(path)
    if path == STDOUT:
        return
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        raise WriteError(f"no such directory: {directory}", path=path)
    if not os.access(directory or ".", os.W_OK | os.X_OK):
        raise WriteError(f"permission denied: cannot create files in {directory or '.'}",
                         path=path)
    if os.path.isdir(path):
        raise WriteError("is a directory", path=path)
    for source in inputs:
        if _same_file(path, os.fspath(source)):
            raise WriteError(f"is the capture being read ({source}): write to another file",
                             path=path)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:   # one of them does not exist (yet): compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def frame_block(block_type, body):
    """type, total length, body, zero padding to 4, trailer."""
    total = (8 + len(body) + 4 + 3) // 4 * 4
    pad = total - 12 - len(body)
    head = block_type.to_bytes(4, "little") + total.to_bytes(4, "little")
    return head + bytes(body) + b"\0" * pad + total.to_bytes(4, "little")


def assemble_event_blocks(ts, tid, cpu, etype, payload_buf, payload_offsets, payload_lengths,
                          nparams, dump_flags=None):
    """Bytes of one event block per event (numpy in, bytes out, no per-event Python)."""
    n = len(ts)
    etype = np.asarray(etype, dtype=np.int64)
    lens = np.asarray(payload_lengths, dtype=np.int64)
    src = np.asarray(payload_offsets, dtype=np.int64)
    flags = np.zeros(n, np.uint32) if dump_flags is None else \
        (np.asarray(dump_flags, dtype=np.uint32) & _STATE_ONLY_MASK)
    libs = eventtable.libs()
    large = np.zeros(n, dtype=bool)
    known = etype < len(libs.large_payload)
    large[known] = libs.large_payload[etype[known]]
    has_flags = flags != 0
    btype = np.where(large, np.where(has_flags, bt.EVF_V2_LARGE, bt.EV_V2_LARGE),
                     np.where(has_flags, bt.EVF_V2, bt.EV_V2)).astype(np.uint32)
    record_len = V2_HEADER + lens
    pre = 10 + 4 * has_flags.astype(np.int64)         # block header + cpuid [+ flags]
    # padding is computed from 2 + record length, as libscap's writer does
    total = 8 + ((2 + record_len + 3) // 4 * 4) + 4 + 4 * has_flags.astype(np.int64)
    dst = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(total, out=dst[1:])
    out = np.zeros(int(dst[-1]), dtype=np.uint8)
    starts = dst[:-1]
    w32 = out.view("<u4")
    w16 = out.view("<u2")
    w32[starts // 4] = btype
    w32[starts // 4 + 1] = total
    w32[(starts + total) // 4 - 1] = total
    w16[(starts + 8) // 2] = np.asarray(cpu, dtype=np.uint16)
    rec = starts + pre
    if has_flags.any():
        f = flags[has_flags]
        at = (starts[has_flags] + 10) // 2
        w16[at] = (f & 0xFFFF).astype(np.uint16)
        w16[at + 1] = (f >> 16).astype(np.uint16)
    _put64(w16, rec, np.asarray(ts, dtype=np.uint64))
    _put64(w16, rec + 8, np.asarray(tid).astype(np.int64).view(np.uint64))
    w16[(rec + 16) // 2] = (record_len & 0xFFFF).astype(np.uint16)
    w16[(rec + 18) // 2] = (record_len >> 16).astype(np.uint16)
    w16[(rec + 20) // 2] = etype.astype(np.uint16)
    np_ = np.asarray(nparams, dtype=np.int64)
    w16[(rec + 22) // 2] = (np_ & 0xFFFF).astype(np.uint16)
    w16[(rec + 24) // 2] = (np_ >> 16).astype(np.uint16)
    _copy_ranges(out, rec + V2_HEADER, payload_buf, src, lens)
    return out.tobytes()


def _put64(w16, byte_offsets, values):
    at = byte_offsets // 2
    for k in range(4):
        w16[at + k] = ((values >> np.uint64(16 * k)) & np.uint64(0xFFFF)).astype(np.uint16)


def _copy_ranges(out, dst, src_buf, src, lens):
    """out[dst[i]:dst[i]+lens[i]] = src_buf[src[i]:src[i]+lens[i]] for every i, vectorized."""
    total = int(lens.sum())
    if total == 0:
        return
    keep = lens > 0
    dst, src, lens = dst[keep], src[keep], lens[keep]
    excl = np.cumsum(lens) - lens
    step = np.arange(total, dtype=np.int64) - np.repeat(excl, lens)
    out[np.repeat(dst, lens) + step] = src_buf[np.repeat(src, lens) + step]
