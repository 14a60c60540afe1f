"""`scaptool sql` and scaptool.sql(): DuckDB over the captures' tables (events with the fields
a query names, threads, processes, fds, connections, logs, syslog); the documented examples
answer their questions on the project's own capture of the seed story."""
import io
import json
import pathlib
import subprocess
import sys

import polars as pl
import pytest

import scaptool
from conftest import require_tool
from scaptool.query import sql as sqlmod
from scaptool.query.sql_examples import CHISEL_QUERIES, EXAMPLES

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
LIVE = FIXTURES / "php-database-error-live.scap"     # curl -> php -> MariaDB, for real
SEED = FIXTURES / "php-database-error.scap"
SCAPTOOL = [sys.executable, "-m", "scaptool"]


def run_sql(*args):
    return subprocess.run([*SCAPTOOL, "sql", *map(str, args)], capture_output=True, text=True)


def example(name):
    return scaptool.sql(EXAMPLES[name][1], LIVE)


def test_slowest_calls():
    rows = example("slowest-calls")
    assert rows.columns == ["proc.name", "evt.type", "calls", "worst_ms", "total_ms"]
    # curl waits in poll for the PHP page: the slowest call of the story
    assert rows.row(0)[:2] == ("curl", "poll")
    assert rows["worst_ms"].is_sorted(descending=True)


def test_bytes_per_connection():
    rows = example("bytes-per-connection").filter(pl.col("connection") != "")
    # each side of each connection, with the process that held it: what one side read the
    # other wrote
    got = {(r["proc.name"], r["connection"]): (r["bytes_in"], r["bytes_out"])
           for r in rows.iter_rows(named=True)}
    assert got == {
        ("mariadbd", "127.0.0.1:60472->127.0.0.1:3306"): (134, 180),
        ("php", "127.0.0.1:60472->127.0.0.1:3306"): (180, 134),
        ("php", "127.0.0.1:41884->127.0.0.1:8080"): (88, 197),
        ("curl", "127.0.0.1:41884->127.0.0.1:8080"): (197, 88),
    }


def test_around_a_log_line():
    rows = example("around-a-log-line")
    used = set(rows["fd.name"].to_list())
    # PHP's thread read MariaDB's refusal on its connection, and wrote the log
    assert "127.0.0.1:60472->127.0.0.1:3306" in used
    assert any(name.endswith("/app.log") for name in used)
    assert not any("libcurl" in name for name in used)   # curl's files are not its thread's


def test_errors_per_call():
    rows = example("errors-per-call")
    assert rows.row(0) == ("openat", "ENOENT", 16)
    assert ("connect", "EINPROGRESS", 2) in rows.rows()


@pytest.mark.parametrize("chisel", sorted(CHISEL_QUERIES))
def test_the_chisel_queries_agree_with_sysdigs_chisels(chisel):
    """The same totals as sysdig's chisel prints (its units: B, KB, us, ms)."""
    sysdig = require_tool("sysdig")
    theirs = subprocess.run([sysdig, "-r", str(LIVE), "-c", chisel], capture_output=True,
                            text=True, check=True).stdout.splitlines()[2:]
    ours = scaptool.sql(CHISEL_QUERIES[chisel], LIVE)
    assert len(ours) == len(theirs)
    for (key, value), line in zip(ours.rows(), theirs):
        words = line.split()
        assert key == (words[1] if chisel == "topprocs_file" else words[-1])
        assert _sysdig_unit(value, chisel) == words[0]


def _sysdig_unit(value, chisel):
    """A total as the chisels print it (scaptool's own copies of their formats, which
    tests/test_chisels_tables.py holds to sysdig's)."""
    from scaptool.chisels.io import format_bytes, format_time_interval
    return format_time_interval(value) if chisel == "topscalls_time" else format_bytes(value)


def test_only_the_fields_named_are_computed():
    assert sqlmod.fields_named('SELECT "proc.name", x."fd.name", "nota.field", \'evt.type\' '
                               'FROM events x') == ["proc.name", "fd.name"]
    frame = scaptool.sql('SELECT * FROM events WHERE "fd.name" LIKE \'%app.log\'', LIVE)
    from scaptool.query.export import EXPORT_FIELDS
    assert frame.columns == [*EXPORT_FIELDS, "fd.name"]
    frame = scaptool.sql('SELECT "proc.name", count(*) AS n FROM events GROUP BY 1', LIVE)
    assert dict(frame.rows()) == dict(
        scaptool.frame(LIVE, ["proc.name"]).group_by("proc.name").len().rows())


