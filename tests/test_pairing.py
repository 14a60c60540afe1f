"""Enter/exit pairing and evt.latency, against sysdig's own evt.latency on the corpus."""
import re

import numpy as np
import pytest

from scaptool import scap
from scaptool.scap import sysdig0293
from conftest import corpus_captures, corpus_path, need_capture
from scaptool.query import pairing
from scaptool.query.pairing import enter_rows, latency, previous_event_rows, stored_enter_rows_at


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


def _stored_by_walking(types, tids, stored):
    """stored_enter_rows_at's rule, one event at a time as sysdig applies it: per thread, the
    last enter's type and the copy of the last stored enter, freed at every exit."""
    skips = sysdig0293.skips_reset()
    last_type, copy, out = {}, {}, []
    for r, (t, tid) in enumerate(zip(types.tolist(), tids.tolist())):
        if skips[t]:
            out.append(-1)
        elif t % 2 == 0:
            last_type[tid] = t
            if stored[r]:
                copy[tid] = r
            out.append(-1)
        else:
            c = copy.pop(tid, None)
            ok = last_type.get(tid) == t - 1 and c is not None and types[c] == t - 1
            out.append(c if ok else -1)
    return out


@pytest.mark.parametrize("windows", [(64, 1024), (1, 3), ()])
def test_stored_enter_rows_at_follows_sysdig_copy(monkeypatch, windows):
    """Near enters, far ones, missing ones, exits in between, enters not copied, other
    threads in between: whichever way the last event of a thread is found (the windows just
    before, or the pass over its thread's events), the answer is the walk's."""
    monkeypatch.setattr(pairing, "_WINDOWS", windows)
    rng = np.random.default_rng(7)
    n = 5000
    types = rng.choice(np.array([2, 3, 6, 7, 152, 153, 292, 293], dtype=np.uint16), size=n)
    tids = rng.integers(1, 6, size=n)
    tids[rng.random(n) < 0.05] = -1
    copied = rng.random(n) < 0.8
    expected = np.array(_stored_by_walking(types, tids, copied))
    everything = np.ones(n, dtype=bool)
    assert list(stored_enter_rows_at(types, tids, np.arange(n))) == \
        _stored_by_walking(types, tids, everything)
    got = stored_enter_rows_at(types, tids, np.arange(n), stored=lambda rows: copied[rows])
    assert list(got) == list(expected)
    assert (expected >= 0).sum() > 100 and (enter_rows(types, tids) >= 0).sum() > \
        (expected >= 0).sum()   # the rule is stricter than the pairing
    some = rng.choice(n, size=200, replace=False)
    assert list(stored_enter_rows_at(types, tids, some, stored=lambda rows: copied[rows])) == \
        list(expected[some])
    assert len(stored_enter_rows_at(types, tids, [])) == 0


def test_previous_event_rows_skips_the_switch():
    # tid 1: read> ; tid 2: read> ; tid 1: switch ; tid 1: read<
    types = np.array([6, 6, 152, 7], dtype=np.uint16)
    tids = np.array([1, 2, 1, 1])
    assert list(previous_event_rows(types, tids, [0, 1, 2, 3])) == [-1, -1, 0, 0]


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
