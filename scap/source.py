"""Bytes of a capture: a plain file is memory-mapped, a gzip one is inflated into memory.

libscap opens every capture through zlib, so a file is either a raw block stream or a gzip
stream (possibly several concatenated members) of one; we accept both the same way.
"""
import mmap
import os
import warnings
import zlib

import numpy as np

from .errors import NotAScapError, ScapError, ScapWarning, TruncatedError

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 16 << 20


def load(path, on_inflate=None):
    """Return (buffer, compressed, damage): buffer is a read-only uint8 numpy array of the
    block stream; damage the TruncatedError of a gzip stream that ends early or is damaged
    (everything inflated before it is kept), else None.

    on_inflate, if given, is called as on_inflate(bytes read, file size) while a gzip file is
    inflated, after each chunk of it (a progress bar's hook; plain files are mapped at once)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            if not head:
                raise NotAScapError("empty file", path=path, offset=0)
            if head == GZIP_MAGIC:
                f.seek(0)
                data, damage = _inflate(f, path, on_inflate)
                return np.frombuffer(data, dtype=np.uint8), True, damage
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise NotAScapError("empty file", path=path, offset=0)
            mapped = _map(f.fileno(), size)
            return np.frombuffer(mapped, dtype=np.uint8), False, None
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
    before the damage and the TruncatedError saying where (also given as a warning)."""
    size = os.fstat(f.fileno()).st_size if on_inflate else 0
    parts = []
    decomp = zlib.decompressobj(wbits=47)  # 32+15: gzip header, auto-detected
    produced = 0
    while True:
        data = f.read(_CHUNK)
        if not data:
            break
        while data:
            try:
                out = decomp.decompress(data)
            except zlib.error as e:
                damage = TruncatedError(f"gzip stream is damaged ({e})", path=path,
                                        offset=produced)
                warnings.warn(ScapWarning(f"{damage}; keeping the {produced} bytes before it"),
                              stacklevel=3)
                return b"".join(parts), damage
            parts.append(out)
            produced += len(out)
            if decomp.eof:
                data = decomp.unused_data
                if data[:2] == GZIP_MAGIC:
                    decomp = zlib.decompressobj(wbits=47)
                else:
                    data = b""  # trailing garbage after the last member is ignored, as zlib does
            else:
                data = b""
        if on_inflate:
            on_inflate(f.tell(), size)
    if not decomp.eof and produced:
        damage = TruncatedError("gzip stream ends early", path=path, offset=produced)
        warnings.warn(ScapWarning(f"{damage}; keeping the {produced} bytes inflated so far"),
                      stacklevel=3)
        return b"".join(parts), damage
    return b"".join(parts), None