def test_thread_and_process_versions():
    """pid 1817 runs python3, which execs curl: two versions, the second from the exec,
    ended by the exit."""
    versions = scaptool.sql('SELECT "proc.name", valid_from, valid_to FROM processes '
                            'WHERE "proc.pid" = 1817 ORDER BY valid_from', LIVE)
    assert versions["proc.name"].to_list() == ["python3", "curl"]
    assert versions["valid_to"][0] == versions["valid_from"][1]
    exits = scaptool.frame(LIVE, ["evt.time"], "evt.type=procexit and thread.tid=1817")
    assert versions["valid_to"][1] == exits["evt.time"][0]
    threads = scaptool.sql('SELECT DISTINCT "thread.tid" FROM threads WHERE "proc.pid" = 1767',
                           LIVE)
    assert sorted(threads["thread.tid"]) == [1767, 1777, 1794]   # MariaDB's threads seen


def test_fd_versions_end_at_their_close():
    fds = scaptool.sql('SELECT "fd.name", valid_from, valid_to FROM fds '
                       'WHERE "fd.name" LIKE \'%/app.log\'', LIVE)
    assert fds.height == 1
    closes = scaptool.frame(LIVE, ["evt.time"], "evt.type=close and evt.dir=< and "
                            "fd.name contains app.log")
    assert fds["valid_to"][0] == closes["evt.time"][0]


def test_logs_are_spy_logs_lines():
    logs = scaptool.sql("SELECT \"proc.name\", \"fd.name\", line FROM logs", LIVE)
    shown = subprocess.run([*SCAPTOOL, "-r", LIVE, "-c", "spy_logs"], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert [" ".join(row) for row in logs.rows()] == shown


def test_syslog(tmp_path):
    from tests.test_fields_syslog import write_capture
    path = tmp_path / "syslog.scap"
    write_capture(path)
    rows = scaptool.sql('SELECT "syslog.facility.str", "syslog.severity.str", '
                        '"syslog.message" FROM syslog', path)
    assert rows.height == scaptool.frame(path, ["evt.num"], "syslog.facility exists").height
    assert rows.height >= 192
    assert rows["syslog.facility.str"].n_unique() >= 24   # (and what an odd PRI decodes to)
    assert rows["syslog.severity.str"].n_unique() == 8


def test_several_captures_have_a_capture_column():
    counts = scaptool.sql("SELECT capture, count(*) AS n FROM events GROUP BY 1 ORDER BY 1",
                          [LIVE, SEED])
    assert counts.rows() == sorted([(str(LIVE), scaptool.frame(LIVE).height),
                                    (str(SEED), scaptool.frame(SEED).height)])


def test_the_command_line_formats():
    query = 'SELECT "proc.name", count(*) AS n FROM events GROUP BY 1 ORDER BY n DESC'
    table = run_sql(query, LIVE)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["proc.name", "n"] and set(lines[1]) <= {"-", " "}
    assert lines[2].split()[0] == "curl"
    as_csv = pl.read_csv(io.StringIO(run_sql(query, LIVE, "--format", "csv").stdout))
    as_json = json.loads(run_sql(query, LIVE, "--format", "json").stdout)
    as_ndjson = [json.loads(line) for line in
                 run_sql(query, LIVE, "--format", "ndjson").stdout.splitlines()]
    assert as_csv.rows() == [tuple(r.values()) for r in as_json] == \
        [tuple(r.values()) for r in as_ndjson]
    assert [line.split() for line in lines[2:]] == [[a, str(b)] for a, b in as_csv.rows()]
    examples = run_sql("--examples")
    assert all(question in examples.stdout for question, _ in EXAMPLES.values())


@pytest.mark.parametrize("query, says", [
    ("SELEC 1", "scaptool: sql: Parser Error: syntax error at or near \"SELEC\""),
    ("SELECT nothing FROM events", "Referenced column \"nothing\" not found"),
])
def test_a_bad_query_is_one_line(query, says):
    done = run_sql(query, LIVE)
    assert done.returncode == 2
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_missing_capture_is_named(tmp_path):
    done = run_sql("SELECT 1", tmp_path / "gone.scap")
    assert done.returncode == 1
    assert done.stderr.strip() == f"scaptool: {tmp_path / 'gone.scap'}: no such file"


def test_text_from_the_capture_cannot_drive_the_terminal():
    done = run_sql("SELECT chr(27) || '[2J' AS s", LIVE)
    assert done.stdout.splitlines()[2] == ".[2J"


def test_the_readme_query_prints_what_the_readme_shows():
    import re
    root = FIXTURES.parent
    text = (root / "README.md").read_text()
    command, shown = re.search(r"```sh\n(scaptool sql 'SELECT p\..*?)```\n```\n(.*?)```",
                               text, flags=re.S).groups()
    done = subprocess.run(["bash", "-c", command.replace("scaptool", " ".join(SCAPTOOL), 1)],
                          capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown
