"""Enter/exit pairing and evt.latency, against sysdig's own evt.latency on the corpus."""
import re

import numpy as np
import pytest

import scap
from conftest import corpus_captures, corpus_path, need_capture
from query import pairing
from query.pairing import enter_rows, enter_rows_at, latency


def test_pairs_within_a_thread_only():
    # tid 1: open> (2), tid 2: read> (6), tid 1: open< (3), tid 2: switch (152), tid 2: read< (7)
    types = np.array([2, 6, 3, 152, 7], dtype=np.uint16)
    tids = np.array([1, 2, 1, 2, 2])
    assert list(enter_rows(types, tids)) == [-1, -1, 0, -1, 1]


def test_mismatched_exit_is_unpaired():
    types = np.array([2, 7], dtype=np.uint16)  # open> then read< on the same thread
    assert list(enter_rows(types, np.array([5, 5]))) == [-1, -1]


def test_latency():
    ts = np.array([100, 150, 400], dtype=np.uint64)
    assert list(latency(ts, np.array([-1, -1, 1]))) == [0, 0, 250]


def test_switch_shows_its_threads_last_latency():
    # tid 1: read> read< switch ; tid 2: switch
    types = np.array([6, 7, 152, 152], dtype=np.uint16)
    tids = np.array([1, 1, 1, 2])
    ts = np.array([10, 35, 50, 60], dtype=np.uint64)
    assert list(latency(ts, enter_rows(types, tids), types, tids)) == [0, 25, 25, 0]


@pytest.mark.parametrize("windows", [(64, 1024), (1, 3), ()])
def test_enter_rows_at_some_rows_is_enter_rows(monkeypatch, windows):
    """Near enters, far ones, missing ones, other threads in between: whichever way an exit
    is paired (the windows just before it, or the pass over its thread's events), the answer
    is enter_rows'."""
    monkeypatch.setattr(pairing, "_WINDOWS", windows)
    rng = np.random.default_rng(7)
    n = 5000
    types = rng.choice(np.array([2, 3, 6, 7, 152, 153, 292, 293], dtype=np.uint16), size=n)
    tids = rng.integers(1, 6, size=n)
    tids[rng.random(n) < 0.05] = -1
    expected = enter_rows(types, tids)
    assert list(enter_rows_at(types, tids, np.arange(n))) == list(expected)
    some = rng.choice(n, size=200, replace=False)
    assert list(enter_rows_at(types, tids, some)) == list(expected[some])
    assert len(enter_rows_at(types, tids, [])) == 0


@pytest.mark.parametrize("path", corpus_captures())
def test_latency_matches_sysdig(path):
    path = need_capture(path)
    cap = scap.open(path)
    h = cap.headers
    lat = latency(h.ts, enter_rows(h.type, h.tid), h.type, h.tid)
    row_of = {int(n): i for i, n in enumerate(cap.event_numbers) if n}
    checked = 0
    text = (corpus_path() / "expected" / path.stem / "fields_rich.txt").read_bytes()
    # evt.num first; evt.latency just before evt.is_io and the command line (proc.exe and
    # fd.name may hold spaces, so find the fields by their shapes)
    shape = re.compile(rb"^(\d+) .*? [<>] \S+ (?:true|false) .* (\d+) (?:true|false)(?: |$)")
    for line in text.splitlines():
        m = shape.match(line)
        if not m:
            continue
        assert lat[row_of[int(m.group(1))]] == int(m.group(2)), line
        checked += 1
    assert checked or not text
