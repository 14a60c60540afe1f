"""Fuzz the filter language: parsing, compiling to column expressions, and evaluating on the
seed story's events. A filter is either refused with a FilterError (one line, a position)
(FormatError for a field's argument it refuses, as -p does) or gives one bool per event.
Either way the command line's one-line message stays one line."""
import harness

harness.instrumented()

from scaptool.scap import error_line  # noqa: E402

import atheris  # noqa: E402

import fixture_chunk  # noqa: E402
from scaptool.query.field_catalog import FormatError  # noqa: E402
from scaptool.query.filter import FilterError  # noqa: E402
from scaptool.query.select import filter_mask  # noqa: E402


def test_one(data):
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    chunk = fixture_chunk.story()
    try:
        mask = filter_mask(chunk.capture, text, chunk)
    except (FilterError, FormatError) as e:   # (a field's argument: FormatError, as in -p)
        assert "\n" not in error_line(e)
        return
    assert len(mask) == len(chunk) and mask.dtype == bool


def seeds():
    import seeds as made
    return {f"filter-{k}": b"\x01" + text.encode() for k, text in enumerate(made.FILTERS)}


if __name__ == "__main__":
    harness.run(test_one, seeds)
