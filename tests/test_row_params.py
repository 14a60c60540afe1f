"""Capture.param_lists (many parameters of a few events at once, as a thread replay reads them)
gives what Capture.param gives for each name, on every corpus capture and on our fixtures."""
import pathlib

import numpy as np
import pytest

from scaptool import scap
from scaptool.scap.row_params import RowParams
from tests.conftest import corpus_captures, need_capture

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"

# numbers, strings, byte buffers, fds, addresses and tuples, flags, a dynamic parameter
NAMES = ["res", "flags", "pid", "ptid", "vtid", "vpid", "exe", "comm", "args", "uid", "gid",
         "cwd", "fdlimit", "pgft_maj", "vm_size", "cgroups", "loginuid", "env", "tty", "vpgid",
         "pgid", "path", "cur", "newcur", "resource", "filename", "fd", "data", "size", "name",
         "addr", "tuple", "dirfd", "mode", "newfd", "ID", "nativeID", "sig", "status", "val",
         "no-such-parameter"]


def _check(path, seed):
    capture = scap.open(path)
    if len(capture) == 0:
        return
    rng = np.random.default_rng(seed)
    # random rows, out of order and repeated: param_lists answers in the order asked
    rows = rng.choice(len(capture), min(len(capture), 2000), replace=True)
    got = capture.param_lists(NAMES, rows)
    assert list(got) == NAMES
    for name in NAMES:
        assert got[name] == capture.param(name, rows=rows).to_list(), name


@pytest.mark.parametrize("path", corpus_captures())
def test_param_lists_match_param_on_the_corpus(path):
    _check(need_capture(path), seed=len(path.name))


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.scap")), ids=lambda p: p.stem)
def test_param_lists_match_param_on_the_fixtures(path):
    _check(path, seed=7)


def test_no_rows_gives_empty_lists():
    capture = scap.open(sorted(FIXTURES.glob("*.scap"))[0])
    assert capture.param_lists(["res", "data"], []) == {"res": [], "data": []}


def test_row_params_slices_match_param_slices():
    capture = scap.open(sorted(FIXTURES.glob("*.scap"))[0])
    rows = np.arange(len(capture))
    where = RowParams(capture.buffer, capture.headers.take(rows))
    nparams = capture.headers.nparams.astype(np.int64)
    for index in (0, 1, 2, 5):
        per_event = np.where(nparams > index, index, -1)
        expected = capture.param_slices(per_event)
        for got, want in zip(where.slices(per_event), expected):
            assert np.array_equal(got, want)
