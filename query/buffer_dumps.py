"""-A, -x and -X for whole columns of byte buffers: render.ascii_text and render.hex_rows
(the reference, one buffer at a time) built with array operations.

A hex dump is made as a matrix with one row per 16-byte line of every buffer, each cell a
character of the line at its fixed place (`\\n\\t0xOOOO:`, eight ` xxxx` groups, with -X two
spaces and the printable bytes), and the cells a shorter last line has not are dropped.
"""
import numpy as np
import polars as pl

from scaptool.scap import byte_columns as bc
from scaptool.scap.codecs import _DOTTED

CR, LF = 0x0D, 0x0A
_PRINTABLE = np.zeros(256, dtype=bool)
_PRINTABLE[0x20:0x7F] = True
_DOTTED_TABLE = np.frombuffer(_DOTTED, dtype=np.uint8)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# %04x of a line's offset: buffers of more than 64 KiB have wider offsets (left to the
# scalar code)
MAX_HEX_DUMP = 1 << 16


def ascii_dumps(raw):
    """`\\n` + render.ascii_text of every value of raw (a codec_columns.Raw)."""
    def make(lo, hi):
        part = raw.take(slice(lo, hi))
        segments = bc.gather(part.buf, part.offsets, part.lengths)
        flat = segments.flat
        previous = np.empty_like(flat)
        previous[1:] = flat[:-1]
        previous[:1] = 0
        # a LF starting the buffer, or ending a CR LF pair, adds nothing; a CR is a line break
        keep = _PRINTABLE[flat] | (flat == CR) | \
            ((flat == LF) & (segments.index_in_value() > 0) & (previous != CR))
        shown = np.where(flat == CR, np.uint8(LF), flat)
        text = bc.Segments(shown, segments.starts).keep(keep).strings()
        return pl.select(pl.concat_str(pl.lit("\n"), pl.lit(text))).to_series()
    return bc.in_batches(raw.lengths, make)


def hex_dumps(raw, with_ascii):
    """render.hex_rows of every value of raw (none longer than MAX_HEX_DUMP bytes)."""
    # a line of the matrix is about 4 characters per byte of the buffer
    return bc.in_batches(raw.lengths, lambda lo, hi: _hex_part(raw.take(slice(lo, hi)),
                                                               with_ascii))


def _hex_part(raw, with_ascii):
    lengths = raw.lengths
    lines = -(-lengths // 16)
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lines)
    first_line = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lines, out=first_line[1:])
    line_no = np.arange(len(owner), dtype=np.int64) - first_line[owner]
    at = line_no * 16
    count = np.minimum(lengths[owner] - at, 16)           # bytes on the line
    width = 9 + 40 + (18 if with_ascii else 0) + 1
    cells = np.full((len(owner), width), ord(" "), dtype=np.uint8)
    cells[:, 0], cells[:, 1], cells[:, 2], cells[:, 3], cells[:, 8] = LF, 9, ord("0"), \
        ord("x"), ord(":")
    for d in range(4):
        cells[:, 4 + d] = _HEX[(at >> (12 - 4 * d)) & 0xF]
    # the line's bytes, 0 past its end
    column = np.arange(16, dtype=np.int64)
    inside = column[None, :] < count[:, None]
    where = np.where(inside, raw.offsets[owner][:, None] + at[:, None] + column[None, :], 0)
    data = np.where(inside, raw.buf[where], 0).astype(np.intp)
    for b in range(16):
        place = 9 + 5 * (b // 2) + (1 if b % 2 == 0 else 3)
        cells[:, place] = np.where(inside[:, b], _HEX[data[:, b] >> 4], ord(" "))
        cells[:, place + 1] = np.where(inside[:, b], _HEX[data[:, b] & 0xF], ord(" "))
    last = line_no == lines[owner] - 1
    cells[:, width - 1] = LF                               # after a buffer's last line only
    keep = np.ones_like(cells, dtype=bool)
    hex_area = np.arange(40)[None, :]
    odd = count % 2
    if with_ascii:
        # groups padded to eight of 5 characters (a lone last byte's group has 3), two
        # spaces, then the line's bytes, dotted
        keep[:, 9:49] = hex_area < (40 - 2 * odd)[:, None]
        cells[:, 51:67] = np.where(inside, _DOTTED_TABLE[data], ord(" "))
        keep[:, 51:67] = inside
    else:
        keep[:, 9:49] = hex_area < (5 * (count // 2) + 3 * odd)[:, None]
    keep[:, width - 1] = last
    segments = bc.from_matrix(cells, keep)
    # lines back to their buffers: a buffer's lines are consecutive
    starts = segments.starts[first_line]
    return bc.Segments(segments.flat, starts).strings()
