"""Fuzz the streaming engine that `scaptool -r` runs: the stream reader over a plain or gzip
input, chunks of a few events with sysdig's state carried from one to the next, and the
default and JSON lines of every chunk.

The input's first byte picks the reading (bit 0: gzip-compress the rest first; bits 1-3: the
events per chunk); the rest is the capture."""
import gzip

import harness

harness.instrumented()

import numpy as np  # noqa: E402

from scaptool import scap  # noqa: E402
from scaptool.query.chunks import Reading, event_data_chunks  # noqa: E402
from scaptool.query.format import DEFAULT_FORMAT, format_lines, json_lines  # noqa: E402

CHUNK_EVENTS = (2, 3, 5, 8, 13, 64, 1000, 100_000)


def test_one(data):
    if not data:
        return
    how, capture = data[0], data[1:]
    if how & 1:
        capture = gzip.compress(capture, compresslevel=1, mtime=0)
    path = harness.scratch_path()
    with open(path, "wb") as f:
        f.write(capture)
    reading = Reading()
    try:
        for chunk in event_data_chunks(path, CHUNK_EVENTS[(how >> 1) & 7], reading=reading):
            rows = np.arange(chunk.capture.context, len(chunk))
            format_lines(chunk, DEFAULT_FORMAT, rows)
            json_lines(chunk, DEFAULT_FORMAT, rows)
    except scap.ScapError:
        pass


def seeds():
    import seeds as made
    out = {}
    for k, (name, data) in enumerate(sorted(made.captures().items())):
        if len(data) <= 1 << 14:   # (a thousand chunks of a few events each: too slow a seed)
            out[name] = bytes([k % 16]) + data
    return out


if __name__ == "__main__":
    harness.run(test_one, seeds)
