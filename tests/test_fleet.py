"""Many captures, one question (query/fleet.py): globs and folders, `capture` and `hostname`
columns, the same results in this process, in local workers and on a real Dask cluster (a
scheduler and two workers started here as processes of their own), a bad capture reported
without stopping the others, and a worker killed mid-run costing no capture."""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import polars as pl
import pytest

from conftest import corpus_path

from scaptool.query import fleet
from scaptool.query.export import export
from scaptool.query.sql import sql

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
PER_CAPTURE = ('SELECT capture, hostname, "proc.name", count(*) AS n FROM events '
               'GROUP BY ALL ORDER BY ALL')


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The fixtures in a folder tree, with a capture cut short and a file that is none."""
    root = tmp_path_factory.mktemp("fleet")
    (root / "node-b").mkdir()
    for k, path in enumerate(sorted(FIXTURES.glob("*.scap"))):
        shutil.copy(path, root / ("node-b" if k % 2 else "") / path.name)
    seed = (FIXTURES / "php-database-error.scap").read_bytes()
    (root / "node-b" / "cut-short.scap").write_bytes(seed[:3000])
    (root / "node-b" / "not-a-capture.scap").write_bytes(b"garbage")
    (root / "notes.txt").write_text("not a capture, by its name")
    return root


def _quiet(function, *args, **kwargs):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


# -- names of many captures ---------------------------------------------------------------------

def test_a_folder_is_every_capture_under_it(folder):
    found = fleet.expand([folder])
    assert len(found) == len(list(FIXTURES.glob("*.scap"))) + 2
    assert all(p.endswith(".scap") for p in found) and found == sorted(found)


def test_a_glob_crosses_folders_with_two_stars(folder):
    assert len(fleet.expand([f"{folder}/**/*.scap"])) == len(fleet.expand([folder]))
    assert all("node-b" not in p for p in fleet.expand([f"{folder}/*.scap"]))


def test_a_capture_named_twice_is_read_once(folder):
    one = str(folder / "node-b" / "cut-short.scap")
    assert fleet.expand([one, f"{folder}/node-b/cut*.scap"]) == [one]


def test_a_glob_matching_nothing_is_one_line(tmp_path):
    with pytest.raises(fleet.FleetError, match=r"nothing\*\.scap: no file matches"):
        fleet.expand([str(tmp_path / "nothing*.scap")])


# -- one question over them ---------------------------------------------------------------------

def test_every_table_says_which_capture_and_machine(folder):
    got = _quiet(sql, PER_CAPTURE, str(folder), jobs=1)
    assert got.columns[:2] == ["capture", "hostname"]
    captures = set(got["capture"])
    assert str(folder / "node-b" / "not-a-capture.scap") not in captures
    assert str(folder / "node-b" / "cut-short.scap") in captures   # (what it has is kept)
    hosts = dict(got.select("capture", "hostname").unique().iter_rows())
    assert hosts[str(folder / "php-database-error-live.scap")] == "vm"
    assert hosts[str(folder / "story-child-exit.scap")] == "web01"


def test_a_bad_capture_is_a_row_of_captures_and_a_warning(folder):
    from scaptool.scap.errors import ScapWarning
    with pytest.warns(ScapWarning, match="not-a-capture.scap: offset 0: not a scap capture"):
        table = sql("SELECT capture, error FROM captures WHERE error IS NOT NULL", str(folder),
                    jobs=1)
    assert table.rows() == [(str(folder / "node-b" / "not-a-capture.scap"),
                             table["error"][0])]
    assert "\n" not in table["error"][0]


def test_results_are_those_of_each_capture_alone(folder):
    together = _quiet(sql, PER_CAPTURE, str(folder), jobs=1)
    for path in fleet.expand([folder])[:4]:
        if "not-a-capture" in path:
            continue
        alone = _quiet(sql, 'SELECT "proc.name", count(*) AS n FROM events GROUP BY ALL '
                       'ORDER BY ALL', path)
        mine = together.filter(pl.col("capture") == path).drop("capture", "hostname")
        assert mine.equals(alone), path


def test_local_workers_give_what_this_process_gives(folder):
    here = _quiet(sql, PER_CAPTURE, str(folder), jobs=1)
    workers = _quiet(sql, PER_CAPTURE, str(folder), jobs=2)
    assert here.height > 10 and here.equals(workers)


def test_export_of_many_in_workers_is_the_export_in_this_process(folder, tmp_path):
    kwargs = dict(fields=["proc.name", "evt.type", "fd.name"], filter="evt.type=openat")
    captures = fleet.expand([folder])
    _quiet(export, captures, tmp_path / "here.parquet", jobs=1, **kwargs)
    _quiet(export, captures, tmp_path / "workers.parquet", jobs=2, **kwargs)
    here = pl.read_parquet(tmp_path / "here.parquet")
    assert here.columns == ["capture", "hostname", "proc.name", "evt.type", "fd.name"]
    assert here.height > 100
    assert here.equals(pl.read_parquet(tmp_path / "workers.parquet"))
    assert [p.name for p in tmp_path.iterdir()] == ["here.parquet", "workers.parquet"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["here.parquet", "workers.parquet"]


def _worker_dies(path):
    os._exit(3)   # (as a worker killed, or out of memory, ends)


def test_a_local_worker_that_dies_is_an_error_per_capture_not_a_traceback(folder):
    captures = fleet.expand([folder])[:3]
    results = fleet.run(_worker_dies, captures, jobs=2)
    assert [r.path for r in results] == captures
    assert all("a worker process died" in r.error for r in results)


def test_command_line_reports_the_bad_capture_and_goes_on(folder):
    done = subprocess.run([sys.executable, "-m", "scaptool", "sql",
                           "SELECT count(DISTINCT capture) AS n FROM events",
                           f"{folder}/**/*.scap", "--format", "csv", "--jobs", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stdout == f"n\n{len(fleet.expand([folder])) - 1}\n"
    errors = [line for line in done.stderr.splitlines() if "not-a-capture" in line]
    assert errors == [f"scaptool: {folder}/node-b/not-a-capture.scap: offset 0: not a scap "
                      "capture: no section header block at the start"]
    assert "Traceback" not in done.stderr


# -- on a Dask cluster --------------------------------------------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """`dask scheduler` and `dask worker` (no nanny: a worker killed stays dead) as processes
    of their own on localhost, as README.md says to start them."""

    def __init__(self, workers=2):
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        dask = [sys.executable, "-m", "dask"]
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.scheduler = subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1",
                                           "--port", str(self.port), "--no-dashboard"],
                                          **quiet)
        self.workers = [subprocess.Popen([*dask, "worker", self.address, "--nthreads", "1",
                                          "--no-nanny", "--no-dashboard", "--name",
                                          f"worker-{k}"], **quiet)
                        for k in range(workers)]
        self._wait_for(workers)

    def _wait_for(self, workers):
        from distributed import Client
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with Client(self.address, timeout=5) as client:
                    client.wait_for_workers(workers, timeout=max(1, deadline - time.monotonic()))
                    return
            except (OSError, TimeoutError):
                time.sleep(0.5)
        self.close()
        raise AssertionError(f"the cluster at {self.address} did not start in 60 s")

    def close(self):
        for process in [*self.workers, self.scheduler]:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cluster():
    started = LocalCluster()
    yield started
    started.close()


def test_the_cluster_gives_what_this_process_gives(folder, cluster):
    here = _quiet(sql, PER_CAPTURE, str(folder), jobs=1)
    there = _quiet(sql, PER_CAPTURE, str(folder), cluster=cluster.address)
    assert here.height > 10 and here.equals(there)
    errors = _quiet(sql, "SELECT capture FROM captures WHERE error IS NOT NULL", str(folder),
                    cluster=cluster.address)
    assert errors["capture"].to_list() == [str(folder / "node-b" / "not-a-capture.scap")]


def test_export_on_the_cluster_is_the_export_here(folder, cluster, tmp_path):
    captures = fleet.expand([folder])
    kwargs = dict(fields=["evt.num", "proc.name", "evt.type", "evt.rawres"],
                  filter="evt.failed=true")
    _quiet(export, captures, tmp_path / "here.parquet", jobs=1, **kwargs)
    _quiet(export, captures, tmp_path / "there.parquet", cluster=cluster.address, **kwargs)
    here = pl.read_parquet(tmp_path / "here.parquet")
    assert here.height > 10
    assert here.equals(pl.read_parquet(tmp_path / "there.parquet"))


def test_workers_read_captures_by_url_through_fsspec(folder, cluster):
    """A URL (here file://, the same path as s3:// or gcs:// takes with their fsspec
    packages) is listed by fsspec, and each worker copies its capture to a local file."""
    here = _quiet(sql, PER_CAPTURE, f"{folder}/*.scap", jobs=1)
    there = _quiet(sql, PER_CAPTURE, f"file://{folder}/*.scap", cluster=cluster.address)
    assert there["capture"].str.starts_with("file://").all()
    assert there.with_columns(pl.col("capture").str.strip_prefix("file://")).equals(here)


def test_a_table_chisel_on_the_cluster_is_the_table_here(folder, cluster):
    here = _scaptool("-r", str(folder), "-c", "topprocs_file", "--jobs", "1", status=(1,))
    there = _scaptool("-r", str(folder), "-c", "topprocs_file", "--cluster", cluster.address,
                      status=(1,))
    assert here.count("\n") > 5 and there == here


def test_a_scheduler_not_there_is_one_line(monkeypatch):
    """A FleetError (a ScapError: the command line prints it in one line, exit status 1)
    naming the address, once Dask gives up trying."""
    monkeypatch.setattr(fleet, "CONNECT_TIMEOUT_S", 1)
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(fleet.FleetError) as raised:
        sql("SELECT 1", str(FIXTURES / "php-database-error.scap"), cluster=address)
    assert isinstance(raised.value, fleet.ScapError)
    line = str(raised.value)
    assert line.startswith(f"{address}: cannot reach the Dask scheduler") and "\n" not in line


def test_a_worker_killed_mid_run_loses_no_capture(tmp_path):
    """The biggest corpus captures, several times each (the tasks last a second or more),
    read by two workers; one is killed once the first capture is done, whatever it is doing.
    The query completes, each capture in it once, as read in this process."""
    corpus = corpus_path() / "captures"
    biggest = sorted(corpus.glob("*.scap"), key=lambda p: -p.stat().st_size)[:4]
    for copy in range(3):
        for path in biggest:
            os.symlink(path, tmp_path / f"{copy}-{path.name}")
    query = 'SELECT capture, count(*) AS n, count(DISTINCT "proc.name") AS names ' \
            'FROM events GROUP BY ALL ORDER BY ALL'
    here = sql(query, str(tmp_path), jobs=1)
    started = LocalCluster()
    killed = []

    def kill_one(done, finished, total):
        if not killed:
            started.workers[0].send_signal(signal.SIGKILL)
            killed.append(finished)
    try:
        there = sql(query, str(tmp_path), cluster=started.address, on_done=kill_one)
        assert started.workers[0].wait(timeout=10) == -signal.SIGKILL
    finally:
        started.close()
    assert killed == [1]
    assert there["capture"].n_unique() == there.height == 12
    assert there.equals(here)


def _scaptool(*words, status=(0,)):
    done = subprocess.run([sys.executable, "-m", "scaptool", *words], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode in status, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def test_a_glob_in_r_reads_each_capture_as_several_r_do(folder):
    """-r with a glob, printing events: sysdig's reading of several -r (one after the
    other, numbered on), named once."""
    paths = fleet.expand([f"{folder}/*.scap"])
    assert len(paths) >= 3
    several = _scaptool(*[w for p in paths for w in ("-r", p)], "evt.type=openat")
    assert several.count("\n") > 20
    assert _scaptool("-r", f"{folder}/*.scap", "evt.type=openat") == several


def _table_rows(text):
    """A table chisel's header and rows (each: value column, the rest)."""
    lines = text.splitlines()
    assert lines[1] == "-" * 80
    return lines[0], [(line[:20], line[20:]) for line in lines[2:]]


