"""Where the parameters of a few events lie, found once for all the parameters asked for.

events.param_slices walks the length array of every event up to the one parameter wanted: fine
for one parameter of millions of events. A thread replay asks the other way round, for twenty
parameters of the same few hundred events; reading each event's whole length array once and
keeping the offsets serves them all.
"""
import numpy as np


class RowParams:
    """The (offset, length) of every parameter of the events of `h` (EventHeaders), as
    (events x parameters) matrices into `buf`."""

    def __init__(self, buf, h):
        n = len(h)
        self.nparams = nparams = h.nparams.astype(np.int64)
        count = int(nparams.max()) if n else 0
        start = h.lens_start
        width = h.lens_width
        k = np.arange(count, dtype=np.int64)
        inside = k[None, :] < nparams[:, None]
        # (a length array cut by the end of the data reads as zeros: such an event is
        # damage that the headers' check reports, and its values do not fit below)
        pos = np.where(inside, start[:, None] + k[None, :] * width[:, None], 0)
        pos = np.minimum(pos, max(len(buf) - 4, 0))
        lengths = buf[pos].astype(np.int64) | (buf[pos + 1].astype(np.int64) << 8)
        wide = (width == 4)[:, None] & inside
        if wide.any():
            p = pos[wide]
            lengths[wide] |= (buf[p + 2].astype(np.int64) << 16) | \
                (buf[p + 3].astype(np.int64) << 24)
        lengths *= inside
        self.lengths = lengths
        self.offsets = (start + nparams * width)[:, None] + np.cumsum(lengths, axis=1) - lengths
        self.end = np.minimum(h.record + h.length.astype(np.int64), len(buf))

    def slices(self, index):
        """(offsets, lengths, present) of parameter number index[i] of event i (-1: none), as
        events.param_slices gives them."""
        index = np.asarray(index, dtype=np.int64)
        present = (index >= 0) & (index < self.nparams)
        rows = np.arange(len(index))
        at = np.where(present, index, 0)
        if self.lengths.shape[1] == 0:
            zeros = np.zeros(len(index), dtype=np.int64)
            return zeros, zeros.copy(), present
        offsets, lengths = self.offsets[rows, at], self.lengths[rows, at]
        present &= offsets + lengths <= self.end
        return np.where(present, offsets, 0), np.where(present, lengths, 0), present
