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


def test_relative_paths_resolve_as_the_renderer_does(tmp_path):
    """Paths joined to the cwd or to a dirfd's directory, in the shapes the corpus lacks:
    openat2's enter names the path itself as its dirfd (0.29.3: the cwd), dirfds that are
    open files, unknown fds or negative, empty paths (the previous text again)."""
    import importlib.util
    import pathlib
    spec = importlib.util.spec_from_file_location(
        "make_scenario", pathlib.Path(__file__).parents[1] / "fixtures" / "make_scenario.py")
    scenario = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scenario)
    from scaptool.scap.writer import Writer
    worker, log_fd, at_cwd = scenario.WORKER, scenario.LOG_FD, -100
    calls = []
    for dirfd in (at_cwd, log_fd, 55, -3):
        for name in (b"a.txt", b"../b/./c", b"/abs", b"", b"<NA>"):
            calls += [("openat2", ">", dict(dirfd=dirfd, name=name, flags=0, mode=0,
                                             resolve=0)),
                      ("openat", ">", dict(dirfd=dirfd, name=name, flags=0, mode=0)),
                      ("unlinkat", "<", dict(res=0, dirfd=dirfd, name=name, flags=0)),
                      ("open", ">", dict(name=name, flags=0, mode=0)),
                      ("stat", "<", dict(res=-2, path=name))]
    events = [scenario.event(10_000 + i, worker, call, direction, **params)
              for i, (call, direction, params) in enumerate(calls)]
    path = tmp_path / "paths.scap"
    with Writer(path) as w:
        w.write_section_header()
        scenario.write_block(w, scenario.bt.MI, scenario.machine_info())
        scenario.write_block(w, scenario.bt.PL_V9, scenario.process_list())
        for tid, fds in scenario.FDS.items():
            scenario.write_block(w, scenario.bt.FDL_V2, scenario.fd_list(tid, fds))
        w.write_event_list(events)
    data = EventData(scaptool.open(path))
    rows = np.flatnonzero(data.visible)
    assert len(rows) == len(calls)
    got, _ = rendered_texts(data, "evt.info", None, rows)
    expected = _reference(data, "evt.info", None, rows)
    _assert_same(got.to_list(), expected, rows, "paths")
    assert any("a.txt(/var/www/html/a.txt)" in t for t in expected)
