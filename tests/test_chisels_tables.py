"""The table chisels (chisels/tables.py): their number formatting, the table layout, the CPU
accounting of topprocs_cpu, and, on real captures, the same output as Debian's sysdig 0.29.3.

sysdig orders rows of equal value differently from run to run and cuts ties at the top-N
limit arbitrarily; so a top-N table is held to sysdig's header and column of values, and every
row printed must be a row of sysdig's whole ranking (its hidden table_generator chisel with no
limit, or the corpus' <kind>.full.txt).
"""
import collections
import functools
import io
import subprocess

import numpy as np
import polars as pl
import pytest

from scaptool import scap
from scaptool.chisels.io import format_bytes, format_time_interval
from scaptool.chisels.run import run_chisel
from scaptool.chisels.tables import (
    extend,
    format_percent,
    group_sum,
    lua_number,
    print_table,
    thread_cpu,
)
from tests.conftest import corpus_path, require_tool

# -- number formatting ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    (150, "150"),
    (0, "0"),
    (-3, "-3"),
    (0.5, "0.5"),
    (99999999999999, "99999999999999"),          # 14 digits: still whole
    (1e14, "1e+14"),                              # 15 digits: exponent form
    (123456789012345, "1.2345678901235e+14"),     # an exact tie rounds up in LuaJIT (C: ...234)
    (1690557262892700000, "1.6905572628927e+18"),
    (1e-05, "1e-05"),
])
def test_lua_number_prints_as_luajit_tostring(value, text):
    assert lua_number(value) == text


@pytest.mark.parametrize("value, text", [
    (0, "0B"), (1024, "1024B"), (1025, "1.00KB"), (34286, "33.48KB"),
    (20480000, "19.53M"), (3 * 1024**3 + 1, "3.00G"),
])
def test_bytes_use_binary_units_above_the_limit(value, text):
    assert format_bytes(value) == text


@pytest.mark.parametrize("ns, text", [
    (1_009_999_999, "1.00s"),   # fractional digits are cut, not rounded
    (30_000_000, "30ms"), (5_529_999, "5.52ms"), (268_000, "268us"), (7_389, "7.38us"),
    (999, "999ns"),
])
def test_durations_are_cut_to_two_digits(ns, text):
    assert format_time_interval(ns) == text


def test_percent_of_the_capture_duration():
    assert format_percent(10_000_000, 1_000_000_000) == "1.00%"
    assert format_percent(1, 3) == "33.33%"
    assert format_percent(5, 0) == "0.00%"          # an empty or one-event capture
    assert format_percent(1.25, 200) == "0.63%"     # exact tie: away from zero, as LuaJIT


def test_columns_are_twenty_bytes_and_long_values_keep_a_space():
    assert extend("Bytes") == "Bytes" + " " * 15
    assert extend("x" * 25) == "x" * 19 + " "
    assert extend("x" * 20) == "x" * 19 + " "
    assert len(extend("é").encode()) == 20          # Lua counts bytes, not characters


# -- the table itself ----------------------------------------------------------------------------

class _Out:
    def __init__(self):
        self.lines = []

    def line(self, text=""):
        self.lines.append(text)


def test_group_sum_keeps_positive_values_and_sorts_biggest_first():
    frame = pl.DataFrame({"key_0": ["a", "b", "a", "c", None, "d"],
                          "group": ["a", "b", "a", "c", None, "d"],
                          "v": [10.0, 5.0, 7.0, 0.0, 100.0, -4.0]})
    table = group_sum(frame, ["key_0"], "v")
    assert table.rows() == [("a", 17.0), ("b", 5.0)]   # no key, zero, negative: left out
    kept = group_sum(frame, ["key_0"], "v", positive_only=False)
    assert ("c", 0.0) in kept.rows() and ("d", -4.0) in kept.rows()


def test_print_table_layout():
    run = _Out()
    table = pl.DataFrame({"key_0": ["a-process-with-a-long-name", "sh"],
                          "key_1": ["1234", "7"], "value": [34286.0, 12.0]})
    print_table(run, table, ["Process", "PID"], "Bytes", "bytes")
    assert run.lines == [
        "Bytes               Process             PID                 ",
        "-" * 80,
        "33.48KB             a-process-with-a-lo 1234",   # inner keys cut, the last one whole
        "12B                 sh                  7",
    ]


# -- thread.cpu --------------------------------------------------------------------------------

