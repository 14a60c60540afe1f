"""Arrow columns that view the capture buffer: the building blocks of vectorized decoding.

Parameters sit at arbitrary (unaligned) offsets in the file buffer. Byte-like values become
Arrow BinaryView arrays whose long values point into the buffer itself, so a byte-buffer column
costs 16 bytes per event and no copy of the data. Fixed-size values are gathered byte by byte
into numpy integers.
"""
import numpy as np

_INLINE = 12          # BinaryView keeps values of up to 12 bytes inside the view itself
_MAX_BUFFER = 1 << 31  # view offsets are int32: split larger inputs into several data buffers


def binary_view(buf, offsets, lengths, valid=None):
    """A pa.BinaryView array of buf[offsets[i]:offsets[i]+lengths[i]], sharing buf's memory.

    buf is a 1-d uint8 numpy array (it must outlive the array: pyarrow keeps a reference);
    valid, when given, is a bool array and False rows become nulls.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    views = new_views(len(offsets))
    fill_views(views, buf, offsets, lengths)
    return views_array(views, buf, valid)


def new_views(n):
    """Room for n BinaryView entries (16 bytes each), to be filled by fill_views."""
    return np.zeros((n, 16), dtype=np.uint8)


def fill_views(views, buf, offsets, lengths):
    """Fill views (n x 16 bytes) for the values buf[offsets[i]:offsets[i]+lengths[i]]."""
    if not len(offsets):
        return
    words = views.view(np.int32)
    words[:, 0] = lengths
    _fill_heads(views, buf, offsets, lengths)
    long_rows = lengths > _INLINE
    if len(buf) <= _MAX_BUFFER:
        words[long_rows, 3] = offsets[long_rows]
    else:
        # each value lies inside a window [k*H, k*H + 2H) with H = half the limit
        half = _MAX_BUFFER // 2
        window = offsets[long_rows] // half
        words[long_rows, 2] = window
        words[long_rows, 3] = offsets[long_rows] - window * half


def views_array(views, buf, valid=None, validity=None):
    """The pa.BinaryView array over filled views; False in valid (a bool per row), or a 0 bit
    in validity (an Arrow bitmap), makes a null."""
    import pyarrow as pa  # here: what needs no Arrow array starts without loading pyarrow
    if len(buf) <= _MAX_BUFFER:
        buffers = [pa.py_buffer(buf)]
    else:
        half = _MAX_BUFFER // 2
        buffers = [pa.py_buffer(buf[k * half:(k + 2) * half])
                   for k in range(int(len(buf) // half) + 1)]
    if valid is not None and not np.all(valid):
        validity = np.packbits(np.asarray(valid, dtype=bool), bitorder="little")
    bitmap = pa.py_buffer(validity) if validity is not None else None
    return pa.Array.from_buffers(pa.binary_view(), len(views),
                                 [bitmap, pa.py_buffer(views)] + buffers)


def _fill_heads(views, buf, offsets, lengths, chunk=1 << 20):
    """Bytes 4..16 of each view: a value of <= 12 bytes inline (zero-padded), else its prefix."""
    padded = buf
    if len(buf) < _INLINE:
        padded = np.zeros(_INLINE, dtype=np.uint8)
        padded[:len(buf)] = buf
    rows = np.lib.stride_tricks.as_strided(padded, shape=(len(padded) - _INLINE + 1, _INLINE),
                                           strides=(1, 1), writeable=False)
    last = len(padded) - _INLINE
    keep = np.arange(_INLINE)
    for lo in range(0, len(offsets), chunk):
        off = offsets[lo:lo + chunk]
        ln = lengths[lo:lo + chunk]
        start = np.minimum(off, last)
        head = rows[start]
        shift = off - start  # values near the end of the buffer: realign their bytes
        if shift.any():
            for s in np.unique(shift[shift > 0]):
                sel = shift == s
                head[sel] = np.concatenate([head[sel][:, s:], np.zeros((sel.sum(), s), np.uint8)],
                                           axis=1)
        head[keep[None, :] >= np.minimum(ln, _INLINE)[:, None]] = 0
        short = ln <= _INLINE
        head[~short, 4:] = 0
        # a long value keeps only its 4-byte prefix here; buffer index and offset come after
        views[lo:lo + chunk, 4:16] = head


def gather_le(buf, offsets, nbytes, dtype=np.uint64):
    """Little-endian unsigned integers of nbytes (1, 2, 4 or 8) read at arbitrary offsets."""
    offsets = np.asarray(offsets, dtype=np.int64)
    out = np.zeros(len(offsets), dtype=np.uint64)
    for k in range(nbytes):
        out |= buf[offsets + k].astype(np.uint64) << np.uint64(8 * k)
    if dtype == np.uint64:
        return out
    return out.astype(dtype) if np.dtype(dtype).kind == "u" else _signed(out, nbytes, dtype)


def _signed(values, nbytes, dtype):
    width = 8 * nbytes
    if width == 64:
        return values.view(np.int64).astype(dtype, copy=False)
    values = values.astype(np.int64)
    sign = np.int64(1) << np.int64(width - 1)
    return ((values ^ sign) - sign).astype(dtype)


class _ArrowArray:
    """A pyarrow array seen only through the Arrow PyCapsule interface. Polars imports such an
    object zero-copy, as it does a pyarrow array, without its pyarrow glue (which loads
    pyarrow.compute: 40 ms of a cold start)."""

    def __init__(self, array):
        self.array = array

    def __arrow_c_array__(self, requested_schema=None):
        return self.array.__arrow_c_array__(requested_schema)


def polars_series(name, array):
    """A polars Series named `name` over the pyarrow array `array` (no copy)."""
    import polars as pl
    return pl.Series(values=_ArrowArray(array)).alias(name)


def constant_series(value, n, dtype=None, name=""):
    """A Series of n copies of `value` (None: nulls). Not pl.repeat, which runs a query for
    each call: the renderers ask for thousands of small ones per chunk."""
    import polars as pl
    return pl.Series(name, [value], dtype=dtype or pl.String).new_from_index(0, n)
