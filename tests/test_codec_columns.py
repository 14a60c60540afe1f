"""Each codec's column renderer (scap.codec_columns) against its scalar render(), and the
vectorized -A/-x/-X dumps (query.buffer_dumps) against render.ascii_text / hex_rows, on
generated values."""
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from scaptool.query import buffer_dumps
from scaptool.query.render import BUFFER_FORMATS
from scaptool.scap import byte_columns
from scaptool.scap.codec_columns import NoStateColumns, Raw, render_column
from scaptool.scap.codecs import codec_for
from scaptool.scap.eventtable import DYN_TABLES, PF, PT, ParamInfo, sysdig_0293

from test_codecs import well_formed

USERS = {0: "root", 1000: "alice", 65534: "nobody"}
GROUPS = {0: "root", 100: "users"}


def _params_of_type(pt):
    """The parameter declarations of type pt in 0.29.3's table (name, format, flags table or
    dirfd index), or a plain one of each print format when the table has none."""
    found = {(p.type, p.fmt, p.extra) for e in sysdig_0293() for p in e.params if p.type == pt}
    found |= {(s.type, s.fmt, s.extra) for table in DYN_TABLES.values() for s in table
              if s.type == pt}
    if pt == PT.DYN:
        found |= {(PT.DYN, PF.DEC, name) for name in DYN_TABLES}
    if not found:
        found = {(pt, fmt, None) for fmt in PF}
    if pt in (PT.UINT64, PT.INT32, PT.UINT32, PT.INT8, PT.UINT16, PT.INT64):
        found |= {(pt, fmt, None) for fmt in (PF.DEC, PF.HEX, PF.OCT, PF.PADDED_DEC)}
    return sorted(found, key=repr)


def _values(pt):
    return st.lists(st.one_of(well_formed(pt), st.binary(max_size=24), st.just(b"")),
                    max_size=12)


def _raw(values):
    buf = np.frombuffer(b"".join(values) + b"\0" * 8, dtype=np.uint8)
    lengths = np.array([len(v) for v in values], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if values \
        else np.zeros(0, dtype=np.int64)
    return Raw(buf, offsets, lengths)


class _Context(NoStateColumns):
    def __init__(self, limit):
        self.bytebuf_limit = limit
        self.users = USERS
        self.groups = GROUPS


@pytest.mark.parametrize("pt", [pt for pt in PT], ids=lambda p: p.name)
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_column_render_equals_scalar_render(pt, data):
    ptype, fmt, extra = data.draw(st.sampled_from(_params_of_type(pt)))
    param = ParamInfo("p", ptype, fmt, extra)
    values = data.draw(_values(pt))
    previous = data.draw(st.lists(st.text("abc/. ", max_size=6), min_size=len(values),
                                  max_size=len(values)))
    limit = data.draw(st.sampled_from([80, None, 5, 3]))
    codec = codec_for(pt)
    got = render_column(codec, param, _raw(values), _Context(limit),
                        pl.Series(values=previous, dtype=pl.String))
    expected = [codec.render(codec.decode(v), param, previous_text=p, users=USERS,
                             groups=GROUPS, bytebuf_limit=limit)
                for v, p in zip(values, previous)]
    fallback = got.fallback if got.fallback is not None else np.zeros(len(values), bool)
    texts = got.text.to_list()
    resolved = got.resolved.to_list() if got.resolved is not None else [None] * len(values)
    for i, (text, res) in enumerate(expected):
        if fallback[i]:
            continue
        assert texts[i] == text, (values[i], param)
        assert resolved[i] == res, (values[i], param)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.binary(min_size=1, max_size=70) | st.sampled_from(
    [b"\r\n", b"\n\n", b"a\rb\nc\r\r\n", b"\t\x00\x7f\x80 ~"]), max_size=8),
    style=st.sampled_from(["ascii", "hex", "hexascii"]))
def test_buffer_dumps_equal_the_per_buffer_ones(values, style):
    raw = _raw(values)
    if style == "ascii":
        got = buffer_dumps.ascii_dumps(raw)
    else:
        got = buffer_dumps.hex_dumps(raw, style == "hexascii")
    assert got.to_list() == [BUFFER_FORMATS[style](v) for v in values]


def test_byte_batches_join_in_order(monkeypatch):
    monkeypatch.setattr(byte_columns, "BATCH_BYTES", 7)
    values = [b"abcdef", b"", b"0123456789", b"xy", b"z" * 20]
    raw = _raw(values)
    got = buffer_dumps.ascii_dumps(raw)
    assert got.to_list() == [BUFFER_FORMATS["ascii"](v) for v in values]


def test_digits_match_printf():
    values = np.array([0, 1, 15, 16, 0o755, 2**32 - 1, 2**64 - 1], dtype=np.uint64)
    assert byte_columns.digits(values, 16).strings().to_list() == \
        ["%X" % v for v in values.tolist()]
    assert byte_columns.digits(values, 8).strings().to_list() == \
        ["%o" % v for v in values.tolist()]
