"""Several -r: the captures are read one after the other, as sysdig 0.29.3 reads them."""
import subprocess
import sys

import pytest

from conftest import COMPARE_ENV, corpus_capture, require_tool, scaptool_output, sysdig_output

PAIRS = [("falco-cat-write", "falco-connect-localhost"),
         ("sysdig-examples-nginx", "libs-curl-google")]


def _paths(pair):
    return [corpus_capture(name) for name in pair]


def _reads(paths):
    return [word for p in paths for word in ("-r", p)]


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
@pytest.mark.parametrize("options", [[], ["evt.type=close"], ["-n", "300"], ["-S", "-q"],
                                     ["-S", "evt.is_io=true"], ["-j"], ["-t", "r"],
                                     ["-p", "%evt.num %proc.name %fd.name"]],
                         ids=" ".join)
def test_printing_is_sysdigs(pair, options):
    paths = _paths(pair)
    expected = sysdig_output(*_reads(paths), *options)
    assert expected.count("\n") > 0
    assert scaptool_output(*_reads(paths), *options) == expected


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_more_lines_than_either_capture(pair):
    """What the trial found: only the last capture was read."""
    paths = _paths(pair)
    both = scaptool_output(*_reads(paths)).count("\n")
    alone = [scaptool_output("-r", p).count("\n") for p in paths]
    assert both == sum(alone)


@pytest.mark.parametrize("chisel", ["spy_logs", "echo_fds", "stderr"])
def test_event_by_event_chisels_are_sysdigs(chisel):
    paths = _paths(("sysdig-examples-nginx", "libs-curl-google"))
    assert scaptool_output(*_reads(paths), "-c", chisel) == \
        sysdig_output(*_reads(paths), "-c", chisel)


@pytest.mark.parametrize("chisel", ["topfiles_bytes", "topprocs_file", "topscalls_time"])
def test_tables_after_each_capture_count_the_ones_before(chisel):
    """sysdig prints a chisel's table after each capture, and keeps counting: the same capture
    twice gives a table, then one with every value doubled."""
    path = corpus_capture("falco-cat-write")
    ours = scaptool_output("-r", path, "-r", path, "-c", chisel)
    assert ours == sysdig_output("-r", path, "-r", path, "-c", chisel)
    once = scaptool_output("-r", path, "-c", chisel)
    assert ours.startswith(once) and ours != once + once


def test_fd_counts_go_on_from_one_capture_to_the_next():
    """fdcount_by counts the fds of every capture read so far: the second table has the first
    capture's processes too."""
    paths = _paths(("falco-cat-write", "sysflow-ls"))
    ours = scaptool_output(*_reads(paths), "-c", "fdcount_by", "proc.name")
    assert ours == sysdig_output(*_reads(paths), "-c", "fdcount_by", "proc.name")
    first = scaptool_output("-r", paths[0], "-c", "fdcount_by", "proc.name")
    assert ours.startswith(first) and ours[len(first):].count("cat\t") == 1


def test_a_chisel_that_ends_the_capture_reads_only_the_first():
    """ps, lsof and netstat show the state at the first event and end the capture, which in
    sysdig ends the reading of every capture after it too."""
    paths = _paths(("falco-cat-write", "sysflow-ls"))
    ours = scaptool_output(*_reads(paths), "-c", "ps")
    assert ours == sysdig_output(*_reads(paths), "-c", "ps")
    assert ours == scaptool_output("-r", paths[0], "-c", "ps")


def test_write_keeps_every_capture_with_its_own_names(tmp_path):
    """-w with several -r writes one capture holding each input as a section of its own: sysdig
    reads it and shows every event as reading the inputs one after the other shows it (only
    the event numbers go on from one section to the next)."""
    paths = _paths(("falco-cat-write", "sysdig-examples-nginx"))
    out = tmp_path / "both.scap"
    scaptool_output(*_reads(paths), "-w", out)
    fmt = ["-p", "%evt.time %thread.tid %proc.name %evt.type %fd.name %evt.info"]
    assert sysdig_output("-r", out, *fmt) == sysdig_output(*_reads(paths), *fmt)
    filtered = tmp_path / "filtered.scap"
    scaptool_output(*_reads(paths), "-w", filtered, "evt.type=open")
    assert sysdig_output("-r", filtered, *fmt) == \
        sysdig_output(*_reads(paths), *fmt, "evt.type=open")


def test_a_damaged_capture_ends_the_reading(tmp_path):
    """Reading stops at the damage, as sysdig's does: the captures after it are not read,
    and the command fails."""
    require_tool("sysdig")
    first = corpus_capture("sysflow-ls")
    cut = tmp_path / "cut.scap"
    cut.write_bytes(first.read_bytes()[:600_000])
    second = corpus_capture("falco-cat-write")
    ours = subprocess.run([sys.executable, "-m", "scaptool", "-r", cut, "-r", second],
                          capture_output=True, env=COMPARE_ENV)
    theirs = subprocess.run(["sysdig", "-r", cut, "-r", second], capture_output=True,
                            env=COMPARE_ENV)
    assert theirs.returncode != 0 and ours.returncode == 1
    assert ours.stdout == theirs.stdout
    assert ours.stderr.decode().count("\n") == 1
