"""The command line keeps the user's files safe and says what went wrong, where: -w onto the
capture being read, -w into a missing directory, captures that end early."""
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import COMPARE_ENV, corpus_capture, on_a_terminal, require_tool

FIXTURE = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "php-database-error.scap"
LIVE_FIXTURE = FIXTURE.with_name("php-database-error-live.scap")


def scaptool(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "scaptool", *map(str, args)],
                          capture_output=True, text=True, env=COMPARE_ENV, cwd=cwd)


def _one_line(stderr):
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    return stderr


@pytest.mark.parametrize("options", [[], ["-z"], ["evt.type=write"]], ids=" ".join)
def test_writing_onto_the_input_is_refused_and_the_input_is_unchanged(tmp_path, options):
    capture = tmp_path / "trace.scap"
    capture.write_bytes(FIXTURE.read_bytes())
    before = capture.read_bytes()
    r = scaptool("-r", capture, "-w", capture, *options)
    assert r.returncode != 0
    assert "is the capture being read" in _one_line(r.stderr)
    assert capture.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.scap"]


def test_the_input_under_another_name_is_refused_too(tmp_path):
    capture = tmp_path / "trace.scap"
    capture.write_bytes(FIXTURE.read_bytes())
    (tmp_path / "link.scap").symlink_to(capture)
    os.link(capture, tmp_path / "hard.scap")
    for other in ("link.scap", "hard.scap", "./trace.scap"):
        r = scaptool("-r", "trace.scap", "-w", other, cwd=tmp_path)
        assert r.returncode != 0 and "is the capture being read" in r.stderr, other
    r = scaptool("-r", FIXTURE, "-r", capture, "-w", capture)   # any of several inputs
    assert r.returncode != 0 and "is the capture being read" in r.stderr
    assert capture.read_bytes() == FIXTURE.read_bytes()


@pytest.mark.parametrize("command", [
    ["-r", FIXTURE, "-w", "nodir/out.scap"],
    ["slice", FIXTURE, "-w", "nodir/out.scap", "--tid", "812"],
    ["-r", LIVE_FIXTURE, "-c", "spy_logs", "nodir/out.scap 1000"],
    ["-r", LIVE_FIXTURE, "-c", "around", "nodir/out.scap", "evt.type=write"],
], ids=["-w", "slice", "spy_logs export", "around"])
def test_a_missing_directory_is_named_before_the_run(tmp_path, command):
    r = scaptool(*command, cwd=tmp_path)
    assert r.returncode != 0
    line = _one_line(r.stderr)
    assert "nodir/out.scap" in line and "no such directory" in line
    assert ".scaptool-" not in line   # not the hidden temporary name
    assert r.stdout == ""             # refused before anything was read or printed
    assert list(tmp_path.iterdir()) == []


def test_spy_logs_says_it_writes_after_resetting_the_colours(tmp_path):
    """On a terminal the export's line comes after sysdig's resets, not in the colour of the
    last message."""
    require_tool("sysdig")
    ours = on_a_terminal([sys.executable, "-m", "scaptool", "-r", str(LIVE_FIXTURE), "-c",
                          "spy_logs", f"'{tmp_path / 'a.scap'} 1000'"])
    theirs = on_a_terminal(["sysdig", "-r", str(LIVE_FIXTURE), "-c", "spy_logs",
                            f"'{tmp_path / 'b.scap'} 1000'"])
    tail = b"\x1b[00m\x1b[0m\r\nWriting events for 4 log entries\r\n"
    assert ours.endswith(tail)
    assert theirs.startswith(ours)   # sysdig then runs itself again to write the export


def _cut(tmp_path, keep):
    source = corpus_capture("sysflow-ls")
    cut = tmp_path / "cut.scap"
    cut.write_bytes(source.read_bytes()[:keep])
    return cut


@pytest.mark.parametrize("options", [[], ["evt.type=openat"], ["-S"], ["-j"]],
                         ids=" ".join)
def test_a_truncated_capture_prints_everything_before_the_damage_then_fails(tmp_path,
                                                                            options):
    require_tool("sysdig")
    cut = _cut(tmp_path, 600_000)
    ours = scaptool("-r", cut, *options)
    theirs = subprocess.run(["sysdig", "-r", cut, *options], capture_output=True, text=True,
                            env=COMPARE_ENV)
    assert theirs.returncode == 1
    assert ours.returncode == 1
    assert ours.stdout == theirs.stdout and ours.stdout
    line = _one_line(ours.stderr)
    assert str(cut) in line and "offset" in line


def test_a_truncated_gzip_capture_fails_too(tmp_path):
    import gzip
    whole = gzip.compress(corpus_capture("sysflow-ls").read_bytes())
    cut = tmp_path / "cut.scap.gz"
    cut.write_bytes(whole[:len(whole) * 19 // 20])
    r = scaptool("-r", cut)
    assert r.returncode == 1
    assert r.stdout.count("\n") > 100
    assert "gzip stream ends early" in _one_line(r.stderr)


def test_a_truncated_capture_fails_quietly_with_summary_only(tmp_path):
    r = scaptool("-r", _cut(tmp_path, 600_000), "-S", "-q")
    assert r.returncode == 1
    assert r.stdout.startswith("----------------------\nEvent")
    _one_line(r.stderr)


def test_a_whole_capture_still_succeeds():
    r = scaptool("-r", FIXTURE, "-S", "-q")
    assert r.returncode == 0 and r.stderr == ""


def test_capture_takes_d_for_its_duration():
    from click.testing import CliRunner

    from scaptool.cli.main import cli
    r = CliRunner().invoke(cli, ["capture", "--help"])
    assert "-d, --duration TIME" in r.output


@pytest.mark.parametrize("args", [["-c", "topfiles_bytes"], ["proc.name=minio"], ["-S", "-q"]])
def test_a_capture_from_a_pipe(args):
    """/dev/stdin as a pipe: nothing to map or seek in. Commands that read a chunk at a time
    stream it; a chisel reads it whole first. Either way the output is the file's."""
    path = corpus_capture("sysflow-ls")
    command = [sys.executable, "-m", "scaptool", "-r", "/dev/stdin", *args]
    piped = subprocess.run(command, input=path.read_bytes(), capture_output=True,
                           env=COMPARE_ENV, check=False)
    assert piped.returncode == 0, piped.stderr
    from_file = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(path), *args],
                               capture_output=True, env=COMPARE_ENV, check=True)
    assert piped.stdout == from_file.stdout and piped.stdout
