"""Big captures for benchmarks, grown from real ones: the header blocks once, then the event
blocks repeated, each copy shifted in time past the one before, every block kept in its own
format (a 2013 capture stays a 2013 capture), so that both tools read what the original's
users would have.
"""
import os
import pathlib
import struct

from scaptool.scap import blocktypes as bt

# event block type -> offset of the timestamp in the block's body (after the cpu, and the
# flags of the EVF kinds)
_TS_AT = {bt.EV: 2, bt.EV_INT: 2, bt.EV_V2: 2, bt.EV_V2_LARGE: 2,
          bt.EVF: 6, bt.EVF_V2: 6, bt.EVF_V2_LARGE: 6}
_HEADER = struct.Struct("<II")


def _blocks(data):
    at = 0
    while at + _HEADER.size <= len(data):
        kind, length = _HEADER.unpack_from(data, at)
        if length < 12 or at + length > len(data):
            break
        yield kind, data[at:at + length]
        at += length


def _raw(source):
    data = pathlib.Path(source).read_bytes()
    if data[:2] == b"\x1f\x8b":
        import gzip
        data = gzip.decompress(data)
    return data


def event_count(source):
    return sum(1 for kind, _ in _blocks(_raw(source)) if kind in _TS_AT)


def grow(source, out, copies):
    """Write `copies` copies of source's events after its header blocks; returns the events
    written. Written to a temporary name and renamed, so a half-written file is never
    mistaken for a finished one. Each copy is one numpy pass over the events' bytes (a
    capture of tens of GB is grown at disk speed)."""
    import numpy as np
    head, events, ts_at, kinds = [], [], [], []
    size = 0
    for kind, block in _blocks(_raw(source)):
        if kind in _TS_AT:
            ts_at.append(size + 8 + _TS_AT[kind])
            events.append(block)
            size += len(block)
        else:
            head.append(block)
    body = np.frombuffer(b"".join(events), dtype=np.uint8)
    at = np.asarray(ts_at, dtype=np.int64)
    byte_index = at[:, None] + np.arange(8)          # the 8 bytes of every timestamp
    stamps = body[byte_index].copy().view("<u8").ravel()
    real = (stamps > 0) & (stamps < 1 << 62)          # some internal events carry no time
    span = int(stamps[real].max() - stamps[real].min()) + 1_000_000
    # events without a time are written with the first copy only
    timeless = np.flatnonzero(~real)
    keep_later = np.ones(len(body), dtype=bool)
    bounds = np.r_[at - 8 - np.array([_TS_AT[k] for k in
                                      [struct.unpack_from("<I", b)[0] for b in events]]),
                   len(body)]
    for k in timeless:
        keep_later[bounds[k]:bounds[k + 1]] = False
    tmp = pathlib.Path(f"{out}.partial")
    with open(tmp, "wb") as f:
        for block in head:
            f.write(block)
        for k in range(copies):
            copy = body.copy()
            shifted = stamps.copy()
            shifted[real] += np.uint64(k * span)
            copy[byte_index] = shifted.view(np.uint8).reshape(-1, 8)
            f.write((copy if k == 0 else copy[keep_later]).tobytes())
    os.replace(tmp, out)
    return len(events) + (copies - 1) * int(np.count_nonzero(real))


def grown(source, events, directory):
    """The path of `source` grown to about `events` events in `directory` (made once)."""
    source = pathlib.Path(source)
    copies = max(1, round(events / event_count(source)))
    out = pathlib.Path(directory) / f"{source.stem}-x{copies}.scap"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        grow(source, out, copies)
    return out, copies
