"""Progress: a bar on a terminal's standard error, nothing in a pipe, sysdig's lines with -P.

The bar shows after SCAPTOOL_PROGRESS_DELAY seconds (1 by default); these tests set 0 so that a
run of a second or two shows it. Terminal runs go through util-linux `script`.
"""
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import COMPARE_ENV, corpus_capture, require_tool

ENV = dict(COMPARE_ENV, SCAPTOOL_PROGRESS_DELAY="0")
ENV.pop("NO_COLOR", None)
SCAPTOOL = [sys.executable, "-m", "scaptool"]


@pytest.fixture(scope="module")
def bigger(tmp_path_factory):
    """Five copies of a corpus capture end to end (five sections, ~150,000 events, 13 MB):
    enough work for a bar to be drawn a few times."""
    one = corpus_capture("sysflow-nginx").read_bytes()
    path = tmp_path_factory.mktemp("progress") / "five.scap"
    path.write_bytes(one * 5)
    return path


def on_a_terminal(args, env=ENV):
    """(what a command printed, its exit status) on a pseudo-terminal: standard output and
    standard error both go there, as they do for someone typing it."""
    require_tool("script")
    r = subprocess.run(["script", "-qec", shlex.join(map(str, args)), "/dev/null"],
                       stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False)
    return r.stdout, r.returncode


def in_a_pipe(args, env=ENV):
    r = subprocess.run([*SCAPTOOL, *map(str, args)], stdin=subprocess.DEVNULL,
                       capture_output=True, env=env, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout, r.stderr


def frames(screen):
    """The texts a terminal was shown, one per carriage return or newline, blanks left out."""
    return [t for t in re.split(rb"[\r\n]", screen) if t.strip()]


BAR = re.compile(rb"writing +\d+%\|.*\| [\d.]+[kMG]?/[\d.]+[kMG]?B, [\d.]+[kM]? events.*"
                 rb"\[.*B/s, .* left\]")


def test_a_bar_on_a_terminal_while_writing(bigger, tmp_path):
    out = tmp_path / "copy.scap"
    screen, status = on_a_terminal([*SCAPTOOL, "-r", bigger, "-w", out])
    assert status == 0, screen
    shown = frames(screen)
    assert any(BAR.search(f) for f in shown), shown
    # and it is gone at the end: the last thing written is a blank over the whole bar
    *_, last_bar, blank, after = screen.decode().split("\r")
    assert after == "" and blank.strip() == "" and len(blank) >= len(last_bar.rstrip())
    assert out.exists()


def test_the_bar_names_the_capture_while_it_is_read(bigger, tmp_path):
    """Before the first chunk is printed the bar says what is read and how big it is; then
    how far printing got in the file, with the events read so far (their number in all is
    not known before the end of a stream)."""
    screen, status = on_a_terminal(
        ["sh", "-c", f"{shlex.join(SCAPTOOL)} -r {bigger} >{tmp_path / 'out'}"])
    assert status == 0, screen
    shown = frames(screen)
    assert any(re.fullmatch(rb"reading five\.scap \(13\.1MB\) \[00:0\d\]", f)
               for f in shown), screen
    assert any(re.match(rb"printing +\d+%\|.*\| [\d.]+[kM]?/13\.1MB, [\d.]+k events", f)
               for f in shown), screen
    assert (tmp_path / "out").stat().st_size > 0


def test_no_bar_in_a_pipe(bigger, tmp_path):
    stdout, stderr = in_a_pipe(["-r", bigger, "-w", tmp_path / "copy.scap"])
    assert stdout == b"" and stderr == b""
    # nor when printing
    stdout, stderr = in_a_pipe(["-r", bigger, "-p", "%evt.num %evt.type"])
    assert stdout and stderr == b""


def test_no_bar_when_only_standard_output_is_a_terminal(bigger, tmp_path):
    err = tmp_path / "err"
    screen, status = on_a_terminal(
        ["sh", "-c", f"{shlex.join(SCAPTOOL)} -r {bigger} -w {tmp_path / 'o.scap'} 2>{err}"])
    assert status == 0 and err.read_bytes() == b""
    assert screen == b""


def test_printed_lines_are_never_mixed_with_the_bar(bigger):
    """Standard output on the same terminal: the bar makes way for the first line printed,
    and the lines are exactly those printed in a pipe."""
    fmt = "%evt.num %evt.type %proc.name"
    screen, status = on_a_terminal([*SCAPTOOL, "-r", bigger, "-p", fmt])
    assert status == 0
    piped, _ = in_a_pipe(["-r", bigger, "-p", fmt])
    text = screen.replace(b"\r\n", b"\n")
    first = piped.split(b"\n", 1)[0]
    start = text.index(first + b"\n")
    assert text[start:] == piped  # not one byte of a bar among them
    before = text[:start]
    # what came before is the bar and its removal (nothing else), and ends on the clean line
    assert b"reading five.scap" in before or before.strip(b"\r ") == b""
    assert before.split(b"\r")[-1] == b""


def test_the_bar_steps_aside_for_the_damage_line(bigger, tmp_path):
    """The line that says where a capture ends early, written while the bar shows, clears it
    first: it reaches the terminal whole."""
    damaged = tmp_path / "cut.scap"
    damaged.write_bytes(bigger.read_bytes()[:-30])
    screen, status = on_a_terminal([*SCAPTOOL, "-r", damaged, "-w", tmp_path / "o.scap"])
    assert status == 1
    warning = [line for line in screen.split(b"\n") if b"scaptool: " in line]
    assert len(warning) == 1 and b"truncated" in warning[0]
    # whatever the bar had drawn on that line was blanked before the message was written
    before = warning[0][:warning[0].index(b"scaptool: ")]
    assert before == b"" or before.endswith(b"\r")
    drawn = [text for text in before.split(b"\r") if text]
    assert not drawn or drawn[-1].strip() == b""


def test_an_error_message_comes_after_the_bar_is_gone(bigger, tmp_path):
    screen, status = on_a_terminal([*SCAPTOOL, "-r", bigger, "-w",
                                    tmp_path / "no-such-folder" / "o.scap"])
    assert status != 0
    last = screen.rstrip(b"\r\n").split(b"\n")[-1]
    drawn = [text for text in last.split(b"\r") if text.strip()]
    assert drawn[-1].startswith(b"scaptool: ") and b"no-such-folder" in drawn[-1], screen
    assert not any(BAR.search(text) for text in drawn)


def test_a_bar_for_slice(bigger, tmp_path):
    screen, status = on_a_terminal([*SCAPTOOL, "slice", bigger, "-w", tmp_path / "s.scap",
                                    "--proc", "nginx"])
    assert status == 0, screen
    assert any(BAR.search(f) for f in frames(screen))
    # the summary line comes after the bar is gone, on a line of its own
    last = screen.rstrip(b"\r\n").split(b"\n")[-1].split(b"\r")[-1]
    assert re.fullmatch(rb".*s\.scap: \d+ of \d+ events", last), screen[-300:]


def test_nothing_for_progress_is_imported_in_a_pipe():
    """The cold command line stays as it was: without a terminal on standard error (nor -P)
    neither cli/progress.py nor tqdm is imported."""
    capture = corpus_capture("falco-cat-write")
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "scaptool", "-r", capture,
                        "proc.name=cat"], capture_output=True, env=ENV, check=True)
    assert b"import time:" in r.stderr
    assert b"scaptool.cli.progress" not in r.stderr and b"tqdm" not in r.stderr


