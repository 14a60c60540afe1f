"""Bytes of a capture: all at once (load: a plain file is memory-mapped, a gzip one inflated
into memory), or as they come (open_stream: read piece by piece into the caller's buffer).

libscap opens every capture through zlib, so a file is either a raw block stream or a gzip
stream (possibly several concatenated members) of one; we accept both the same way. Both ways
inflate with GzipInflater, so that a damaged gzip stream is cut at the same byte either way.
"""
import mmap
import os
import select
import stat
import warnings
import zlib

import numpy as np

from .errors import NotAScapError, ScapError, ScapWarning, TruncatedError

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 16 << 20
_GZIP_INPUT = 1 << 20   # compressed bytes read at a time by a stream


def load(path, on_inflate=None):
    """Return (buffer, compressed, damage): buffer is a read-only uint8 numpy array of the
    block stream; damage the TruncatedError of a gzip stream that ends early or is damaged
    (everything inflated before it is kept), else None.

    on_inflate, if given, is called as on_inflate(bytes read, file size) while a gzip file is
    inflated, after each chunk of it (a progress bar's hook; plain files are mapped at once)."""
    with _opened(path) as f:
        head = f.read(2)
        if not head:
            raise NotAScapError("empty file", path=path, offset=0)
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            # a pipe or a device (/dev/stdin): nothing to map or seek back in; read it whole
            import io
            f = io.BufferedReader(io.BytesIO(head + f.read()))
            head = f.peek(2)[:2]
            if head != GZIP_MAGIC:
                return np.frombuffer(f.read(), dtype=np.uint8), False, None
            on_inflate = None
        if head == GZIP_MAGIC:
            f.seek(0)
            data, damage = _inflate(f, path, on_inflate)
            inflated = np.frombuffer(data, dtype=np.uint8)
            inflated.flags.writeable = False
            return inflated, True, damage
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise NotAScapError("empty file", path=path, offset=0)
        mapped = _map(f.fileno(), size)
        return np.frombuffer(mapped, dtype=np.uint8), False, None


def _opened(path, buffering=-1):
    """open(path, 'rb'), its failures as ScapErrors naming the file."""
    try:
        return open(path, "rb", buffering=buffering)
    except FileNotFoundError:
        raise ScapError("no such file", path=path) from None
    except IsADirectoryError:
        raise ScapError("is a directory, not a capture file", path=path) from None
    except PermissionError:
        raise ScapError("permission denied", path=path) from None


def _map(fd, size):
    """Read-only mapping of the whole file. (Not populated up front with MAP_POPULATE: that
    one kernel pass, on one core, took longer than the faults the scan's two threads take.)"""
    return mmap.mmap(fd, size, access=mmap.ACCESS_READ)


def _inflate(f, path, on_inflate=None):
    """Inflate every gzip member: (bytes, None), or for a damaged or cut stream what came
    before the damage and the TruncatedError saying where (also given as a warning).

    The blocks are followed as they are inflated (FramingWatch): where the block stream
    breaks, inflating stops, so that a few MB of gzip that expand to gigabytes of garbage
    after a sound start cost one piece past the damage, not the gigabytes."""
    size = os.fstat(f.fileno()).st_size if on_inflate else 0
    data = bytearray()
    inflater = GzipInflater(path)
    watch = FramingWatch(path)
    damage = None
    while not inflater.finished:
        inflater.feed(f.read(_CHUNK))
        while out := inflater.inflate(_CHUNK):
            data += out
            del out
            if watch.broken(data):
                break
        if on_inflate:
            on_inflate(f.tell(), size)
        if watch.stop:
            damage = watch.damage
            break
    damage = damage or inflater.damage
    if damage is not None:
        warnings.warn(ScapWarning(f"{damage}; keeping the {watch.kept(data)} bytes "
                                  "inflated before it"), stacklevel=3)
        del data[watch.kept(data):]
    return data, damage


