"""Chisels read a capture a chunk at a time (chisels/run.py): what they print and what they
export is what reading the whole capture at once gives. The whole reading is the oracle. The
chunks are small, so that their bounds fall everywhere: between a call's enter and exit, a
request and its response, within a second of iobytes, a log line's window, a thread's start
and its slowest call."""
import gc
import io
import pathlib

import numpy as np
import pytest

from conftest import corpus_capture, corpus_captures, need_capture, scaptool_output
from scaptool import scap
from scaptool.chisels import REGISTRY, chisel, load_builtins
from scaptool.chisels.run import run_chisel

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXPORT = "{export}"   # replaced by a file of the test's own

# One command per way a chisel carries its state from one chunk to the next, at least.
EVERY_CHISEL = [
    ["spy_logs"], ["spy_logs", EXPORT + " 1000"], ["spy_syslog"],
    ["around", EXPORT + " 20", "evt.type=close and evt.dir=<"],
    ["echo_fds"], ["spy_file"], ["stdin"], ["stdout"], ["stderr"],
    ["spy_ip", "127.0.0.1"], ["spy_port", "80"], ["spy_users"], ["httplog"],
    ["httptop"], ["httptop", "time"], ["fileslower", "0"], ["netlower", "0"],
    ["scallslower", "0.05"], ["scallslower", "abc"], ["proc_exec_time"],
    ["list_login_shells"], ["topfiles_bytes"], ["topfiles_time"], ["topfiles_errors"],
    ["topprocs_file"], ["topprocs_net"], ["topprocs_errors"], ["topconns"],
    ["topports_server"], ["topscalls"], ["topscalls_time"], ["fdbytes_by", "proc.name"],
    ["fdtime_by", "fd.name"], ["fdcount_by", "proc.name"], ["topprocs_cpu"], ["iobytes"],
    ["iobytes_file"], ["iobytes_net"], ["bottlenecks"], ["ps"], ["lsof"], ["netstat"],
    ["ps", "", "evt.type=close"], ["lsof", "'fd.name contains /etc'", "evt.type=open"],
    ["explain", "evt.type=connect and evt.dir=<"],
]
# with -pc, the chisels that show containers
WITH_CONTAINERS = ["spy_logs", "echo_fds", "stderr", "spy_users", "httplog", "httptop",
                   "fileslower", "scallslower", "proc_exec_time", "list_login_shells",
                   "topfiles_bytes", "topprocs_cpu", "topprocs_file", "topconns",
                   "fdcount_by"]
# the captures every command runs on: HTTP servers and clients, log and syslog writers,
# containers, shells, procinfo events, many threads
# (the smaller ones of each kind: CI runs every chisel twice on each)
CAPTURES = ["sysdig-examples-nginx-e3a0456", "falco-run-as-user-0-container",
            "sysdig-examples-example4-1", "libs-curl-google"]
# and on every capture of the corpus, one chisel of each kind
EACH_KIND = [["spy_logs", EXPORT + " 100"], ["topfiles_bytes"], ["iobytes"],
             ["explain", "50", "evt.type=write"]]


