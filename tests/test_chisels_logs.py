"""spy_logs, its export of the events around each log line, `scaptool slice`, explain, and
chisels in general (argument rules, a user's chisel file), on a capture built for the test.

The capture: the seed scenario's machine and processes (fixtures/make_scenario.py), then a
php-fpm worker (tid 812) writing two log lines 100 ms apart, with events of its own placed
exactly on, just inside and just outside +-5 ms of the first one, and events of other threads
at the same moments (which no export may take).
"""
import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from scaptool import scap
from scaptool.chisels import Arg, ChiselError, REGISTRY, chisel
from scaptool.chisels.run import split_words, take_arguments
from tests.conftest import corpus_capture, require_tool

ROOT = pathlib.Path(__file__).resolve().parent.parent
MS = 10**6


def _scenario_module():
    spec = importlib.util.spec_from_file_location("make_scenario",
                                                  ROOT / "fixtures" / "make_scenario.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


S = _scenario_module()
WORKER, MYSQLD, INNODB = S.WORKER, S.MYSQLD, S.INNODB
FIRST = 1000 * MS                 # the first log write's exit, ns after T0
SECOND = FIRST + 100 * MS
LINE1 = b"[24-Nov-2026 10:15:03] WARNING: slow query\n"
LINE2 = b"[24-Nov-2026 10:15:03] ERROR: second failure\n"


def _sleep(ts, tid):
    return [(ts, tid, "nanosleep", ">", dict(interval=MS)),
            (ts + 1, tid, "nanosleep", "<", dict(res=0))]


def _log_write(ts_exit, line):
    return [(ts_exit - 1000, WORKER, "write", ">", dict(fd=S.LOG_FD, size=len(line))),
            (ts_exit, WORKER, "write", "<", dict(res=len(line), data=line))]


def _events():
    plan = []
    plan += _sleep(FIRST - 5 * MS - 2, WORKER)   # ends 1 ns before the window: outside
    plan += _sleep(FIRST - 5 * MS, WORKER)       # starts on the window's edge: inside
    plan += _sleep(FIRST - 2 * MS, MYSQLD)       # another thread: never exported
    plan += _log_write(FIRST, LINE1)
    plan += _sleep(FIRST + 5 * MS - 1, WORKER)   # ends on the far edge: inside
    plan += _sleep(FIRST + 5 * MS + 1, WORKER)   # outside
    plan += _sleep(FIRST + 50 * MS, INNODB)
    plan += _log_write(SECOND, LINE2)
    plan += _sleep(SECOND + 1 * MS, WORKER)
    plan.sort(key=lambda e: e[0])
    return [S.event(ts, tid, name, d, **params) for ts, tid, name, d, params in plan]


@pytest.fixture(scope="module")
def capture_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("logs") / "two-log-lines.scap"
    with S.Writer(path) as w:
        w.write_section_header()
        S.write_block(w, S.bt.MI, S.machine_info())
        S.write_block(w, S.bt.IL_V2, S.interface_list())
        S.write_block(w, S.bt.UL_V2, S.user_list())
        S.write_block(w, S.bt.PL_V9, S.process_list())
        for tid, fds in S.FDS.items():
            S.write_block(w, S.bt.FDL_V2, S.fd_list(tid, fds))
        w.write_event_list(_events())
    return path


def scaptool(*args):
    out = subprocess.run([sys.executable, "-m", "scaptool", *map(str, args)], cwd=ROOT,
                         capture_output=True, text=True)
    return out


def _shown(path):
    """(ts, tid) of every event a reader shows in the capture."""
    cap = scap.open(path)
    from scaptool.query.api import _data
    rows = np.flatnonzero(_data(cap).visible)
    return sorted((int(cap.headers.ts[r]), int(cap.headers.tid[r])) for r in rows)


def _expected_window(path, moments, range_ms):
    cap = scap.open(path)
    out = []
    for ts, tid in zip(cap.headers.ts.tolist(), cap.headers.tid.tolist()):
        if any(t == tid and abs(ts - m) <= range_ms * MS for m, t in moments):
            out.append((ts, tid))
    return sorted(out)


def test_spy_logs_prints_each_log_line(capture_path):
    out = scaptool("-r", capture_path, "-c", "spy_logs")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "php-fpm7.4 /var/log/php/app.log [24-Nov-2026 10:15:03] WARNING: slow query",
        "php-fpm7.4 /var/log/php/app.log [24-Nov-2026 10:15:03] ERROR: second failure"]


def test_spy_logs_filter_and_export_take_the_thread_window_bounds_included(capture_path,
                                                                         tmp_path):
    dump = tmp_path / "request.scap"
    out = scaptool("-r", capture_path, "-c", "spy_logs", f"{dump} 5", "evt.buffer contains slow")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "php-fpm7.4 /var/log/php/app.log [24-Nov-2026 10:15:03] WARNING: slow query",
        "Writing events for 1 log entries"]
    moment = S.T0 + FIRST
    got = _shown(dump)
    assert got == _expected_window(capture_path, [(moment, WORKER)], 5)
    # the edges: on them inside, one ns further outside; other threads never
    times = {ts - moment for ts, _ in got}
    assert -5 * MS in times and 5 * MS in times
    assert -5 * MS - 1 not in times and 5 * MS + 1 not in times
    assert {tid for _, tid in got} == {WORKER}


