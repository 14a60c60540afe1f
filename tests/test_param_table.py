"""scap.param_table: every parameter's place read once gives what events.param_slices gives,
parameter by parameter (the walk over each event's length array is the oracle)."""
import numpy as np
import pytest

from conftest import corpus_captures, need_capture
from scaptool import scap
from scaptool.scap.events import param_slices
from scaptool.scap.param_table import ParamTable


def _same(got, want):
    for a, b in zip(got, want):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("path", corpus_captures())
def test_every_parameter_of_every_event(path):
    capture = scap.open(need_capture(path))
    h = capture.headers
    table = ParamTable(capture.buffer, h)
    top = int(h.nparams.max()) if len(h) else 0
    for k in range(-1, top + 2):
        _same(table.slices(k), param_slices(capture.buffer, h, k))
    # one position per event, as the renderers and the state ask
    index = np.random.default_rng(7).integers(-1, top + 1, size=len(h))
    _same(table.slices(index), param_slices(capture.buffer, h, index))


def test_chunks_answer_from_their_table():
    """A chunk of a reading keeps one table; its answers are the walk's."""
    from conftest import corpus_capture
    from scaptool.query.chunks import event_data_chunks
    for data in event_data_chunks(corpus_capture("sysdig-examples-nginx"), 101):
        chunk = data.capture
        for k in (0, 1, 3):
            _same(chunk.param_slices(k), param_slices(chunk.buffer, chunk.headers, k))
        assert "_param_table" in chunk.__dict__