@pytest.mark.parametrize("chisel", [["topprocs_file"], ["fdbytes_by", "proc.name"]],
                         ids=" ".join)
def test_a_table_chisel_over_a_folder_is_one_table_of_every_capture(folder, chisel):
    """Each row is one capture's own row of the chisel (its value and keys as the chisel
    prints them for that capture alone), with the host and capture after the keys, the
    biggest of all first; the same with one worker or two."""
    from scaptool.chisels.tables import extend
    fleet_table = _scaptool("-r", str(folder), "-c", *chisel, "--jobs", "2", status=(1,))
    header, rows = _table_rows(fleet_table)
    assert header.split()[-2:] == ["Host", "Capture"]
    keys = len(header) // 20 - 3
    alone = set()
    for path in fleet.expand([folder]):
        if "not-a-capture" in path:
            continue
        for value, rest in _table_rows(_scaptool("-r", path, "-c", *chisel,
                                                 status=(0, 1)))[1]:
            # (alone, the last key is printed whole; in the fleet's table, Capture is last)
            last = 20 * (keys - 1)
            alone.add((value, rest[:last] + extend(rest[last:]), path))
    captures = set()
    for value, rest in rows:
        host, capture = rest[20 * keys:20 * keys + 20].strip(), rest[20 * keys + 20:]
        assert (value, rest[:20 * keys], capture) in alone, (value, rest)
        assert host == ("vm" if "live" in capture else "web01")
        captures.add(capture)
    assert len(captures) > 1 and len(rows) <= len(alone)
    values = [_bytes_or_time(value) for value, _ in rows]
    assert values == sorted(values, reverse=True)
    assert fleet_table == _scaptool("-r", str(folder), "-c", *chisel, "--jobs", "1",
                                    status=(1,))


def _bytes_or_time(text):
    """A value as the table chisels print it (43.46KB, 1.47ms, 588B, 972ns), as a number."""
    import re
    number, unit = re.fullmatch(r"([\d.]+)\s*([A-Za-z]*)\s*", text).groups()
    scale = {"": 1, "B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "ns": 1, "us": 1e3,
             "ms": 1e6, "s": 1e9}[unit]
    return float(number) * scale