@pytest.fixture(autouse=True, scope="module")
def _frozen():
    """As the command line does (cli/read.py _imports_done): what the imports made is out of
    the collector's sight, or every chunk's collection would go over all of pytest too."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def chunk_events(capture):
    return 500 if len(capture) < 20_000 else 2999


def _output(capture, words, events, tmp_path, print_container=False):
    """What the chisel prints (and exports) reading the capture `events` at a time (0: at
    once)."""
    export = tmp_path / f"export-{events}.scap"
    words = [w.replace(EXPORT, str(export)) for w in words]
    out = io.StringIO()
    run_chisel(capture, words[0], words[1:], out=out, chunk_events=events,
               print_container=print_container)
    text = out.getvalue().replace(str(export), "EXPORT")
    return text, export.read_bytes() if export.exists() else None


def _same(capture, words, tmp_path, print_container=False, events=None):
    whole = _output(capture, words, 0, tmp_path, print_container)
    chunked = _output(capture, words, events or chunk_events(capture), tmp_path,
                      print_container)
    assert chunked[0] == whole[0]
    assert chunked[1] == whole[1], "the export differs"
    return whole[0]


@pytest.mark.parametrize("name", CAPTURES)
def test_every_chisel_by_chunks_prints_what_the_whole_prints(name, tmp_path):
    capture = scap.open(corpus_capture(name))
    printed = 0
    for words in EVERY_CHISEL:
        printed += bool(_same(capture, words, tmp_path))
    assert printed > len(EVERY_CHISEL) / 2


@pytest.mark.parametrize("name", CAPTURES[:2])
def test_with_containers_by_chunks(name, tmp_path):
    capture = scap.open(corpus_capture(name))
    for words in EVERY_CHISEL:
        if words[0] in WITH_CONTAINERS:
            _same(capture, words, tmp_path, print_container=True)


@pytest.mark.parametrize("path", corpus_captures())
def test_every_capture_by_chunks(path, tmp_path):
    capture = scap.open(need_capture(path))
    for words in EACH_KIND:
        _same(capture, words, tmp_path)


@pytest.mark.parametrize("words", [["topscalls"], ["spy_logs"], ["bottlenecks"],
                                   ["httptop", "bytes"], ["spy_users"], ["iobytes_net"]],
                         ids=" ".join)
def test_chunks_of_a_few_events(words, tmp_path):
    """Chunks of 7 events: hardly any pair or window is within one."""
    _same(scap.open(corpus_capture("sysdig-examples-nginx")), words, tmp_path, events=7)


def test_syslog_by_chunks(tmp_path):
    """spy_syslog on the capture of every facility and severity (test_fields_syslog)."""
    from tests.test_fields_syslog import write_capture
    path = tmp_path / "syslog.scap"
    write_capture(path)
    capture = scap.open(str(path))
    assert _same(capture, ["spy_syslog"], tmp_path, events=50).count("\n") > 192
    _same(capture, ["spy_syslog", EXPORT + " 1"], tmp_path, events=50)


def test_explain_by_chunks():
    """The live capture's story: its window reaches back over several chunks."""
    capture = scap.open(str(ROOT / "fixtures" / "php-database-error-live.scap"))
    words = ["explain", "evt.buffer contains 'Database error' and evt.is_io_write=true"]
    out = io.StringIO()
    run_chisel(capture, words[0], words[1:], out=out, chunk_events=0)
    for events in (100, 997):
        chunked = io.StringIO()
        run_chisel(capture, words[0], words[1:], out=chunked, chunk_events=events)
        assert chunked.getvalue() == out.getvalue()
    assert "answered" in out.getvalue()


# -- several captures, the command line --------------------------------------------------------

PAIRS = [("falco-cat-write", "sysflow-ls"), ("sysdig-examples-nginx", "libs-curl-google")]


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
@pytest.mark.parametrize("words", [["topfiles_bytes"], ["topscalls_time"],
                                   ["fdcount_by", "proc.name"], ["spy_logs"], ["ps"],
                                   ["bottlenecks"], ["topprocs_cpu"], ["httptop"]],
                         ids=" ".join)
def test_several_captures_by_chunks(pair, words, monkeypatch):
    """The tables after each capture count the ones before, chunk by chunk too."""
    reads = [w for name in pair for w in ("-r", corpus_capture(name))]
    whole = scaptool_output(*reads, "-c", *words)
    monkeypatch.setenv("SCAPTOOL_CHUNK_EVENTS", "300")
    assert scaptool_output(*reads, "-c", *words) == whole
    monkeypatch.setenv("SCAPTOOL_CHUNK_EVENTS", "0")   # (0: each capture read at once)
    assert scaptool_output(*reads, "-c", *words) == whole