# -- -P: sysdig's lines ------------------------------------------------------------------------

def progress_lines(err):
    """The percentages in sysdig -P's output on standard error, checking its form as
    sysdig 0.29.3 writes it: each percentage ('\\r' then %.2f) comes after a '\\r' and as many
    spaces as the previous one had characters (none before the first), at the end one more
    such blank, the final percentage when it moved by more than 0.1 (after its own blank),
    and a newline."""
    assert err.endswith(b"\n") and err.count(b"\n") == 1, err
    writes = err[:-1].split(b"\r")
    assert writes[0] == b"", err
    writes = writes[1:]
    shown, previous, k = [], b"", 0
    while k < len(writes):
        assert writes[k] == b" " * len(previous), (err, k)   # clean_last_progress_line
        k += 1
        if k < len(writes) and writes[k].strip():
            assert re.fullmatch(rb"\d+\.\d\d", writes[k]), (err, k)
            previous = writes[k]
            shown.append(float(writes[k]))
            k += 1
        else:
            previous = b" " * len(previous)
    assert shown == sorted(shown) and all(b - a > 0.1 for a, b in zip(shown, shown[1:]))
    return shown


def test_progress_lines_of_a_small_capture_are_sysdigs_byte_for_byte():
    capture = corpus_capture("falco-cat-write")
    _, ours = in_a_pipe(["-r", capture, "-P", "-q"])
    assert ours == b"\r\r\r100.00\n"
    sysdig = subprocess.run([require_tool("sysdig"), "-r", capture, "-P", "-q"],
                            capture_output=True, env=COMPARE_ENV, check=True)
    assert sysdig.stderr == ours


@pytest.mark.parametrize("args", [["-q"], ["-w", "{tmp}/o.scap"], ["proc.name=nginx"]],
                         ids=["quiet", "write", "print"])
def test_progress_lines_have_sysdigs_form(args, tmp_path):
    capture = corpus_capture("sysflow-nginx")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    _, ours = in_a_pipe(["-r", capture, "-P", *args])
    sysdig = subprocess.run([require_tool("sysdig"), "-r", capture, "-P", *args],
                            capture_output=True, env=COMPARE_ENV, check=True)
    assert progress_lines(ours)[-1] == 100.0
    assert progress_lines(sysdig.stderr)[-1] == 100.0