def test_export_is_read_by_sysdig_with_the_same_events(capture_path, tmp_path):
    sysdig = require_tool("sysdig")
    dump = tmp_path / "both.scap"
    out = scaptool("-r", capture_path, "-c", "spy_logs", f"{dump} 5")
    assert out.returncode == 0, out.stderr
    printed = subprocess.run([sysdig, "-r", str(dump), "-p", "%evt.rawtime %thread.tid"],
                             capture_output=True, text=True, check=True).stdout.split("\n")
    seen = sorted(tuple(map(int, line.split())) for line in printed if line)
    expected = _expected_window(capture_path, [(S.T0 + FIRST, WORKER),
                                               (S.T0 + SECOND, WORKER)], 5)
    assert seen == expected == _shown(dump)
    # names still resolve in the export: the state came along
    names = subprocess.run([sysdig, "-r", str(dump), "-p", "%proc.name %fd.name",
                            "evt.type=write"], capture_output=True, text=True).stdout
    assert "php-fpm7.4 /var/log/php/app.log" in names


def test_slice_by_thread_and_time(capture_path, tmp_path):
    out_path = tmp_path / "slice.scap"
    result = scaptool("slice", capture_path, "-w", out_path, "--tid", WORKER,
                      "--from", str(S.T0 + FIRST - 5 * MS), "--to", str(S.T0 + FIRST))
    assert result.returncode == 0, result.stderr
    cap = scap.open(capture_path)
    expected = sorted((ts, tid) for ts, tid in zip(cap.headers.ts.tolist(),
                                                   cap.headers.tid.tolist())
                      if tid == WORKER and S.T0 + FIRST - 5 * MS <= ts <= S.T0 + FIRST)
    assert _shown(out_path) == expected and len(expected) == 4


def test_slice_around_a_filter_matches_the_export(capture_path, tmp_path):
    out_path = tmp_path / "around.scap"
    result = scaptool("slice", capture_path, "-w", out_path, "--around",
                      "evt.buffer contains second", "--window", "5")
    assert result.returncode == 0, result.stderr
    assert _shown(out_path) == _expected_window(capture_path, [(S.T0 + SECOND, WORKER)], 5)


def test_slice_relative_times_and_bad_time(capture_path, tmp_path):
    from scaptool.cli.slice import parse_time
    assert parse_time("1.5s", 100) == 100 + 1_500_000_000
    assert parse_time("+250ms", 0) == 250 * MS
    assert parse_time("2026-11-24T10:15:02", 0) == S.T0
    result = scaptool("slice", capture_path, "-w", tmp_path / "x.scap", "--from", "soon")
    assert result.returncode != 0 and "not a time" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "x.scap").exists()


def test_explain_surfaces_the_mysql_refusal_on_the_seed_fixture():
    out = scaptool("-r", ROOT / "fixtures" / "php-database-error.scap", "-c", "explain",
                   "evt.buffer contains 'Database error' and evt.is_io_write=true")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "write to /var/log/php/app.log: [24-Nov-2026 10:15:02] ERROR: Database error" in text
    assert "request    from 10.0.0.99:51000: GET /orders.php HTTP/1.1" in text
    assert "connected  to 127.0.0.1:3306" in text
    assert ("127.0.0.1:3306 answered: #28000Access denied for user 'shop'@'localhost' "
            "(using password: YES)  <- reads as an error") in text


def test_explain_on_the_test_capture_tells_the_window_only(capture_path):
    out = scaptool("-r", capture_path, "-c", "explain", "1",
                   "evt.buffer contains slow and evt.is_io_write=true")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("event ")
    assert "WARNING: slow query" in out.stdout and "second failure" not in out.stdout


def test_explain_needs_a_filter(capture_path):
    out = scaptool("-r", capture_path, "-c", "explain")
    assert out.returncode != 0 and "give a filter" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("words, expected", [
    # optional arguments only: the next word is taken unless the words read as a filter
    (["proc.name=nginx"], ({}, "proc.name=nginx")),
    (["out.scap 500", "evt.buffer contains x"],
     ({"dump_file_name": "out.scap", "dump_range_ms": "500"}, "evt.buffer contains x")),
    (["-x"], ({}, "-x")),
    ([], ({}, "")),
])
def test_spy_logs_argument_rules(words, expected):
    from scaptool.chisels import find
    assert take_arguments(find("spy_logs"), words) == expected


def test_argument_errors_and_quotes():
    from scaptool.chisels import find
    with pytest.raises(ChiselError, match="too many"):
        take_arguments(find("spy_logs"), ["a 1 disable_color extra"])
    with pytest.raises(ChiselError, match="wrong number"):
        take_arguments(find("around"), [])
    with pytest.raises(ChiselError, match="corrupted"):
        split_words("'unbalanced")
    assert split_words("'a b' `c d` e") == ["a b", "c d", "e"]


def test_user_chisel_from_a_file(capture_path, tmp_path):
    mine = tmp_path / "count_writes.py"
    mine.write_text(
        "from scaptool import Arg, chisel\n"
        "@chisel('count_writes', 'Misc', 'count write exits', "
        "args=[Arg('label', 'string', 'a word to print', True)])\n"
        "def count_writes(run):\n"
        "    rows = run.select('evt.type=write and evt.dir=<')\n"
        "    run.line(f\"{run.arg('label', 'writes')}: {len(rows)}\")\n")
    out = scaptool("-r", capture_path, "-c", mine, "total")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "total: 2\n"
    out = scaptool("-r", capture_path, "-c", mine, "proc.name=mysqld")
    assert out.stdout == "writes: 0\n"


def test_unknown_chisel_and_listing():
    out = scaptool("-r", "nothing.scap", "-c", "no_such_chisel")
    assert out.returncode != 0 and "unknown chisel" in out.stderr
    listing = scaptool("-cl").stdout
    assert "Category: Logs" in listing and "spy_logs" in listing and "explain" in listing
    info = scaptool("-i", "spy_logs").stdout
    assert "dump_range_ms" in info


def test_colours_only_when_asked(capture_path):
    from scaptool.chisels.run import run_chisel
    import io
    cap = scap.open(capture_path)
    plain, coloured = io.StringIO(), io.StringIO()
    run_chisel(cap, "spy_logs", [], out=plain)
    assert "\x1b[" not in plain.getvalue()  # not a terminal
    run = run_chisel(cap, "spy_logs", [], out=coloured, disable_color=False)
    assert run.color is False
    from scaptool.chisels.run import ChiselRun
    painted = io.StringIO()
    run = ChiselRun(cap, None, "", {}, painted, color=True)
    run.line(run.paint("red") + "x\x1b]0;title\x07")   # a colour of ours, a capture's escape
    assert painted.getvalue() == "\x1b[31mx.]0;title.\n"


def test_registry_decorator_registers():
    @chisel("test_only_chisel", "Misc", "for the test", args=[Arg("x", "int", "x", True)])
    def _run(run):
        pass
    assert REGISTRY["test_only_chisel"].args[0].name == "x"
    del REGISTRY["test_only_chisel"]


def test_spy_syslog_matches_sysdig_on_every_facility_and_severity(tmp_path):
    """The syslog capture of test_fields_syslog (all 192 facility.severity pairs, edge cases,
    writes that are not syslog): spy_syslog prints what sysdig's prints, line for line."""
    sysdig = require_tool("sysdig")
    from tests.test_fields_syslog import write_capture
    path = tmp_path / "syslog.scap"
    write_capture(path)
    ours = scaptool("-r", path, "-c", "spy_syslog")
    theirs = subprocess.run([sysdig, "-r", str(path), "-c", "spy_syslog"], capture_output=True)
    assert ours.returncode == 0, ours.stderr
    assert len(ours.stdout.splitlines()) > 192
    assert ours.stdout.encode() == theirs.stdout


def test_explain_on_the_live_capture_of_the_seed_story():
    """The story captured for real (fixtures/make_live_scenario.sh): PHP's log write is
    explained by MariaDB's refusal, read from the connection PHP opened just before."""
    out = scaptool("-r", ROOT / "fixtures" / "php-database-error-live.scap", "-c", "explain",
                   "evt.buffer contains 'Database error' and evt.is_io_write=true "
                   "and fd.name contains app.log")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("event ") and "Database error" in lines[0]
    text = "\n".join(lines)
    assert "request    from 127.0.0.1:" in text and "GET /orders.php HTTP/1.1" in text
    assert "connected  to 127.0.0.1:3306" in text
    assert ("127.0.0.1:3306 answered: #28000Access denied for user 'shop'@'localhost' "
            "(using password: YES)  <- reads as an error") in text


def test_slice_in_small_chunks_writes_what_the_whole_capture_gives(tmp_path, monkeypatch):
    """slice reads in chunks (two readings with --around): with chunks of a few events its
    output is byte for byte the whole capture's selection, written by write_capture."""
    from click.testing import CliRunner

    from scaptool.cli import read as read_command
    from scaptool.cli.main import cli
    from scaptool.cli.slice import slice_mask
    path = corpus_capture("sysdig-examples-nginx")
    whole = scap.open(path)
    criteria = dict(names=("nginx",), around="evt.type=open", window_ms=2)
    scap.write_capture(tmp_path / "whole.scap", whole, rows=slice_mask(whole, **criteria))
    monkeypatch.setattr(read_command, "CHUNK_EVENTS", 61)
    result = CliRunner().invoke(cli, ["slice", str(path), "-w", str(tmp_path / "chunked.scap"),
                                      "--proc", "nginx", "--around", "evt.type=open",
                                      "--window", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "chunked.scap").read_bytes() == (tmp_path / "whole.scap").read_bytes()
    kept = int(np.count_nonzero(slice_mask(whole, **criteria)))
    assert 0 < kept < len(whole) and f"{kept} of {len(whole)} events" in result.output
