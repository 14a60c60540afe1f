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
    mistaken for a finished one."""
    head, events = [], []
    for kind, block in _blocks(_raw(source)):
        (events if kind in _TS_AT else head).append((kind, block))
    stamps = [struct.unpack_from("<Q", block, 8 + _TS_AT[kind])[0] for kind, block in events]
    real = [t for t in stamps if 0 < t < 1 << 62]   # some internal events carry no time
    span = max(real) - min(real) + 1_000_000
    tmp = pathlib.Path(f"{out}.partial")
    written = 0
    with open(tmp, "wb") as f:
        for _, block in head:
            f.write(block)
        for k in range(copies):
            for (kind, block), ts in zip(events, stamps):
                if not 0 < ts < 1 << 62:
                    if k == 0:
                        f.write(block)
                        written += 1
                    continue
                shifted = bytearray(block)
                struct.pack_into("<Q", shifted, 8 + _TS_AT[kind], ts + k * span)
                f.write(shifted)
                written += 1
    os.replace(tmp, out)
    return written


def grown(source, events, directory):
    """The path of `source` grown to about `events` events in `directory` (made once)."""
    source = pathlib.Path(source)
    copies = max(1, round(events / event_count(source)))
    out = pathlib.Path(directory) / f"{source.stem}-x{copies}.scap"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        grow(source, out, copies)
    return out, copies
