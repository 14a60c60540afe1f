"""evt.info / evt.args / evt.arg built as columns (query.info_columns) against the per-event
Renderer (query.render), the reference, on every visible event of every corpus capture, in
every output mode; and the rows left to the Renderer kept rare."""
import numpy as np
import pytest

import scaptool
from scaptool.query.events import EventData
from scaptool.query.info_columns import rendered_texts
from scaptool.scap.codecs import codec_for
from scaptool.scap.eventtable import PT, sysdig_0293

from conftest import corpus_captures, need_capture

# (buffer format, bytebuf limit): sysdig's default, -v / -j, -A, -x, -X
MODES = [("normal", 80), ("normal", None), ("ascii", 80), ("hex", 80), ("hexascii", 80)]
ARGS = ["fd", "res", "data", "name", "0", "1"]


def _reference(data, what, arg, rows):
    r = data.renderer
    which = int(arg) if arg is not None and arg.isdigit() else arg
    if what == "evt.arg":
        text = lambda row, raw: r.arg(row, which, raw)  # noqa: E731
    else:
        text = r.info if what == "evt.info" else r.args
    out = []
    for lo in range(0, len(rows), 4096):
        part = rows[lo:lo + 4096]
        out += [text(row, raw) for row, raw in zip(part.tolist(), r.raw_params_at(part))]
    return out


def _fast_reference_state(data, rows):
    """The Renderer's state, with the answers it would look up one at a time made in bulk
    beforehand by the same functions (the cwd column of every event; the fd names of every
    polled fd): the reference stays the same, only quicker."""
    data.thread_columns(["proc.cwd"])
    state = data.state
    table = sysdig_0293()
    pairs = []
    lists = [(row, k) for row in rows.tolist() if int(data.headers.type[row]) < len(table)
             for k, p in enumerate(table[int(data.headers.type[row])].params)
             if p.type == PT.FDLIST]
    if lists:
        raws = data.renderer.raw_params_at(np.array([row for row, _ in lists]))
        for (row, k), raw in zip(lists, raws):
            if k < len(raw):
                pairs += [(row, fd) for fd, _ in codec_for(PT.FDLIST).decode(raw[k]) or ()]
    if pairs:
        found = data.fd_lookup(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
        known = dict(zip(pairs, found.to_list()))
        original = state.fd_text
        state.fd_text = lambda row, fd: known[(row, fd)] if (row, fd) in known \
            else original(row, fd)


def _dumped_rows(data, rows):
    """The rows whose text depends on the output mode: those with a byte buffer or a
    dynamic parameter."""
    table = sysdig_0293()
    types = np.zeros(65536, dtype=bool)
    for i in range(len(table)):
        types[i] = any(p.type in (PT.BYTEBUF, PT.DYN) for p in table[i].params)
    return rows[types[data.headers.type[rows]]]


@pytest.mark.parametrize("path", corpus_captures())
def test_columns_equal_the_per_event_renderer(path):
    need_capture(path)
    capture = scaptool.open(path)
    first = None
    for style, limit in MODES:
        data = EventData(capture, bytebuf_limit=limit, buffer_format=style)
        rows = np.flatnonzero(data.visible)
        # every row in the default mode; in the others, the rows the mode can change (the
        # columns of the other rows must not change at all)
        got, fallback = rendered_texts(data, "evt.info", None, rows)
        if first is None:
            first = got
            checked = rows
        else:
            same = np.setdiff1d(rows, _dumped_rows(data, rows))
            at = np.searchsorted(rows, same)
            assert got.gather(at).to_list() == first.gather(at).to_list(), (style, limit)
            checked = _dumped_rows(data, rows)
        _fast_reference_state(data, checked)
        at = np.searchsorted(rows, checked)
        expected = _reference(data, "evt.info", None, checked)
        _assert_same(got.gather(at).to_list(), expected, checked, (style, limit))
        if (style, limit) == ("normal", 80):
            for what, arg in [("evt.args", None)] + [("evt.arg", a) for a in ARGS]:
                got_arg, _ = rendered_texts(data, what, arg, rows)
                _assert_same(got_arg.to_list(), _reference(data, what, arg, rows), rows,
                             (what, arg))
        assert len(fallback) <= max(1, len(rows) // 1000), (style, limit, fallback[:10])


def _assert_same(got, expected, rows, mode):
    wrong = [i for i in range(len(rows)) if got[i] != expected[i]]
    assert not wrong, (mode, len(wrong), int(rows[wrong[0]]), got[wrong[0]],
                       expected[wrong[0]])
