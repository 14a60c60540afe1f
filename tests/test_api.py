"""The notebook API: frames of catalog fields, filters as Polars expressions, batches."""
import pathlib

import polars as pl
import pytest

from scaptool import query
from scaptool import scap
from conftest import corpus_capture, corpus_path
from scaptool.query.filter import FilterError
from scaptool.query.select import filter_mask

FIXTURE = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "php-database-error.scap"


def test_frame_with_filter_on_the_fixture():
    cap = scap.open(FIXTURE)
    f = query.frame(cap, ["evt.num", "proc.name", "fd.name", "evt.buffer"],
                    "evt.type=write and fd.name contains .log")
    assert f.columns == ["evt.num", "proc.name", "fd.name", "evt.buffer"]
    assert f["proc.name"].to_list() == ["php-fpm7.4", "php-fpm7.4"]
    assert f["fd.name"].unique().to_list() == ["/var/log/php/app.log"]
    assert b"Database error" in f["evt.buffer"].drop_nulls()[0]


def test_a_field_both_asked_for_and_filtered_on():
    """It used to be computed twice, and the frame refused the second column."""
    f = query.frame(FIXTURE, ["proc.name", "evt.type"], "proc.name=mysqld")
    assert f.height == 28 and f["proc.name"].unique().to_list() == ["mysqld"]


def test_filter_expr_on_a_frame():
    cap = scap.open(FIXTURE)
    f = query.frame(cap, ["proc.name", "evt.type", "evt.buffer", "fd.sport"])
    hits = f.filter(query.filter_expr('evt.buffer contains "Access denied" and fd.sport=3306'))
    assert hits["proc.name"].to_list() == ["mysqld", "php-fpm7.4"]
    assert hits["evt.type"].to_list() == ["write", "read"]


def test_batches_cover_the_frame():
    cap = scap.open(FIXTURE)
    whole = query.frame(cap, ["evt.num", "evt.type"])
    parts = list(query.batches(cap, ["evt.num", "evt.type"], size=7))
    assert len(parts) == -(-whole.height // 7)
    assert pl.concat(parts).equals(whole)


def test_bad_filter_names_the_position():
    with pytest.raises(FilterError, match="position 10"):
        query.filter_expr("proc.name=")
    with pytest.raises(FilterError, match="unknown field 'proc.nam'"):
        query.filter_expr("proc.nam=x")


@pytest.mark.parametrize("text", [
    "fd.name contains /etc", "evt.type in (read, write) and proc.name startswith s",
    "not fd.name exists", "evt.latency > 100000 or evt.failed=true",
])
def test_filter_expr_agrees_with_the_cli_path(text):
    cap = scap.open(corpus_path() / "captures" / "libs-curl-google.scap")
    fields = query.filter_fields(text)
    f = query.frame(cap, ["evt.num"] + fields, all_events=True)
    by_expr = f.filter(query.filter_expr(text))["evt.num"].to_list()
    mask = filter_mask(cap, text)
    assert by_expr == [n or None for n in cap.event_numbers[mask].tolist()]


def test_batches_read_the_capture_by_chunks():
    """batches() reads a chunk at a time with state carried: the same rows as frame(), from
    a path, an opened capture or a pipe, with chunks far smaller than the capture."""
    import os
    import threading
    path = corpus_capture("sysflow-ls")
    names = ["evt.num", "proc.name", "thread.tid", "fd.name", "evt.info"]
    whole = query.frame(path, names)
    by_path = list(query.batches(path, names, size=1000, chunk_events=997))
    assert all(b.height == 1000 for b in by_path[:-1]) and by_path[-1].height <= 1000
    assert pl.concat(by_path).equals(whole)
    with scap.open(path) as cap:
        assert pl.concat(query.batches(cap, names, chunk_events=3001)).equals(whole)
    read_end, write_end = os.pipe()

    def feed():
        with os.fdopen(write_end, "wb") as w:
            w.write(path.read_bytes())
    threading.Thread(target=feed, daemon=True).start()
    piped = pl.concat(query.batches(read_end, names, chunk_events=5000))
    os.close(read_end)
    assert piped.equals(whole)


def test_batches_of_a_damaged_capture_keep_what_came_before(tmp_path):
    cut = tmp_path / "cut.scap"
    cut.write_bytes(corpus_capture("sysflow-ls").read_bytes()[:600_000])
    with pytest.warns(scap.ScapWarning, match="truncated"):
        parts = list(query.batches(cut, ["evt.num", "evt.type"], chunk_events=500))
    with pytest.warns(scap.ScapWarning):
        assert pl.concat(parts).equals(query.frame(cut, ["evt.num", "evt.type"]))
