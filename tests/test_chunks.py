"""Reading a capture a chunk at a time (query.chunks) gives every event the values reading it
whole gives: the state carried from one chunk to the next is sysdig's state at that point.
The whole reading is the oracle."""
import numpy as np
import pytest

from conftest import corpus_capture, corpus_captures, need_capture
from scaptool import scap
from scaptool.query.chunks import Reading, context_rows, event_data_chunks
from scaptool.query.events import EventData
from scaptool.query.fields import FIELDS
from scaptool.query.format import DEFAULT_FORMAT, format_lines, json_lines

RICH = ("*%evt.num %evt.rawtime %evt.cpu %proc.name %proc.pid %proc.ppid %proc.exe %thread.tid "
        "%user.name %evt.dir %evt.type %evt.failed %evt.res %fd.num %fd.typechar %fd.name "
        "%fd.sip %fd.sport %evt.latency %evt.is_io %proc.cmdline")
# every field that needs no argument and can be printed
EVERY_FIELD = "*" + "\x01".join(
    "%" + name for name, d in FIELDS.items()
    if d.arg != "required" and d.kind != "any" and not getattr(d, "filter_only", False))


def _lines(datas, fmt, make=format_lines):
    out = []
    for data in datas:
        rows = np.flatnonzero(data.visible)
        out += [line for line in make(data, fmt, rows, 80, None) if line is not None]
    return out


def _same(capture, fmt, events, make=format_lines):
    whole = _lines([EventData(capture)], fmt, make)
    chunked = _lines(event_data_chunks(capture, events), fmt, make)
    assert len(chunked) == len(whole)
    wrong = [(a, b) for a, b in zip(whole, chunked) if a != b]
    assert not wrong, wrong[:3]
    return whole


@pytest.mark.parametrize("path", corpus_captures())
def test_every_capture_by_chunks_prints_what_the_whole_prints(path):
    """Chunks of 2,999 events (of 997 for the smaller captures): their bounds fall anywhere,
    in the middle of a call."""
    capture = scap.open(need_capture(path))
    events = 997 if len(capture) < 20_000 else 2999
    # (the rich line and JSON on the smaller captures only: CI's time)
    kinds = ((DEFAULT_FORMAT, format_lines), (RICH, format_lines), (DEFAULT_FORMAT, json_lines))
    for fmt, make in kinds if len(capture) < 20_000 else kinds[:1]:
        _same(capture, fmt, events, make)


@pytest.mark.parametrize("name,events", [
    ("falco-run-as-user-0-container", 100), ("libs-sample", 100),
    ("sysdig-examples-example4-1", 300), ("sysflow-setuid", 100)])
def test_every_field_by_small_chunks(name, events):
    """Every printable field, in small chunks: state of threads, fds, containers, memory
    counters, and the fields that remember earlier events (deltatime, exectime...)."""
    lines = _same(scap.open(corpus_capture(name)), EVERY_FIELD, events)
    assert lines


@pytest.mark.parametrize("name,events", [("agent-libs-match-nothing", 1), ("falco-cat-write", 7)])
def test_chunks_of_a_few_events(name, events):
    _same(scap.open(corpus_capture(name)), EVERY_FIELD, events)


def test_chunks_cover_every_event_once():
    path = corpus_capture("sysflow-ls")
    seen = []
    for data in event_data_chunks(path, 1000):
        chunk = data.capture
        seen.append(chunk.global_rows_of(np.arange(chunk.context, len(chunk))))
        assert len(chunk) - chunk.context <= 1000
    covered = np.concatenate(seen)
    assert np.array_equal(covered, np.arange(len(scap.open(path))))


def test_context_is_each_threads_last_call():
    """An exit's enter comes along; so does a call still waiting for its exit."""
    path = corpus_capture("falco-cat-write")
    data = next(iter(event_data_chunks(path, 100_000)))
    chunk = data.capture
    kept = context_rows(chunk)
    types = np.asarray(chunk.headers.type)
    tids = np.asarray(chunk.headers.tid)
    rows = np.arange(len(chunk))
    for tid in set(tids[kept].tolist()):
        mine = kept[tids[kept] == tid]
        theirs = rows[tids == tid]
        assert mine[-1] <= theirs[-1]
        if types[mine[-1]] % 2 == 1 and len(mine) > 1:
            assert types[mine[-2]] == types[mine[-1]] - 1
    assert 0 < len(kept) < len(rows)