class _Capture:
    """Just what thread_cpu reads: the tids and the procinfo counters."""

    def __init__(self, tids, usr, sys_):
        self.headers = type("H", (), {"tid": np.asarray(tids)})()
        self._params = {"cpu_usr": usr, "cpu_sys": sys_}

    def param(self, name, rows):
        return pl.Series(name, [self._params[name][r] for r in rows], dtype=pl.UInt64)


def test_thread_cpu_is_the_change_since_the_threads_last_procinfo():
    tids = [1, 2, 1, 2, 1, 1, 3, 3]
    usr = [5, 0, 8, 0, 300, 2, 0, 0]
    sys_ = [1, 0, 1, 4, 0, 0, 0, 9]
    run = type("R", (), {"capture": _Capture(tids, usr, sys_)})()
    got = thread_cpu(run, np.arange(len(tids))).to_list()
    assert got == [
        0.0,     # tid 1's first: nothing to compare with
        0.0,     # tid 2's first
        3.0,     # tid 1: 9 - 6
        0.0,     # tid 2: its previous total was 0, which counts as no previous one
        100.0,   # tid 1: 300 - 9 is capped at 100
        100.0,   # tid 1: the total went down; the unsigned difference wraps, then the cap
        0.0,     # tid 3's first
        0.0,     # tid 3: previous total 0 again
    ]


# -- against sysdig on real captures --------------------------------------------------------------

# What each top-N chisel is in sysdig's terms: table_generator's keys, their titles, the value,
# its title, the filter and the units (the corpus test asks sysdig for the whole ranking).
SPECS = {
    "topfiles_bytes": "fd.name Filename evt.rawarg.res Bytes "
                      "'fd.type=file and evt.is_io=true' {top} bytes",
    "topfiles_time": "fd.name Filename evt.latency Time 'fd.type=file and evt.is_io=true' "
                     "{top} time",
    "topfiles_errors": "fd.name Filename evt.count #Errors 'fd.type=file and evt.failed=true' "
                       "{top} none",
    "topprocs_file": "proc.name,proc.pid Process,PID evt.rawarg.res Bytes "
                     "'fd.type=file and evt.is_io=true' {top} bytes",
    "topprocs_net": "proc.name,proc.pid Process,PID evt.rawarg.res Bytes "
                    "'(fd.type=ipv4 or fd.type=ipv6) and evt.is_io=true' {top} bytes",
    "topprocs_errors": "proc.name,proc.pid Process,PID evt.count #Errors evt.failed=true "
                       "{top} none",
    "topconns": "fd.l4proto,fd.name Proto,Conn evt.rawarg.res Bytes "
                "'(fd.type=ipv4 or fd.type=ipv6) and evt.is_io=true' {top} bytes",
    "topports_server": "fd.sport 'Srv Port' evt.rawarg.res Bytes "
                       "'(fd.type=ipv4 or fd.type=ipv6) and evt.is_io=true' {top} bytes",
    "topscalls": "evt.type Syscall evt.count '# Calls' evt.type!=switch {top} none",
    "topscalls_time": "evt.type Syscall evt.latency Time '' {top} time",
    "fdbytes_by": "{key} {key} evt.rawarg.res Bytes 'evt.is_io=true and evt.failed=false' "
                  "{top} bytes",
    "fdtime_by": "{key} {key} evt.latency Time evt.is_io=true {top} time",
}


@functools.cache
def _opened(name):
    from scaptool.query.events import EventData
    capture = scap.open(str(corpus_path() / "captures" / f"{name}.scap"))
    return capture, EventData(capture, bytebuf_limit=None)


def _ours(capture_name, words):
    capture, data = _opened(capture_name)
    out = io.StringIO()
    run_chisel(capture, words[0], words[1:], data=data, out=out, disable_color=True)
    return out.getvalue().splitlines()


def _sysdig(capture_name, words):
    sysdig = require_tool("sysdig")
    path = corpus_path() / "captures" / f"{capture_name}.scap"
    done = subprocess.run([sysdig, "-r", str(path), "-c", *words], check=False, capture_output=True,
                          text=True, errors="replace", timeout=300)
    return done.stdout.splitlines()


def _assert_same_ranking(ours, shown, whole):
    """Same header and column of values as sysdig's output, and only rows of its ranking."""
    assert ours[:2] == shown[:2]
    assert [line.split()[:1] for line in ours] == [line.split()[:1] for line in shown]
    pool = collections.Counter(whole[2:])
    for line in ours[2:]:
        assert pool[line] > 0, f"not a row of sysdig's ranking: {line!r}"
        pool[line] -= 1


TABLE_CASES = [
    ("topfiles_bytes", "falco-run-as-user-0-container", None, None),
    ("topfiles_time", "falco-run-as-user-0-container", None, None),
    ("topfiles_errors", "falco-run-as-user-0-container", None, None),
    ("topprocs_file", "falco-run-as-user-0-container", None, None),
    ("topprocs_errors", "falco-run-as-user-0-container", None, None),
    ("topprocs_net", "instruqt-ticket-generator-b841f454", None, None),
    ("topports_server", "instruqt-ticket-generator-b841f454", None, None),
    ("topconns", "instruqt-ticket-generator-b841f454", None, None),   # cut at 30 rows
    ("topconns", "sysdig-examples-httpd", None, "proc.name=httpd"),
    ("topscalls", "libs-single-ipv6-conn", None, None),
    ("topscalls_time", "libs-single-ipv6-conn", None, None),  # procinfo adds no time
    ("topscalls_time", "libs-curl-google", None, "evt.cpu<2"),
    ("fdbytes_by", "instruqt-ticket-generator-b841f454", "fd.sport", None),
    ("fdbytes_by", "libs-sample", "evt.rawtime", None),     # equal texts, distinct numbers
    ("fdbytes_by", "libs-sample", "evt.is_io_read", None),  # boolean key: no rows in sysdig
    ("fdtime_by", "libs-curl-google", "proc.name", None),
]


@pytest.mark.parametrize("chisel, capture, key, user_filter", TABLE_CASES,
                         ids=[f"{c}-{cap}-{k or ''}-{f or ''}" for c, cap, k, f in TABLE_CASES])
def test_top_tables_match_sysdig(chisel, capture, key, user_filter):
    corpus_path()
    require_tool("sysdig")
    extra = ([key] if key else []) + ([user_filter] if user_filter else [])
    ours = _ours(capture, [chisel, *extra])
    shown = _sysdig(capture, [chisel, *extra])
    whole = _sysdig(capture, ["table_generator",
                              SPECS[chisel].format(key=key, top=0),
                              *([user_filter] if user_filter else [])])
    _assert_same_ranking(ours, shown, whole)


@pytest.mark.parametrize("capture", ["falco-cat-write", "sysdig-examples-httpd",
                                     "falco-run-as-user-0-container"])
def test_topprocs_cpu_matches_sysdig(capture):
    corpus = corpus_path()
    require_tool("sysdig")
    whole_file = corpus / "expected" / capture / "topprocs_cpu.full.txt"
    whole = whole_file.read_text().splitlines()
    ours = _ours(capture, ["topprocs_cpu"])
    _assert_same_ranking(ours, _sysdig(capture, ["topprocs_cpu"]), whole)
    assert any(not line.startswith("0.00%") for line in ours[2:])  # some CPU was counted


EXACT_CASES = [
    ("iobytes", "libs-curl-google", []),
    ("iobytes_file", "falco-cat-write", []),
    ("iobytes_net", "libs-single-ipv6-conn", []),
    ("iobytes_net", "instruqt-ticket-generator-b841f454", ["proc.name!=sshd"]),
    ("bottlenecks", "libs-single-ipv6-conn", []),
    ("bottlenecks", "sysdig-examples-httpd", []),
]


@pytest.mark.parametrize("chisel, capture, extra", EXACT_CASES,
                         ids=[f"{c}-{cap}-{len(e)}" for c, cap, e in EXACT_CASES])
def test_interval_and_bottleneck_chisels_match_sysdig_exactly(chisel, capture, extra):
    corpus_path()
    require_tool("sysdig")
    theirs = _sysdig(capture, [chisel, *extra])
    assert theirs, "the case should print something"
    assert _ours(capture, [chisel, *extra]) == theirs


@pytest.mark.parametrize("capture, key", [("libs-curl-google", "proc.name"),
                                          ("instruqt-ticket-generator-b841f454", "fd.sport"),
                                          ("libs-sample", "evt.is_io")])
def test_fdcount_by_matches_sysdig(capture, key):
    corpus_path()
    require_tool("sysdig")
    ours = _ours(capture, ["fdcount_by", key])
    theirs = _sysdig(capture, ["fdcount_by", key])
    assert theirs
    assert sorted(ours) == sorted(theirs)
    assert [line.split("\t")[-1] for line in ours] == [line.split("\t")[-1] for line in theirs]
