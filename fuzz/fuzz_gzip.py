"""Fuzz gzip input: the inflater a capture is read through, fed the same bytes in pieces of
different sizes, must give the same bytes and name the same damage at the same offset; where
zlib inflates every member, the inflater gives what zlib gives; and the
whole-file loader (which stops inflating where the block stream breaks) returns or raises a
ScapError.

The input's first two bytes pick the piece size; the rest is the gzip stream."""
import zlib

import harness

harness.instrumented()

from scaptool import scap  # noqa: E402
from scaptool.scap import source  # noqa: E402


def inflated(stream, piece):
    inflater = source.GzipInflater("fuzz")
    out = []
    for at in range(0, len(stream), piece):
        inflater.feed(stream[at:at + piece])
        while chunk := inflater.inflate(1 << 16):
            out.append(chunk)
    inflater.feed(b"")
    while chunk := inflater.inflate(1 << 16):
        out.append(chunk)
    assert inflater.finished
    damage = inflater.damage
    return b"".join(out), None if damage is None else (type(damage), damage.offset)


def zlib_inflated(stream):
    """Every gzip member inflated by zlib itself, as libscap's gzread reads them (stopping
    at trailing bytes that start no member); None where zlib refuses. (Not Python's gzip
    module: it lets through header flags that zlib refuses.)"""
    out = []
    while stream[:2] == b"\x1f\x8b":
        member = zlib.decompressobj(47)
        try:
            out.append(member.decompress(stream))
        except zlib.error:
            return None
        if not member.eof:
            return None
        stream = member.unused_data
    return b"".join(out)


def test_one(data):
    if len(data) < 3:
        return
    piece = 1 + int.from_bytes(data[:2], "little") % 4096
    stream = data[2:]
    whole, damage = inflated(stream, max(len(stream), 1))
    pieces, damage_in_pieces = inflated(stream, piece)
    assert pieces == whole and damage_in_pieces == damage, (piece, damage, damage_in_pieces)
    expected = zlib_inflated(stream)
    if expected is not None and stream[:2] == b"\x1f\x8b":
        assert damage is None and whole == expected, (len(whole), len(expected), damage)
    path = harness.scratch_path(".scap.gz")
    with open(path, "wb") as f:
        f.write(stream)
    try:
        buffer, _, _ = source.load(path)
        assert whole.startswith(bytes(buffer)) or stream[:2] != b"\x1f\x8b"
    except scap.ScapError:
        pass


def seeds():
    import seeds as made
    return {name: bytes([k, k >> 8]) + data
            for k, (name, data) in enumerate(sorted(made.gzip_captures().items()))}


if __name__ == "__main__":
    harness.run(test_one, seeds)
