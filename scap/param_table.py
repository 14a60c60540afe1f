"""Where every parameter of every event of a chunk lies, read once.

events.param_slices walks each event's length array up to the parameter asked for, again for
every parameter asked: right for one parameter of a whole capture, which it reads without a
column per parameter. A chunk of a reading (query.chunks) is asked for a dozen parameter
positions by the state, the filter and the renderers, each over all its events; reading
every length array once into flat arrays (one entry per parameter of each event, events one
after the other) serves them all, in memory proportional to the parameters the chunk has.
"""
import numpy as np


class ParamTable:
    """The (offset, length) of every parameter of the events of `h` (EventHeaders) in `buf`:
    flat arrays, event i's parameters at first[i] .. first[i + 1] - 1."""

    def __init__(self, buf, h):
        n = len(h)
        self.nparams = nparams = h.nparams.astype(np.int64)
        self.first = first = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(nparams, out=first[1:])
        total = int(first[-1])
        start, width = h.lens_start, h.lens_width
        event = np.repeat(np.arange(n, dtype=np.int64), nparams)
        k = np.arange(total, dtype=np.int64) - first[event]
        pos = start[event] + k * width[event]
        # (a length array cut by the end of the data reads as zeros: such an event is damage
        # the headers' check reports, and its values do not fit below)
        readable = pos + width[event] <= len(buf)
        pos = np.where(readable, pos, 0)
        lengths = buf[pos].astype(np.int64) | (buf[pos + 1].astype(np.int64) << 8)
        wide = np.flatnonzero((width[event] == 4) & readable)
        if len(wide):
            p = pos[wide]
            lengths[wide] |= (buf[p + 2].astype(np.int64) << 16) | \
                (buf[p + 3].astype(np.int64) << 24)
        lengths *= readable
        # each value starts after its event's length array and the values before it
        before = np.cumsum(lengths) - lengths
        self.offsets = (start + nparams * width)[event] + before - \
            np.r_[before, 0][first[:-1]][event]
        self.lengths = lengths
        self.end = np.minimum(h.record + h.length.astype(np.int64), len(buf))

    def slices(self, index):
        """(offsets, lengths, present) of parameter number `index` (an int, or one per event;
        -1 = none), as events.param_slices gives them."""
        n = len(self.nparams)
        index = np.broadcast_to(np.asarray(index, dtype=np.int64), (n,))
        present = (index >= 0) & (index < self.nparams)
        if not len(self.lengths):
            zeros = np.zeros(n, dtype=np.int64)
            return zeros, zeros.copy(), present & False
        at = np.where(present, self.first[:-1] + index, 0)
        offsets, lengths = self.offsets[at], self.lengths[at]
        present &= offsets + lengths <= self.end
        return np.where(present, offsets, 0), np.where(present, lengths, 0), present
