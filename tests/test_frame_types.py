"""Frame dtypes (query.frame_types): every catalog field gets the dtype its sysdig type names,
and filters over typed frames still mean what sysdig means."""
import pathlib

import polars as pl
import pytest

import scaptool
from conftest import corpus_captures, need_capture
from scaptool.query import frame_types
from scaptool.query.api import _data
from scaptool.query.fields import FIELDS, columns

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = [ROOT / "fixtures" / "php-database-error.scap",
            ROOT / "fixtures" / "php-database-error-live.scap"]
ARGUMENT_FREE = [name for name, d in FIELDS.items() if d.arg != "required"]


def test_every_catalog_type_has_a_dtype():
    types = {d.type for d in FIELDS.values()} - {"DYNAMIC"}
    assert types <= set(frame_types.DTYPES)
    assert set(frame_types.CLOCKS) | set(frame_types.NUMBERS_AS_TEXT) <= set(FIELDS)


def _typed_as_number(definition):
    dtype = frame_types.frame_dtype(definition)
    inner = dtype.inner if isinstance(dtype, pl.List) else dtype
    return inner.is_numeric()


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_numbers_as_text_lists_every_number_the_engine_gives_as_text(path):
    with scaptool.open(path) as cap:
        engine = columns(_data(cap), ARGUMENT_FREE)
    as_text = {name for name in ARGUMENT_FREE if _typed_as_number(FIELDS[name])
               and engine[name].dtype in (pl.String, pl.List(pl.String))}
    assert as_text == set(frame_types.NUMBERS_AS_TEXT)


def _check_frame_dtypes(path):
    with scaptool.open(path) as cap:
        frame = scaptool.frame(cap, ARGUMENT_FREE, all_events=True)
    for name in ARGUMENT_FREE:
        assert frame.schema[name] == frame_types.frame_dtype(FIELDS[name]), name


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_frame_columns_have_the_declared_dtype(path):
    _check_frame_dtypes(path)


@pytest.mark.parametrize("capture", corpus_captures())
def test_frame_columns_have_the_declared_dtype_on_the_corpus(capture):
    _check_frame_dtypes(need_capture(capture))


@pytest.mark.parametrize("text", [
    "evt.time contains 10:15:02.2", "evt.time.s = 10:15:02",
    "evt.datetime startswith '2026-11-24 10:15:02.02'", "evt.datetime.s = '2026-11-24 10:15:02'",
    "evt.time.iso8601 contains T10:15:02.21", "proc.fdusage = 0.2", "fd.dev = 801",
    "proc.apid = 800", "proc.apid contains 80", "evt.deltatime > 1000000",
])
def test_filter_expr_over_a_typed_frame_agrees_with_the_engine(text, utc):
    with scaptool.open(FIXTURES[0]) as cap:
        fields = scaptool.filter_fields(text)
        typed = scaptool.frame(cap, ["evt.num", *fields])
        assert all(typed.schema[f] != pl.String for f in fields)
        by_expr = typed.filter(scaptool.filter_expr(text))["evt.num"]
        by_engine = scaptool.frame(cap, "evt.num", text)["evt.num"]
    assert by_expr.len() > 0
    assert by_expr.equals(by_engine)


def test_filter_expr_still_reads_columns_that_hold_the_engine_text():
    # a frame made some other way, with the text sysdig prints: compared as it is
    frame = pl.DataFrame({"evt.time": ["10:15:02.5", "11:00:00.0"], "fd.dev": ["801", "0"]})
    assert frame.filter(scaptool.filter_expr("evt.time startswith 10: and fd.dev=801")) \
        .height == 1
