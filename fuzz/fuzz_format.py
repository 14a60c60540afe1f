"""Fuzz -p formats: parsing (field tokens, widths, escapes, the leading '*') and the lines,
plain and JSON, made with them on the seed story's events. A format is either refused with a
FormatError or gives a line (or None) per event."""
import harness

harness.instrumented()

from scaptool.scap import error_line  # noqa: E402

import atheris  # noqa: E402
import numpy as np  # noqa: E402

import fixture_chunk  # noqa: E402
from scaptool.query.field_catalog import FormatError  # noqa: E402
from scaptool.query.format import format_lines, json_lines, parse_format  # noqa: E402


def test_one(data):
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    chunk = fixture_chunk.story()
    rows = np.arange(len(chunk))
    try:
        fmt = parse_format(text)
    except FormatError as e:
        assert "\n" not in error_line(e)
        return
    try:   # (a field's argument is checked when its values are made, as in sysdig)
        lines = format_lines(chunk, fmt, rows)
    except FormatError as e:
        assert "\n" not in error_line(e)
        return
    assert len(lines) == len(rows)
    assert len(json_lines(chunk, fmt, rows)) == len(rows)


def seeds():
    import seeds as made
    return {f"format-{k}": b"\x01" + text.encode() for k, text in enumerate(made.FORMATS)}


if __name__ == "__main__":
    harness.run(test_one, seeds)