class FramingWatch:
    """Follows the block framing of a block stream as it grows (the scan's own checks, on
    what has come so far), to say when inflating it any further is pointless: the framing is
    broken (the scan will name the damage in what is kept), or a block claims more than a
    reader holds (HOLD_LIMIT; `damage` says so, and only what comes before it is kept)."""

    def __init__(self, path=None):
        self.path = path
        self.pos = 0            # the stream up to here is sound
        self.in_section = False   # between an SHB and the first event block
        self.stop = False
        self.damage = None

    def kept(self, data):
        return self.pos if self.damage is not None else len(data)

    def broken(self, data):
        """Follow the blocks added to `data` (a bytearray); True once inflating may stop.
        (No view of `data` outlives the call: the bytearray must stay free to grow.)"""
        buf = np.frombuffer(data, dtype=np.uint8)
        try:
            self._follow(buf, buf[:len(buf) // 4 * 4].view("<u4"))
        finally:
            del buf
        return self.stop

    def _follow(self, buf, words):
        from . import scan
        from .stream_window import block_need
        while self.pos < len(buf) and not self.stop:
            try:
                if not self.in_section and scan.at_section_header(words, self.pos):
                    _, self.pos = scan.read_section_block(buf, words, self.pos, self.path)
                    self.in_section = True
                elif self.in_section:
                    block = scan.next_metadata_block(buf, words, self.pos, self.path)
                    if block is None:
                        self.in_section = False
                    else:
                        self.pos += block[1]
                else:
                    run = scan.event_run(buf, words, self.pos, self.path)
                    self.pos = run.end
                    cut = isinstance(run.damage, TruncatedError)
                    # damage, or an event run that ends neither at the data's end nor at a
                    # new section: the scan of what is kept names it
                    self.stop = not cut and (run.damage is not None or (
                        self.pos < len(buf) and not scan.at_section_header(words, self.pos)))
                    del run
                    if cut:
                        return self._wait_for(block_need(buf, self.pos))
            except TruncatedError:   # the block at pos is not all there yet
                return self._wait_for(block_need(buf, self.pos))
            except ScapError:
                self.stop = True   # the scan of what is kept names it
                return

    def _wait_for(self, need):
        """The block at pos is not all there yet: more data, unless it claims too much."""
        from .stream_window import HOLD_LIMIT
        if need > HOLD_LIMIT:
            self.damage = ScapError(f"a block of {need} bytes: more than a reader holds "
                                    f"({HOLD_LIMIT} bytes)", path=self.path, offset=self.pos)
            self.stop = True


class GzipInflater:
    """Inflates a gzip stream of concatenated members, fed in pieces of any size.

    feed(data) gives it the next compressed piece (b"" at the end of the input); inflate(limit)
    returns up to `limit` bytes inflated from what it was fed (b"": feed more). Trailing bytes
    after the last member that start no new member are ignored, as zlib does. Where the stream
    is damaged or ends inside a member, `damage` is the TruncatedError saying so, at the offset
    of the first byte that could not be inflated, and `finished` is set.

    zlib discards the output of a call that fails, so a failed call is replayed in small steps
    from a copy of the state before it: every byte zlib gives before the damage is kept, and
    the offset does not depend on how the input came in pieces (a file, a pipe)."""

    def __init__(self, path=None):
        self.path = path
        self.produced = 0       # bytes inflated so far
        self.damage = None
        self.finished = False   # nothing more will come out
        self._zlib = None       # the current member's inflater; None between members
        self._input = b""       # compressed bytes not given to zlib yet
        self._held = False      # zlib filled the last output: it may hold more back
        self._ended = False     # feed(b"") was called: no more input
        self.hungry = True      # inflate() gave b"" for want of input: feed() it more

    def feed(self, data):
        self.hungry = False
        if not data:
            self._ended = True
        else:
            self._input = self._input + data if self._input else data

    def inflate(self, limit):
        while not self.finished:
            if self._zlib is None:  # at the start of a member, or after the last one
                if len(self._input) < 2 and not self._ended:
                    self.hungry = True
                    return b""
                if self._input[:2] != GZIP_MAGIC:
                    self._finish()   # trailing bytes that start no member: ignored
                    return b""
                self._zlib = zlib.decompressobj(wbits=47)  # 32+15: a gzip header
                self._held = False
            if not self._input and not self._held:
                if self._ended:
                    self._finish()
                self.hungry = not self.finished
                return b""
            out = self._step(limit)
            if out:
                return out
        return b""

    def _step(self, limit):
        before = self._zlib.copy()
        try:
            out = self._zlib.decompress(self._input, limit)
        except zlib.error as e:
            return self._fail(before, e)
        self.produced += len(out)
        self._held = len(out) == limit
        if self._zlib.eof:
            self._input, self._zlib = self._zlib.unused_data, None
        else:
            self._input = self._zlib.unconsumed_tail
        return out

    def _fail(self, state, error):
        """The call from `state` on self._input failed: replay it feeding the input in steps
        of 64 KiB, then the failing step byte by byte, keeping what zlib gives before the
        error. Output is not limited in the replay: what zlib gives for a byte of input does
        not then depend on how the input came in pieces (a CRC error at a member's end loses
        none of the member's last bytes however it was read)."""
        kept, data = [], self._input
        for step in (1 << 16, 1):
            failed = False
            while data:
                previous = state.copy()
                try:
                    piece = state.decompress(data[:step])
                except zlib.error as e:
                    state, error, failed = previous, e, True
                    break
                kept.append(piece)
                data = data[step:]
                if state.eof:   # not expected: the whole call failed
                    break
            if not failed:
                break
        out = b"".join(kept)
        self.produced += len(out)
        self.damage = TruncatedError(f"gzip stream is damaged ({error})", path=self.path,
                                     offset=self.produced)
        self.finished = True
        self._input, self._zlib = b"", None
        return out

    def _finish(self):
        if self._zlib is not None and not self._zlib.eof and self.produced:
            self.damage = TruncatedError("gzip stream ends early", path=self.path,
                                         offset=self.produced)
        self.finished = True
        self._input, self._zlib = b"", None


# -- a capture as it comes -------------------------------------------------------------------

def open_stream(source):
    """Bytes of a capture read as they come: a StreamSource over a path, an open binary file
    object (a file, a pipe's end, a socket's makefile) or a file descriptor; gzip streams
    (recognised by their first two bytes) are inflated on the way."""
    if isinstance(source, int):
        raw = RawSource(open(source, "rb", buffering=0, closefd=False), owned=True)
    elif isinstance(source, (str, os.PathLike)):
        raw = RawSource(_opened(source, buffering=0), owned=True, path=os.fspath(source))
    else:
        raw = RawSource(source, owned=False)
    head = b""
    while len(head) < 2 and (piece := raw.read(2 - len(head))):  # a pipe may give one byte
        head += piece
    if head == GZIP_MAGIC:
        return GzipSource(raw, head)
    raw.unread(head)
    return raw


class RawSource:
    """A block stream read as it is. readinto(view) reads what is there (waiting for some, at
    most one system call when the object is unbuffered); ready(timeout) says whether a read
    would find data within `timeout` seconds (always True where it cannot tell, or for a
    regular file, which never makes a reader wait)."""

    compressed = False
    damage = None

    def __init__(self, file, owned, path=None):
        self.file = file
        self.owned = owned
        self.path = path if path is not None else _name_of(file)
        self._head = b""   # bytes read to tell gzip from plain, given back first
        self._fd = None
        self.regular = True
        try:
            fd = file.fileno()
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self._fd, self.regular = fd, False
        except (AttributeError, OSError, ValueError):
            pass  # an in-memory file (io.BytesIO), say: it never makes us wait
        self._readinto = getattr(file, "readinto1", None) or getattr(file, "readinto", None)

    def unread(self, head):
        self._head = head

    def read(self, n):
        """Up to n bytes (at least one unless the stream has ended)."""
        buf = bytearray(n)
        got = self.readinto(memoryview(buf))
        return bytes(buf[:got])

    def readinto(self, view):
        if self._head:
            n = min(len(self._head), len(view))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if self._readinto is None:
            data = self.file.read(len(view))
            view[:len(data)] = data
            return len(data)
        while True:
            try:
                n = self._readinto(view)
            except InterruptedError:
                continue
            # a non-blocking file object with nothing yet: wait for it
            if n is None:
                self.ready(None)
                continue
            return n

    def left(self):
        """Bytes not read yet, where the file can tell without reading them (a regular file
        on disk); else None."""
        if not self.regular:
            return None
        try:
            return (os.fstat(self.file.fileno()).st_size - self.file.tell()
                    + len(self._head))
        except (AttributeError, OSError, ValueError):
            return None

    def ready(self, timeout):
        if self._head or self._fd is None:
            return True
        try:
            return bool(select.select([self._fd], [], [], timeout)[0])
        except (OSError, ValueError):
            return True

    def close(self):
        if self.owned:
            self.file.close()


class GzipSource:
    """A gzip stream of a block stream, inflated as it is read (see RawSource for the
    interface). damage: the gzip stream's TruncatedError once readinto has returned 0."""

    compressed = True

    def __init__(self, raw, head):
        self.raw = raw
        self.path = raw.path
        self.regular = raw.regular
        self._inflater = GzipInflater(raw.path)
        self._inflater.feed(head)
        self._out = b""   # inflated by ready() and not read yet

    @property
    def damage(self):
        return self._inflater.damage

    def readinto(self, view):
        inflater = self._inflater
        while not self._out:
            if inflater.finished:
                return 0
            if inflater.hungry:
                inflater.feed(self.raw.read(_GZIP_INPUT))
            self._out = inflater.inflate(len(view))
        n = min(len(view), len(self._out))
        view[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def ready(self, timeout):
        if self._out or self._inflater.finished:
            return True
        if not self._inflater.hungry:
            self._out = self._inflater.inflate(_GZIP_INPUT)
            if self._out or self._inflater.finished:
                return True
        return self.raw.ready(timeout)

    def left(self):
        return None   # known only by inflating them

    def close(self):
        self.raw.close()


def _name_of(file):
    name = getattr(file, "name", None)
    return name if isinstance(name, str) else None