def test_progress_lines_follow_a_long_pass(bigger, tmp_path):
    """Over five sections of 30,000 events, a line at each pass past a 10000th event, rising,
    then 100.00, in a pipe (sysdig's -P is not for terminals only)."""
    _, err = in_a_pipe(["-r", bigger, "-P", "-w", tmp_path / "o.scap"])
    shown = progress_lines(err)
    assert len(shown) >= 4 and shown[-1] == 100.0
    assert 0 < shown[0] < 100


def test_progress_lines_end_where_n_stops_reading():
    """-n N: sysdig ends at the percentage where it stopped, not at 100."""
    capture = corpus_capture("sysflow-nginx")
    _, ours = in_a_pipe(["-r", capture, "-P", "-q", "-n", "15000"])
    sysdig = subprocess.run([require_tool("sysdig"), "-r", capture, "-P", "-q", "-n", "15000"],
                            capture_output=True, env=COMPARE_ENV, check=True)
    ours, theirs = progress_lines(ours)[-1], progress_lines(sysdig.stderr)[-1]
    # sysdig's reader runs ahead of the event by its buffer: close, not equal
    assert theirs < 99 and abs(ours - theirs) < 1, (ours, theirs)


def test_progress_lines_when_reading_fails(tmp_path):
    """sysdig ends at 100.00 when it fails too (after one blank, not two: its inspector is
    gone); it writes its own message first, scaptool after."""
    missing = tmp_path / "missing.scap"
    r = subprocess.run([*SCAPTOOL, "-r", missing, "-P"], capture_output=True, env=ENV)
    assert r.returncode == 1 and r.stderr.startswith(b"\r\r100.00\n")
    sysdig = subprocess.run([require_tool("sysdig"), "-r", missing, "-P"], capture_output=True,
                            env=COMPARE_ENV)
    assert sysdig.returncode != 0 and sysdig.stderr.endswith(b"\r\r100.00\n")


def test_progress_lines_on_a_terminal_too(tmp_path):
    capture = corpus_capture("falco-cat-write")
    screen, status = on_a_terminal([*SCAPTOOL, "-r", capture, "-P", "-q"])
    assert status == 0
    # (the terminal turns the newline into \r\n; the colours are reset after, as sysdig's
    # buffered standard output does)
    assert screen == b"\r\r\r100.00\r\n\x1b[00m"
    sysdig, _ = on_a_terminal([require_tool("sysdig"), "-r", capture, "-P", "-q"])
    assert sysdig == screen


# -- the hooks, in the library -----------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.calls = []

    def inflating(self, path, done, total):
        self.calls.append(("inflating", done, total))

    def passed(self, capture, phase, upto):
        self.calls.append((phase, upto, capture.offset_before(upto)))


def test_writing_reports_its_progress(bigger, tmp_path, monkeypatch):
    from scaptool import scap
    from scaptool.scap import writer
    monkeypatch.setattr(writer, "_CHUNK_BYTES", 64 << 10)  # a report every 64 kB or so
    capture = scap.open(bigger)
    capture.progress = recorder = Recorder()
    scap.write_capture(tmp_path / "o.scap", capture)
    phases = {c[0] for c in recorder.calls}
    assert phases == {"writing"}
    upto = [c[1] for c in recorder.calls]
    assert upto[0] == 0 and upto[-1] == len(capture) and upto == sorted(upto)
    assert len(upto) > 10
    offsets = [c[2] for c in recorder.calls]
    assert offsets[-1] == len(capture.buffer) and offsets == sorted(offsets)


def test_inflating_reports_compressed_bytes_read(bigger, tmp_path, monkeypatch):
    import gzip

    from scaptool.scap import Capture, source
    packed = tmp_path / "five.scap.gz"
    packed.write_bytes(gzip.compress(bigger.read_bytes(), compresslevel=1))
    monkeypatch.setattr(source, "_CHUNK", 64 << 10)
    recorder = Recorder()
    monkeypatch.setattr(Capture, "progress", recorder)
    capture = Capture(packed)
    inflating = [c for c in recorder.calls if c[0] == "inflating"]
    size = os.path.getsize(packed)
    assert len(inflating) > 2 and inflating[-1][1:] == (size, size)
    assert [c[1] for c in inflating] == sorted(c[1] for c in inflating)
    assert recorder.calls[-1][0] == "opened"
    assert capture.file_size == size


def test_unwatched_captures_report_to_nobody(bigger):
    from scaptool import scap
    capture = scap.open(bigger)
    assert capture.progress is None
    capture.report("writing", 10)  # nothing to do, nothing fails
