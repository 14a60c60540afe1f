"""`scaptool export`: captures as Parquet, Arrow IPC, CSV, NDJSON and Parquet datasets, read
back by Polars, DuckDB and pyarrow; typed columns; several captures; bounded memory; nothing
at the output's name unless complete; one-line errors."""
import os
import pathlib
import subprocess
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from conftest import corpus_captures, need_capture
from hostile import run_bounded
from scaptool import query
from scaptool.query.export import EXPORT_FIELDS

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
SEED = FIXTURES / "php-database-error.scap"
LIVE = FIXTURES / "php-database-error-live.scap"
SCAPTOOL = [sys.executable, "-m", "scaptool"]
# the default line's fields, and one of each other kind: a byte buffer, a port, an address,
# an fd's name, a latency, a process's arguments
CORPUS_FIELDS = [*EXPORT_FIELDS, "evt.rawtime", "evt.buffer", "fd.name", "fd.sport", "fd.sip",
                 "evt.latency", "evt.res", "proc.pid", "proc.args", "user.name"]


def export(*args):
    done = subprocess.run([*SCAPTOOL, "export", *map(str, args)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done


@pytest.mark.parametrize("capture", corpus_captures())
def test_every_corpus_capture_reads_back_as_its_frame(capture, tmp_path):
    capture = need_capture(capture)
    out = tmp_path / "out.parquet"
    import scaptool   # (in this process: the command line's own path is tested below)
    scaptool.export(capture, out, CORPUS_FIELDS)
    assert_frame_equal(pl.read_parquet(out), query.frame(capture, CORPUS_FIELDS))


@pytest.mark.parametrize("name", ["out.parquet", "out.arrow", "out.csv", "out.ndjson", "ds/"])
def test_each_kind_reads_back_in_polars_duckdb_and_pyarrow(tmp_path, name):
    fields = ["evt.num", "evt.time", "proc.name", "evt.type", "fd.name", "evt.buffer",
              "evt.latency"]
    out = str(tmp_path / name) + ("/" if name.endswith("/") else "")
    export(LIVE, "-o", out, "-f", ",".join(fields), "evt.type in (read, write)")
    expected = query.frame(LIVE, fields, "evt.type in (read, write)")
    assert expected.height > 100
    path = str(out)
    if name.endswith(".csv"):
        ours = pl.read_csv(path)
        import pyarrow.csv as pacsv
        table = pacsv.read_csv(path)
        from_duck = duckdb.sql(f"SELECT count(*), sum(\"evt.latency\") FROM read_csv('{path}')")
    elif name.endswith(".ndjson"):
        ours = pl.read_ndjson(path)
        import pyarrow.json as pajson
        table = pajson.read_json(path)
        from_duck = duckdb.sql(f"SELECT count(*), sum(\"evt.latency\") "
                               f"FROM read_json('{path}', format='newline_delimited')")
    elif name.endswith(".arrow"):
        ours = pl.read_ipc(path)
        with pa.memory_map(path) as source:
            arrow_table = pa.ipc.open_file(source).read_all()
        table = arrow_table
        from_duck = duckdb.sql("SELECT count(*), sum(\"evt.latency\") FROM arrow_table")
    else:
        ours = pl.read_parquet(path if name.endswith(".parquet") else path + "*.parquet")
        table = (pq.read_table(path) if name.endswith(".parquet")
                 else pads.dataset(path).to_table())
        glob = path if name.endswith(".parquet") else path + "*.parquet"
        from_duck = duckdb.sql(f"SELECT count(*), sum(\"evt.latency\") FROM '{glob}'")
    assert ours.columns == fields
    assert ours.height == expected.height
    assert from_duck.fetchall()[0] == (expected.height, expected["evt.latency"].sum())
    if table is not None:
        assert table.num_rows == expected.height
    if name.endswith((".parquet", ".arrow", "/")):
        # typed as the frame, the bytes as captured
        assert_frame_equal(ours, expected)
        assert table.schema.field("evt.time").type == pa.timestamp("ns", "UTC")
        assert pa.types.is_binary(table.schema.field("evt.buffer").type) or \
            pa.types.is_large_binary(table.schema.field("evt.buffer").type)
    else:
        # text: the same values, a buffer as its UTF-8 text
        assert ours["evt.num"].to_list() == expected["evt.num"].to_list()
        assert ours["proc.name"].to_list() == expected["proc.name"].to_list()
        assert ours["evt.buffer"].to_list() == \
            expected.select(query.text("evt.buffer"))["evt.buffer"].to_list()
        times = ours["evt.time"]
        if times.dtype == pl.String:
            times = times.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", time_unit="ns")
        assert times.dt.epoch("ns").to_list() == expected["evt.time"].dt.epoch("ns").to_list()


def test_several_captures_get_a_capture_column(tmp_path):
    out = tmp_path / "both.parquet"
    export(SEED, LIVE, "-o", out)
    both = pl.read_parquet(out)
    assert both.columns == ["capture", "hostname", *EXPORT_FIELDS]
    assert dict(both.select("capture", "hostname").unique().iter_rows()) == \
        {str(SEED): "web01", str(LIVE): "vm"}   # (their machine blocks' hostnames)
    counts = dict(both.group_by("capture").len().iter_rows())
    assert counts == {str(SEED): query.frame(SEED).height, str(LIVE): query.frame(LIVE).height}
    rows = duckdb.sql(f"SELECT count(DISTINCT capture) FROM '{out}'").fetchall()[0]
    assert rows == (2,)


def test_no_event_selected_is_an_empty_typed_table(tmp_path):
    out = tmp_path / "none.parquet"
    export(SEED, "-o", out, "proc.name=nothing-has-this-name")
    empty = pl.read_parquet(out)
    assert empty.height == 0
    assert empty.schema == query.frame(SEED, EXPORT_FIELDS).schema


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """200 copies of the live fixture, one after the other (~240,000 events, 19 MB)."""
    path = tmp_path_factory.mktemp("export") / "big.scap"
    args = [a for _ in range(200) for a in ("-r", str(LIVE))]
    subprocess.run([*SCAPTOOL, *args, "-w", str(path)], check=True)
    return path


def test_memory_follows_the_chunk_not_the_capture(tmp_path, big):
    """Exported under 500 MB (the reliability bound), read a chunk at a time."""
    out = tmp_path / "big.parquet"
    status, seconds, peak_mb, _, err = run_bounded(
        [*SCAPTOOL, "export", big, "-o", out, "-f", ",".join(CORPUS_FIELDS)], timeout=120)
    assert status == 0, err
    assert peak_mb < 500, peak_mb
    assert pq.ParquetFile(out).metadata.num_rows == 200 * query.frame(LIVE).height


def test_a_damaged_capture_leaves_the_previous_file(tmp_path):
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous")
    bad = tmp_path / "bad.scap"
    bad.write_bytes(b"\x00" * 100)
    done = subprocess.run([*SCAPTOOL, "export", bad, "-o", out], capture_output=True, text=True)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "bad.scap" in done.stderr
    assert "Traceback" not in done.stderr
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.scap", "out.parquet"]


def test_a_truncated_capture_keeps_what_came_before(tmp_path):
    cut = tmp_path / "cut.scap"
    cut.write_bytes(LIVE.read_bytes()[:60000])
    out = tmp_path / "cut.parquet"
    done = subprocess.run([*SCAPTOOL, "export", cut, "-o", out], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "keeping everything before it" in done.stderr
    assert 0 < pl.read_parquet(out).height < query.frame(LIVE).height


@pytest.mark.parametrize("args, says", [
    (["-o", "{tmp}/x.txt"], "x.txt: cannot tell what to write from the name"),
    (["-o", "{tmp}/x.parquet", "-f", "no.such.field"], "-f no.such.field: no such field"),
    (["-o", "{tmp}/x.parquet", "evt.type=="], "filter: expected a value"),
    (["-o", "{tmp}/missing/x.parquet"], "no such directory"),
    (["-o", "{tmp}/full/"], "the folder is not empty"),
])
def test_bad_requests_are_one_line(tmp_path, args, says):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    done = subprocess.run([*SCAPTOOL, "export", SEED, *[a.format(tmp=tmp_path) for a in args]],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_a_missing_capture_is_named(tmp_path):
    done = subprocess.run([*SCAPTOOL, "export", tmp_path / "nothere.scap", "-o",
                           tmp_path / "x.parquet"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == f"scaptool: {tmp_path / 'nothere.scap'}: no such file"


def test_the_notebook_function(tmp_path):
    import scaptool
    out = tmp_path / "api.arrow"
    assert scaptool.export(SEED, out, ["evt.num", "proc.name"], "proc.name=mysqld") == 28
    assert pl.read_ipc(out)["proc.name"].unique().to_list() == ["mysqld"]


def test_a_bar_on_a_terminal(tmp_path):
    from test_progress import ENV, frames, on_a_terminal
    big = tmp_path / "big.scap"
    args = [a for _ in range(40) for a in ("-r", str(LIVE))]
    subprocess.run([*SCAPTOOL, *args, "-w", str(big)], check=True)
    screen, status = on_a_terminal([*SCAPTOOL, "export", big, "-o", tmp_path / "o.parquet"],
                                   env=dict(ENV, SCAPTOOL_PROGRESS_DELAY="0"))
    assert status == 0, screen
    assert any(b"exporting" in text and b"%|" in text for text in frames(screen)), screen
    # and none in a pipe
    done = subprocess.run([*SCAPTOOL, "export", big, "-o", tmp_path / "p.parquet"],
                          capture_output=True, env=dict(os.environ, SCAPTOOL_PROGRESS_DELAY="0"))
    assert done.returncode == 0 and done.stderr == b""
