"""Arrow columns that view the capture buffer: the building blocks of vectorized decoding.

Parameters sit at arbitrary (unaligned) offsets in the file buffer. Byte-like values become
Arrow BinaryView arrays whose long values point into the buffer itself, so a byte-buffer column
costs 16 bytes per event and no copy of the data. Fixed-size values are gathered byte by byte
into numpy integers.
"""
import numpy as np
import pyarrow as pa

_INLINE = 12          # BinaryView keeps values of up to 12 bytes inside the view itself
_MAX_BUFFER = 1 << 31  # view offsets are int32: split larger inputs into several data buffers


def binary_view(buf, offsets, lengths, valid=None):
    """A pa.BinaryView array of buf[offsets[i]:offsets[i]+lengths[i]], sharing buf's memory.

    buf is a 1-d uint8 numpy array (it must outlive the array: pyarrow keeps a reference);
    valid, when given, is a bool array and False rows become nulls.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(offsets)
    views = np.zeros((n, 16), dtype=np.uint8)
    words = views.view(np.int32)
    words[:, 0] = lengths
    if n:
        head = buf[np.minimum(offsets[:, None] + np.arange(_INLINE), len(buf) - 1)] if len(buf) \
            else np.zeros((n, _INLINE), dtype=np.uint8)
        head[np.arange(_INLINE)[None, :] >= lengths[:, None]] = 0
        short = lengths <= _INLINE
        views[short, 4:16] = head[short]
        long_rows = ~short
        views[long_rows, 4:8] = head[long_rows, :4]
        if len(buf) <= _MAX_BUFFER:
            buffers = [pa.py_buffer(buf)]
            words[long_rows, 3] = offsets[long_rows]
        else:
            chunk = offsets[long_rows] // (_MAX_BUFFER // 2)
            # each value lies inside a window [k*H, k*H + 2H) with H = half the limit
            half = _MAX_BUFFER // 2
            nwin = int(len(buf) // half) + 1
            buffers = [pa.py_buffer(buf[k * half:(k + 2) * half]) for k in range(nwin)]
            words[long_rows, 2] = chunk
            words[long_rows, 3] = offsets[long_rows] - chunk * half
    else:
        buffers = [pa.py_buffer(buf)]
    validity = None
    if valid is not None and not np.all(valid):
        validity = pa.py_buffer(np.packbits(np.asarray(valid, dtype=bool), bitorder="little"))
    return pa.Array.from_buffers(pa.binary_view(), n, [validity, pa.py_buffer(views)] + buffers)


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
