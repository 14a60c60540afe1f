"""Text columns made from bytes with numpy: the building blocks of vectorized rendering.

Parameters are slices of the capture buffer. Rendering one as sysdig does is a byte-level
transformation (printable bytes kept or dotted, cut at the first NUL, cut to a length, numbers
spelled in hex...), the same for every value of a column. Here the slices of many values are
gathered into one flat byte array with the start of each value (Arrow's layout for strings),
transformed with whole-array operations, and handed to Polars without a Python string per value.
"""
import numpy as np
import polars as pl

# a gather of more bytes than this at once is split, to bound the int64 index temporaries
BATCH_BYTES = 1 << 24


class Segments:
    """Values as one flat uint8 array: value i is flat[starts[i]:starts[i + 1]]."""

    __slots__ = ("flat", "starts")

    def __init__(self, flat, starts):
        self.flat = flat
        self.starts = starts

    def __len__(self):
        return len(self.starts) - 1

    @property
    def lengths(self):
        return np.diff(self.starts)

    def owner(self):
        """The value each byte of flat belongs to."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    def index_in_value(self):
        """Each byte's position inside its own value."""
        return np.arange(len(self.flat), dtype=np.int64) - np.repeat(self.starts[:-1],
                                                                     self.lengths)

    def keep(self, mask):
        """Only the bytes where mask is True, in the same values."""
        kept = np.zeros(len(self.flat) + 1, dtype=np.int64)
        np.cumsum(mask, out=kept[1:])
        return Segments(self.flat[mask], kept[self.starts])

    def head(self, limit):
        """Each value cut to its first `limit` bytes (limit: int or one per value)."""
        limit = np.broadcast_to(np.asarray(limit, dtype=np.int64), (len(self),))
        return self.keep(self.index_in_value() < np.repeat(limit, self.lengths))

    def before_nul(self):
        """Each value up to (not including) its first NUL byte."""
        nuls = np.zeros(len(self.flat) + 1, dtype=np.int64)
        np.cumsum(self.flat == 0, out=nuls[1:])
        seen = nuls[1:] - np.repeat(nuls[self.starts[:-1]], self.lengths)
        return self.keep(seen == 0)

    def translate(self, table):
        """Every byte replaced through a 256-entry uint8 table."""
        return Segments(table[self.flat], self.starts)

    def strings(self, name=""):
        """A pl.String Series of the values. The bytes must be valid UTF-8 (ASCII is)."""
        import pyarrow as pa
        array = pa.LargeStringArray.from_buffers(
            len(self), pa.py_buffer(np.ascontiguousarray(self.starts, dtype=np.int64)),
            pa.py_buffer(np.ascontiguousarray(self.flat)))
        return pl.Series(name, array, dtype=pl.String)

    def non_ascii(self):
        """A bool per value: does it hold a byte >= 0x80?"""
        high = np.zeros(len(self.flat) + 1, dtype=np.int64)
        np.cumsum(self.flat >= 0x80, out=high[1:])
        return high[self.starts[1:]] > high[self.starts[:-1]]


def gather(buf, offsets, lengths):
    """Segments of buf[offsets[i]:offsets[i] + lengths[i]]."""
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    index = np.repeat(offsets - starts[:-1], lengths) + np.arange(starts[-1], dtype=np.int64)
    return Segments(buf[index], starts)


def in_batches(lengths, make, name=""):
    """make(lo, hi) -> pl.Series for the values lo..hi, called over runs of values holding at
    most BATCH_BYTES bytes together (one value alone may hold more), joined."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    total = int(lengths.sum()) if n else 0
    if total <= BATCH_BYTES:
        return make(0, n).alias(name)
    ends = np.cumsum(lengths)
    parts, lo = [], 0
    while lo < n:
        base = ends[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(ends, base + BATCH_BYTES, side="right")), lo + 1)
        parts.append(make(lo, hi))
        lo = hi
    return pl.concat(parts).alias(name)


def from_matrix(chars, keep):
    """Segments of the rows of a (values x width) uint8 matrix, keeping the cells where keep
    (same shape) is True."""
    counts = keep.sum(axis=1)
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    return Segments(chars[keep], starts)


_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
_LOWER = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def digits(values, base, upper=True, min_digits=1):
    """Segments of the numbers (uint64) written in base 16 or 8 without leading zeros (but
    at least min_digits digits), as C's %X / %x / %o."""
    values = np.asarray(values, dtype=np.uint64)
    bits = 4 if base == 16 else 3
    width = -(-64 // bits)
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(bits)
    cells = ((values[:, None] >> shifts[None, :]) & np.uint64(base - 1)).astype(np.intp)
    chars = (_UPPER if upper else _LOWER)[cells]
    nonzero = cells != 0
    first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), width)
    first = np.minimum(first, width - min_digits)
    keep = np.arange(width)[None, :] >= first[:, None]
    return from_matrix(chars, keep)