def test_a_damaged_capture_ends_the_chunks_and_says_where(tmp_path):
    cut = tmp_path / "cut.scap"
    cut.write_bytes(corpus_capture("sysflow-ls").read_bytes()[:600_000])
    reading = Reading()
    lines = _lines(event_data_chunks(cut, 500, reading=reading), DEFAULT_FORMAT)
    whole = scap.open(cut)
    assert lines == _lines([EventData(whole)], DEFAULT_FORMAT)
    assert str(reading.damage) == str(whole.damage)


def test_a_pipe_is_read_by_chunks(tmp_path):
    """The same engine reads a stream that is not a file (the live helper's pipe)."""
    import os
    import threading
    path = corpus_capture("falco-cat-write")
    data = path.read_bytes()
    read_end, write_end = os.pipe()

    def feed():
        with os.fdopen(write_end, "wb") as w:
            for at in range(0, len(data), 997):
                w.write(data[at:at + 997])
                w.flush()
    threading.Thread(target=feed, daemon=True).start()
    lines = _lines(event_data_chunks(read_end, 50, max_wait_ms=20), DEFAULT_FORMAT)
    os.close(read_end)
    assert lines == _lines([EventData(scap.open(path))], DEFAULT_FORMAT)


def test_the_command_line_reads_in_chunks(monkeypatch):
    """The command reads by chunks: output identical to a whole reading, chunk after chunk."""
    from click.testing import CliRunner

    from scaptool.cli import read as read_command
    from scaptool.cli.main import cli
    path = corpus_capture("sysflow-nginx")
    whole = CliRunner().invoke(cli, ["-r", str(path), "evt.type=write"]).output
    monkeypatch.setattr(read_command, "CHUNK_EVENTS", 3333)
    seen = []
    original = read_command._print_events

    def counting(data, *args, **kwargs):
        seen.append(len(data))
        return original(data, *args, **kwargs)
    monkeypatch.setattr(read_command, "_print_events", counting)
    chunked = CliRunner().invoke(cli, ["-r", str(path), "evt.type=write"]).output
    assert chunked == whole and whole
    assert len(seen) >= 9 and max(seen) < 3333 + 200


def _grow(tmp_path, name, copies):
    """A corpus capture's events repeated (bench/grown.py): the same threads are created,
    exit and are created again, from one chunk to the next."""
    import importlib.util
    import pathlib
    spec = importlib.util.spec_from_file_location(
        "grown", pathlib.Path(__file__).resolve().parents[1] / "bench" / "grown.py")
    grown = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grown)
    out = tmp_path / f"{name}-x{copies}.scap"
    grown.grow(corpus_capture(name), out, copies)
    return out


def test_a_thread_made_again_in_a_later_chunk(tmp_path):
    """A thread that exited in one chunk and is cloned again in the next: its old events,
    handed over as context, must not make it up again (its clone exit creates it)."""
    path = _grow(tmp_path, "sysflow-mpm-event-full", 3)
    capture = scap.open(path)
    fmt = "*%evt.num %thread.tid %proc.name %proc.pid %proc.ppid %evt.type %fd.name"
    _same(capture, fmt, 20_000)


def test_a_filtered_write_by_chunks_is_the_whole_ones(tmp_path):
    """-w with a filter writes chunk by chunk: the same bytes as writing the whole capture's
    selection, each section's header blocks included."""
    from click.testing import CliRunner

    from scaptool.cli import read as read_command
    from scaptool.cli.main import cli
    from scaptool.query.select import filter_mask
    from scaptool.scap.rewrite import write_capture
    path = corpus_capture("sysdig-examples-nginx")
    whole = scap.open(path)
    write_capture(tmp_path / "whole.scap", whole,
                  rows=filter_mask(whole, "evt.type=open", EventData(whole)))
    read_command.CHUNK_EVENTS, saved = 97, read_command.CHUNK_EVENTS
    try:
        result = CliRunner().invoke(cli, ["-r", str(path), "-w", str(tmp_path / "chunked.scap"),
                                          "evt.type=open"])
    finally:
        read_command.CHUNK_EVENTS = saved
    assert result.exit_code == 0, result.output
    assert (tmp_path / "chunked.scap").read_bytes() == (tmp_path / "whole.scap").read_bytes()