# -- the protocol --------------------------------------------------------------------------------

class _Progress:
    """Stands for the progress watcher: counts the chunks read (chisels/run.py reports each)."""

    def __init__(self):
        self.chunks = 0

    def passed(self, capture, phase, upto):
        if phase == "printing":
            self.chunks += 1


class _Written(io.StringIO):
    """An output that notes how many chunks were read when each line came."""

    def __init__(self, progress):
        super().__init__()
        self.progress = progress
        self.when = []

    def write(self, text):
        self.when.append(self.progress.chunks)
        return super().write(text)


def _watched(monkeypatch):
    progress = _Progress()
    monkeypatch.setattr(scap.Capture, "progress", progress)
    return progress, _Written(progress)


def test_event_lines_come_as_each_chunk_is_read(monkeypatch):
    capture = scap.open(corpus_capture("sysdig-examples-nginx-e3a0456"))
    progress, out = _watched(monkeypatch)
    run_chisel(capture, "echo_fds", [], out=out, chunk_events=500)
    assert progress.chunks == -(-len(capture) // 500)
    assert out.when[0] == 0 and len(set(out.when)) > 5


def test_a_table_comes_once_the_last_chunk_is_read(monkeypatch):
    capture = scap.open(corpus_capture("sysdig-examples-nginx-e3a0456"))
    progress, out = _watched(monkeypatch)
    run_chisel(capture, "topfiles_bytes", [], out=out, chunk_events=500)
    last = -(-len(capture) // 500) - 1
    assert progress.chunks == last + 1 and set(out.when) == {last}


def test_a_snapshot_reads_no_further_than_its_event(monkeypatch):
    capture = scap.open(corpus_capture("sysdig-examples-nginx-e3a0456"))
    progress, out = _watched(monkeypatch)
    run_chisel(capture, "ps", [], out=out, chunk_events=500)
    assert progress.chunks == 0
    row = int(np.flatnonzero(np.asarray(capture.event_numbers) == 3000)[0])
    run_chisel(capture, "ps", ["", "evt.num=3000"], out=io.StringIO(), chunk_events=500)
    assert progress.chunks == row // 500 > 1


def test_helpers_see_a_chunks_own_events_only():
    """Context events (the chunk before's, there to be read) are nobody's: the rows every
    chunk's helpers give add up to the whole capture's, visible or not."""
    seen = {}

    @chisel("test_only_counter", "Misc", "for the test", chunked=True)
    def counter(run):
        for visible in (True, False):
            rows = run.select("evt.type=read", visible=visible)
            seen.setdefault((run.chunk_events, visible), []).extend(
                run.reading_rows(rows).tolist())
        seen.setdefault(("calls", run.chunk_events), []).append((run.first, run.final))
    try:
        capture = scap.open(corpus_capture("sysdig-examples-nginx-e3a0456"))
        for events in (0, 333):
            run_chisel(capture, "test_only_counter", [], out=io.StringIO(),
                       chunk_events=events)
    finally:
        del REGISTRY["test_only_counter"]
    for visible in (True, False):
        assert seen[(333, visible)] == seen[(0, visible)]
        assert len(seen[(0, visible)]) > 100
    assert seen[("calls", 0)] == [(True, True)]
    calls = seen[("calls", 333)]
    assert len(calls) == -(-len(capture) // 333)
    assert calls[0] == (True, False) and calls[-1] == (False, True)
    assert all(c == (False, False) for c in calls[1:-1])


def test_a_chisel_not_chunked_gets_the_whole_capture(tmp_path):
    """A user's chisel file written before chunks: called once, with the whole capture."""
    mine = tmp_path / "mine.py"
    mine.write_text(
        "from scaptool import chisel\n"
        "@chisel('test_only_whole', 'Misc', 'for the test')\n"
        "def whole(run):\n"
        "    run.line(f'{type(run.capture).__name__} {len(run.capture)} {run.first} '\n"
        "             f'{run.final}')\n")
    path = corpus_capture("sysdig-examples-nginx-e3a0456")
    try:
        out = scaptool_output("-r", path, "-c", str(mine))
    finally:
        REGISTRY.pop("test_only_whole", None)
    assert out == f"Capture {len(scap.open(path))} True True\n"


def test_every_builtin_chisel_is_chunked():
    load_builtins()
    assert [name for name, c in REGISTRY.items() if not c.chunked] == []


# -- tiny chunks set from the environment, sources read again or not -----------------------------

def _builtin_names():
    load_builtins()
    return {name for name, c in REGISTRY.items() if not name.startswith("test_only")}


def test_every_builtin_chisel_is_in_the_commands():
    assert _builtin_names() <= {words[0] for words in EVERY_CHISEL}


@pytest.mark.parametrize("name", ["falco-connect-localhost"])
def test_every_chisel_in_chunks_of_97_events_from_the_environment(name, tmp_path,
                                                                  monkeypatch):
    """SCAPTOOL_CHUNK_EVENTS=97, the capture given by its path as the command line gives it
    (so that the exports and explain read the file again): the whole reading's output."""
    path = corpus_capture(name)
    capture = scap.open(path)
    for words in EVERY_CHISEL:
        monkeypatch.delenv("SCAPTOOL_CHUNK_EVENTS", raising=False)
        whole = _output(capture, words, 0, tmp_path)
        monkeypatch.setenv("SCAPTOOL_CHUNK_EVENTS", "97")
        chunked = _output(path, words, None, tmp_path)
        assert chunked[0] == whole[0], words
        assert chunked[1] == whole[1], f"the export of {words} differs"


def _from_a_pipe(path, words, tmp_path, events):
    """_output with the capture written into a pipe by a thread of its own: read once, as
    it comes."""
    import os
    import threading
    read_end, write_end = os.pipe()
    data = pathlib.Path(path).read_bytes()

    def feed():
        with open(write_end, "wb") as f:
            f.write(data)
    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        return _output(read_end, words, events, tmp_path)
    finally:
        feeder.join()
        os.close(read_end)


@pytest.mark.parametrize("words", [["spy_logs"], ["spy_logs", EXPORT + " 1000"], ["echo_fds"],
                                   ["topfiles_bytes"], ["httptop"], ["ps"],
                                   ["explain", "evt.type=connect and evt.dir=<"],
                                   ["around", EXPORT + " 20", "evt.type=close"]],
                         ids=" ".join)
def test_a_pipe_is_read_once(words, tmp_path):
    """From a pipe, chunked chisels read as the events come; those that read the capture
    again (explain, exports) get it whole, copied aside first: the same output either way."""
    path = corpus_capture("sysdig-examples-nginx-e3a0456")
    whole = _output(scap.open(path), words, 0, tmp_path)
    assert _from_a_pipe(path, words, tmp_path, 97) == whole
    assert whole[0]


def test_read_again_only_when_the_chisel_says_so():
    """A chunked chisel reading again from what cannot be read twice is an error, not a
    second reading that silently finds nothing."""
    from scaptool.chisels import ChiselError

    @chisel("test_only_again", "Misc", "for the test", chunked=True)
    def again(run):
        if run.final:
            run.line(str(sum(len(d) for d in run.read_again())))
    try:
        path = corpus_capture("sysdig-examples-nginx-e3a0456")
        whole = io.StringIO()
        run_chisel(path, "test_only_again", [], out=whole, chunk_events=300)
        assert int(whole.getvalue()) >= len(scap.open(path))
        with open(path, "rb") as f, pytest.raises(ChiselError):
            run_chisel(f, "test_only_again", [], out=io.StringIO(), chunk_events=300)
    finally:
        del REGISTRY["test_only_again"]
