"""The stream reader (scap/stream.py) reads what Capture reads, chunk by chunk.

For every corpus capture and chunk bounds from one event to the default, with windows that
end inside blocks: the chunks' header columns and parameter bytes, concatenated, are Capture's;
the section starts give Capture's sections and metadata tables. The same from gzip files (also
cut into several members anywhere), from open file objects, and from a pipe written slowly
(chunks come before the writer is done, and promptly after a pause). Truncated and corrupted
inputs (plain and gzip) give the events before the damage and the error Capture names.
Captures that hypothesis makes with scap/writer.py read back equal too.
"""
import gzip
import io
import os
import struct
import threading
import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaptool import scap
from scaptool.scap import blocktypes as bt
from scaptool.scap import eventtable, stream_window
from scaptool.scap.errors import ScapError
from scaptool.scap.stream import EventChunk, SectionStart, StreamReader
from scaptool.scap.writer import Event, Writer, frame_block

from conftest import corpus_capture, corpus_captures, need_capture

COLUMNS = ("block_offset", "kind", "cpu", "ts", "tid", "type", "dump_flags", "nparams",
           "length")
TABLES = ("processes", "fds", "users", "groups", "interfaces")
CONFIGS = {
    "default": {},
    "1000-events": dict(max_events=1000, read_size=1 << 16),
    "7-events": dict(max_events=7, read_size=5000),
    "1-event": dict(max_events=1, read_size=4096),
    "200-bytes": dict(max_bytes=200, read_size=777),     # windows end inside blocks
    "tiny-window": dict(max_bytes=1 << 12, read_size=1),  # grown block by block
}
# Small chunks cost a decode (and here a check of every parameter) each: the first events of
# a capture are enough for them; the whole of it is read with the larger ones.
PREFIX = {"7-events": 2000, "1-event": 1000, "200-bytes": 2000, "tiny-window": 2000}


def _block_stream(capture):
    """A capture's block stream (several corpus captures are gzip files)."""
    data = capture.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _gathered(buf, offsets, lengths, present):
    """The bytes of every present value, end to end."""
    lengths = np.where(present, lengths, 0).astype(np.int64)
    starts = np.repeat(offsets - (np.cumsum(lengths) - lengths), lengths)
    return buf[starts + np.arange(int(lengths.sum()))].tobytes()


def _columns(h, base=0):
    cols = {name: np.asarray(getattr(h, name)).astype(np.int64) for name in COLUMNS}
    cols["block_offset"] = cols["block_offset"] + base
    return cols


def _params(buf, h, slices, nparams):
    """(presence, lengths, bytes) of parameters 0..nparams-1 of every event."""
    out = []
    own = int(h.nparams.max()) if len(h) else 0
    for k in range(nparams):
        if k >= own:  # no event here has it
            out.append((np.zeros(len(h), bool), np.zeros(len(h), np.int64), b""))
            continue
        offsets, lengths, present = slices(k)
        out.append((present, np.where(present, lengths, 0), _gathered(buf, offsets, lengths,
                                                                      present)))
    return out


class Read:
    """What a reader gave: header columns, parameter values, sections (and the bytes of
    their header blocks), metadata tables, the error."""

    def __init__(self, cols, params, sections, heads, tables, error):
        self.cols, self.params, self.sections, self.heads = cols, params, sections, heads
        self.tables, self.error = tables, error

    def __len__(self):
        return len(self.cols["ts"])


_REFERENCE = {}


def whole(path, tables=True):
    """Capture's reading of a file (cached for unchanging corpus files)."""
    key = (str(path), tables)
    if key in _REFERENCE:
        return _REFERENCE[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cap = scap.open(path)
            h, error = cap.headers, cap.damage
        except ScapError as e:
            return Read(None, None, None, None, None, e)
        nparams = int(h.nparams.max()) if len(h) else 0
        shb = lambda s: int(cap.buffer[s.offset + 4:s.offset + 8].view("<u4")[0])  # noqa: E731
        ends = [s.metadata[-1][0] + s.metadata[-1][2] if s.metadata else s.offset + shb(s)
                for s in cap.sections]
        heads = [cap.buffer[s.offset:end].tobytes() for s, end in zip(cap.sections, ends)]
        read = Read(_columns(h), _params(cap.buffer, h, cap.param_slices, nparams),
                    cap.sections, heads, _capture_tables(cap) if tables else None, error)
    if str(path).startswith(os.environ.get("SCAPTOOL_CORPUS", "\0")):
        _REFERENCE[key] = read
    return read


def _capture_tables(cap):
    return dict({name: getattr(cap, name) for name in TABLES}, machine=cap.machine)


def streamed(source, limit=None, tables=True, on_chunk=None, **options):
    """The stream reader's reading, chunks checked and put end to end (limit: events)."""
    chunks, starts, error = [], [], None
    reader = StreamReader(source, **options)
    seen = in_section = 0
    try:
        for item in reader:
            if isinstance(item, SectionStart):
                assert item.index == len(starts)
                starts.append(item)
                in_section = 0
                continue
            assert isinstance(item, EventChunk) and item.section is starts[-1]
            _check_chunk(item, seen, in_section, options)
            chunks.append(item)
            seen += len(item)
            in_section += len(item)
            if on_chunk:
                on_chunk(item)
            if limit is not None and seen >= limit:
                break
    except ScapError as e:
        error = e
    reader.close()
    cols = {name: np.concatenate([_columns(c.headers, c.offset)[name] for c in chunks])
            if chunks else np.zeros(0, np.int64) for name in COLUMNS}
    nparams = int(cols["nparams"].max()) if len(cols["nparams"]) else 0
    per_chunk = [_params(c.buffer, c.headers, c.param_slices, nparams) for c in chunks]
    params = [(np.concatenate([p[k][0] for p in per_chunk]),
               np.concatenate([p[k][1] for p in per_chunk]),
               b"".join(p[k][2] for p in per_chunk)) for k in range(nparams)]
    sections = [s.section for s in starts]
    heads = [s.data.tobytes() for s in starts]
    for s in starts:
        assert [b.data.tobytes() for b in s.blocks] == \
            [s.data[o - s.offset:o - s.offset + n].tobytes() for o, _, n in s.section.metadata]
    return Read(cols, params, sections, heads, _stream_tables(starts) if tables else None,
                error)


def _check_chunk(chunk, seen, in_section, options):
    """A chunk's own promises: bounds, counters, a buffer that holds exactly its blocks."""
    n = len(chunk)
    assert 1 <= n <= options.get("max_events", 1 << 17)
    assert chunk.first_event == seen
    assert chunk.first_in_section == in_section
    assert chunk.section.first_event + in_section == chunk.first_event
    offsets = chunk.headers.block_offset
    assert offsets[0] == 0
    words = chunk.buffer[:len(chunk.buffer) // 4 * 4].view("<u4")
    end = int(offsets[-1]) + int(words[offsets[-1] // 4 + 1])
    if n > 1 and "max_bytes" in options:
        assert end <= options["max_bytes"]
    if len(chunk.buffer) != end:
        # only records that reach past their block (damaged input) make the buffer longer
        h = chunk.headers
        assert (h.record + np.maximum(h.length.astype(np.int64), 22) >
                h.block_offset + np.diff(np.r_[offsets, end])).any()


def _stream_tables(starts):
    import polars as pl
    tables = {name: pl.concat([s.table(name) for s in starts]) if starts else None
              for name in TABLES}
    tables["machine"] = next((s.machine for s in starts if s.machine), {})
    return tables


def _describe(error):
    if error is None:
        return None
    return type(error), error.message, error.offset, error.block, str(error)


def assert_same(got, want, prefix=None):
    """got (a stream's reading) is want's (Capture's), or its first `prefix` events."""
    if want.cols is None:  # Capture refused the input: the reader raises the same error
        assert _describe(got.error) == _describe(want.error)
        return
    n = len(want) if prefix is None else min(prefix, len(want))
    if prefix is None or len(got) < n:
        assert _describe(got.error) == _describe(want.error)
    assert len(got) >= n if prefix else len(got) == n
    for name in COLUMNS:
        assert np.array_equal(got.cols[name][:n], want.cols[name][:n]), name
    for k, ((gp, gl, gb), (wp, wl, wb)) in enumerate(zip(got.params, want.params)):
        assert np.array_equal(gp[:n], wp[:n]), f"param {k} presence"
        assert np.array_equal(gl[:n], wl[:n]), f"param {k} lengths"
        if prefix is None:
            assert gb == wb, f"param {k} bytes"
    if prefix is None:
        assert got.sections == want.sections
    else:
        assert got.sections == want.sections[:len(got.sections)]
    assert got.heads == want.heads[:len(got.heads)]
    if got.tables is not None and want.tables is not None and prefix is None:
        assert got.tables["machine"] == want.tables["machine"]
        for name in TABLES:
            assert got.tables[name].equals(want.tables[name]), name


# -- the corpus ---------------------------------------------------------------------------------

@pytest.mark.corpus
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("capture", corpus_captures())
def test_corpus_capture_reads_as_capture_does(capture, config):
    capture = need_capture(capture)
    prefix = PREFIX.get(config)
    got = streamed(capture, limit=prefix, tables=config == "default", **CONFIGS[config])
    assert_same(got, whole(capture), prefix)


@pytest.mark.corpus
@pytest.mark.parametrize("capture", corpus_captures())
def test_gzip_corpus_capture_reads_as_the_plain_one(capture, tmp_path):
    capture = need_capture(capture)
    data = _block_stream(capture)
    packed = tmp_path / "packed.scap.gz"
    packed.write_bytes(gzip.compress(data, compresslevel=1))
    want = whole(capture)
    assert_same(streamed(packed, tables=False), want)
    assert_same(streamed(packed, limit=2000, tables=False, **CONFIGS["7-events"]), want, 2000)
    # several members, cut anywhere (even inside a block): the block stream is what counts
    members = tmp_path / "members.scap.gz"
    cuts = [0, 1001, 1002, len(data) // 3, len(data)]
    members.write_bytes(b"".join(gzip.compress(data[a:b], compresslevel=1)
                                 for a, b in zip(cuts, cuts[1:])))
    assert_same(streamed(members, tables=False, **CONFIGS["1000-events"]), want)
    assert_same(whole(members, tables=False), want)


@pytest.mark.corpus
def test_open_file_objects_and_descriptors_read_the_same():
    capture = corpus_capture("sysdig-examples-example4-1")
    want = whole(capture)
    assert capture.read_bytes()[:2] != b"\x1f\x8b"
    with open(capture, "rb") as f:                       # buffered, read from where it is
        assert_same(streamed(f, **CONFIGS["7-events"]), want)
        assert not f.closed
    assert_same(streamed(io.BytesIO(capture.read_bytes())), want)
    fd = os.open(capture, os.O_RDONLY)
    try:
        assert_same(streamed(fd, **CONFIGS["200-bytes"]), want)
        os.fstat(fd)  # still open
    finally:
        os.close(fd)
    packed = corpus_capture("falco-ping-sendto")  # a gzip file
    with open(packed, "rb") as f:
        assert_same(streamed(f, **CONFIGS["1000-events"]), whole(packed))


@pytest.mark.corpus
def test_concatenated_captures_are_sections(tmp_path):
    """cat a.scap b.scap c.scap: three sections, V1 and V2 alike, numbered on."""
    parts = [_block_stream(corpus_capture(name)) for name in
             ("falco-empty-9e0651e", "libs-sample", "sysdig-examples-nginx-3f89e2d")]
    f = tmp_path / "three.scap"
    f.write_bytes(b"".join(parts))
    want = whole(f)
    assert len(want.sections) == 3
    for config in ("default", "7-events", "200-bytes"):
        got = streamed(f, **CONFIGS[config])
        assert_same(got, want)
        assert got.sections[2].first_event == want.sections[2].first_event > 0


# -- kinds of blocks the corpus lacks ---------------------------------------------------------------

def _rewritten(path, tmp_path):
    """Blocks rewritten: metadata as their _INT ids, events alternately EV_INT and EVF (with
    a flags field), as 2014 pre-releases and dump-flag writers left them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cap = scap.open(path)
    buf = cap.buffer
    out = [bytes(buf[:cap.sections[0].offset + 28])]
    old = {v: k for k, v in bt.CANONICAL.items() if k != bt.EV_INT}
    for offset, btype, total in cap.sections[0].metadata:
        block = bytearray(buf[offset:offset + total])
        block[:4] = struct.pack("<I", old.get(btype, btype))
        out.append(bytes(block))
    h = cap.headers
    for i, (offset, length) in enumerate(zip(h.block_offset, h.length.astype(np.int64))):
        record = bytes(buf[offset + 10:offset + 10 + length])
        cpu = bytes(buf[offset + 8:offset + 10])
        if i % 3 == 1:
            out.append(frame_block(bt.EVF, cpu + struct.pack("<I", i) + record))
        else:
            block = bytearray(frame_block(bt.EV, cpu + record))
            block[:4] = struct.pack("<I", bt.EV_INT)
            out.append(bytes(block))
    f = tmp_path / "rewritten.scap"
    f.write_bytes(b"".join(out))
    return f


@pytest.mark.corpus
def test_pre_release_ids_and_flagged_blocks(tmp_path):
    f = _rewritten(corpus_capture("falco-cat-write"), tmp_path)
    want = whole(f)
    assert want.error is None and len(want) == 345
    assert (want.cols["kind"] == 1).sum() == 115 and want.cols["dump_flags"].any()
    for config in ("default", "7-events", "200-bytes", "tiny-window"):
        assert_same(streamed(f, **CONFIGS[config]), want)


def test_records_reaching_past_flagged_blocks(tmp_path):
    """EVF_V2 blocks (dump flags) whose record claims more than the block: the bulk scan's
    workers read their length after the flags field; the reader reads on as Capture does."""
    events = [Event(1000 + i, 7, 0, 3, [bytes([i]) * 8, b"x" * (i % 5)], i % 3)
              for i in range(60)]
    f = tmp_path / "flagged.scap"
    with Writer(f) as w:
        w.write_section_header()
        w.write_block(bt.MI, struct.pack("<IQQ128sQQQQ", 2, 1 << 30, 0, b"host", 0, 0, 0, 0))
        w.write_event_list(events)
    clean = whole(f)
    assert set(clean.cols["kind"]) == {2, 3}
    data = f.read_bytes()
    offsets, kinds = clean.cols["block_offset"], clean.cols["kind"]
    for i in (5, 20, 58):
        at = int(offsets[i]) + (30 if kinds[i] == 3 else 26)  # the record length
        for length in (80, 400, 1 << 20):
            bad = bytearray(data)
            bad[at:at + 4] = struct.pack("<I", length)
            f.write_bytes(bytes(bad))
            _check_damaged(f, configs=("default", "7-events", "1-event", "200-bytes"))


# -- a pipe -------------------------------------------------------------------------------------

def _writer(fd, data, pieces, pause_after=None, pause=0.0, done=None):
    """Write data into a pipe in pieces of these sizes (cycled), pausing now and then."""
    def run():
        try:
            at, k = 0, 0
            while at < len(data):
                n = pieces[k % len(pieces)]
                if pause_after is not None and at < pause_after < at + n:
                    n = pause_after - at  # the pause comes exactly there
                os.write(fd, data[at:at + n])
                at += n
                k += 1
                if at == pause_after:
                    if done is not None:
                        done.append(time.monotonic())
                    time.sleep(pause)
                elif k % 4 == 0:
                    time.sleep(0.002)
            if done is not None:
                done.append(time.monotonic())
        finally:
            os.close(fd)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.corpus
@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_a_pipe_fed_slowly_gives_chunks_as_blocks_arrive(packed):
    capture = corpus_capture("sysflow-tcp-client-server")
    data = _block_stream(capture)
    if packed:
        data = gzip.compress(data, compresslevel=1)
    r, w = os.pipe()
    done = []
    thread = _writer(w, data, [997, 31, 4096, 5], done=done)
    arrived = []
    try:
        got = streamed(r, on_chunk=lambda c: arrived.append(time.monotonic()), max_events=100)
    finally:
        os.close(r)
    thread.join()
    assert_same(got, whole(capture))
    assert len(arrived) > 5 and arrived[0] < done[-1]


def _read_through_a_pause(source_for=lambda r, want, complete: r):
    """falco-ping-sendto written into a pipe by a writer that stops for 2 s in the middle of
    a block; `source_for(read_fd, whole reading, events complete before the pause)` is what
    the reader reads. Returns (events complete before the pause, when the chunk that hands
    the last of them out came, relative to the pause, [(events handed out so far, time)],
    the pause's start)."""
    capture = corpus_capture("falco-ping-sendto")
    data = _block_stream(capture)
    want = whole(capture)
    cut = len(data) * 2 // 3 + 7
    complete = int((want.cols["block_offset"] + _block_lengths(data, want) <= cut).sum())
    r, w = os.pipe()
    source = source_for(r, want, complete)
    done = []
    thread = _writer(w, data, [512], pause_after=cut, pause=2.0, done=done)
    seen = []
    try:
        got = streamed(source, on_chunk=lambda c: seen.append((c.first_event + len(c),
                                                               time.monotonic())))
    finally:
        os.close(r)
    thread.join()
    assert_same(got, want)
    when = next(t for n, t in seen if n >= complete)
    return complete, when - done[0], seen, done[0]


@pytest.mark.corpus
def test_a_live_reader_gets_what_is_complete_promptly():
    """The writer stops in the middle of a block for a while: every event before it is handed
    out within a fraction of that pause (max_wait_ms), not when more comes."""
    complete, waited, seen, paused = _read_through_a_pause()
    assert waited < 0.6, "complete events waited for the writer"
    assert max(n for n, t in seen if t < paused + 1.5) == complete


class _PromptedPipe(io.FileIO):
    """A pipe's read end with prompt types, as the live stream has them."""
    prompt_types = None


@pytest.mark.corpus
@pytest.mark.parametrize("prompt", ["pending", "absent"])
def test_events_of_prompt_types_go_out_at_once_the_others_may_wait(prompt):
    """With prompt types, complete events wait for more (up to QUIET_MAX_WAIT_MS) unless one
    of them is of those types: the live stream's way of working a chunk a second on a machine
    busy with calls that only build state, while a log write still shows at once."""
    def prompted(r, want, complete):
        source = _PromptedPipe(r, closefd=False)
        types = want.cols["type"].tolist()
        # a type pending before the pause, or one the capture does not have at all
        source.prompt_types = {types[complete - 1]} if prompt == "pending" else \
            {t for t in range(400) if t not in set(types)}
        assert prompt == "pending" or not (source.prompt_types & set(types[:complete]))
        return source

    _, waited, _, _ = _read_through_a_pause(prompted)
    if prompt == "pending":
        assert waited < 0.6, "an event of a prompt type waited"
    else:
        assert 0.8 < waited < 1.9, "the others wait up to QUIET_MAX_WAIT_MS, no more"


def _block_lengths(data, read):
    words = np.frombuffer(data[:len(data) // 4 * 4], dtype="<u4")
    return words[read.cols["block_offset"] // 4 + 1].astype(np.int64)


# -- damage ------------------------------------------------------------------------------------------

def _check_damaged(path, configs=("default", "7-events", "200-bytes")):
    want = whole(path, tables=False)
    for config in configs:
        assert_same(streamed(path, tables=False, **CONFIGS[config]), want)
    return want


def _cut_points(data, read, rng, count=25):
    """Offsets to cut at: in the SHB, in and around metadata blocks, in and between events."""
    points = set(range(0, 30, 3))
    for section in read.sections:
        for offset, _, total in section.metadata[:6] + section.metadata[-3:]:
            points |= {offset, offset + 5, offset + total // 2, offset + total - 1}
    offsets = read.cols["block_offset"]
    if len(offsets):
        for i in rng.choice(len(offsets), min(count, len(offsets)), replace=False):
            points |= {int(offsets[i]), int(offsets[i]) + 9, int(offsets[i]) + 30}
    points |= {len(data) - 1, len(data) - 4}
    return sorted(p for p in points if 0 <= p < len(data))


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["falco-empty-9e0651e", "falco-run-as-user-65534-container"])
def test_truncated_captures(name, tmp_path):
    data = _block_stream(corpus_capture(name))
    read = whole(corpus_capture(name))
    rng = np.random.default_rng(1)
    f = tmp_path / "cut.scap"
    for cut in _cut_points(data, read, rng):
        f.write_bytes(data[:cut])
        _check_damaged(f)


@pytest.mark.corpus
def test_truncated_in_a_later_section(tmp_path):
    """Cut in the second section's metadata or events: the first section's events are kept."""
    first = _block_stream(corpus_capture("falco-empty-99d6d5c"))
    second = _block_stream(corpus_capture("libs-sample"))
    read = whole(corpus_capture("libs-sample"))
    f = tmp_path / "cut.scap"
    rng = np.random.default_rng(2)
    for cut in _cut_points(second, read, rng, count=8)[::2]:
        f.write_bytes(first + second[:cut])
        want = _check_damaged(f)
        assert want.cols is None or len(want) >= 143


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["falco-empty-9e0651e", "libs-single-ipv6-conn"])
def test_truncated_gzip_streams(name, tmp_path):
    data = gzip.compress(_block_stream(corpus_capture(name)), compresslevel=6)
    f = tmp_path / "cut.scap.gz"
    for cut in sorted(set(np.linspace(1, len(data) - 1, 40).astype(int))):
        f.write_bytes(data[:cut])
        _check_damaged(f, configs=("default", "200-bytes"))


@pytest.mark.corpus
def test_corrupted_gzip_streams(tmp_path):
    """A damaged deflate stream: every byte zlib gives before the damage is read, by both."""
    data = gzip.compress(_block_stream(corpus_capture("libs-sample")), compresslevel=6)
    f = tmp_path / "bad.scap.gz"
    rng = np.random.default_rng(3)
    for at in rng.choice(np.arange(20, len(data) - 8), 25, replace=False):
        bad = bytearray(data)
        bad[at] ^= 0x5A
        f.write_bytes(bytes(bad))
        _check_damaged(f, configs=("default", "200-bytes"))


def _corruptions(data, read, rng):
    """(offset, new bytes): block types and lengths of metadata and event blocks, record
    lengths (records that then reach past their block), parameter lengths, random bytes."""
    offsets = read.cols["block_offset"]
    picks = rng.choice(len(offsets), 4, replace=False)
    for i in picks:
        at = int(offsets[i])
        yield at, b"\x99\x02\x00\x00"                      # no event block type
        yield at + 4, struct.pack("<I", 7)                  # invalid length
        yield at + 4, struct.pack("<I", 0x40)               # shorter: the rest misreads
        yield at + 4, struct.pack("<I", 0x7FFFFFF0)         # far past the end
        yield at + 7, b"\x01"                               # 16 MiB more
        yield at + 26, struct.pack("<I", 0x300)             # record reaches past its block
        yield at + 26, struct.pack("<I", 0xFFFFFF00)        # record far past the end
        yield at + 36, b"\xff\xff"                          # a parameter length
    for offset, _, total in read.sections[0].metadata[:3]:
        yield offset, b"\x04\x02\x00\x00"                   # an event block too early
        yield offset + 4, struct.pack("<I", total + 4)      # trailer mismatch
        yield offset + 4, struct.pack("<I", 0x7FFFFFF0)
    for at in rng.choice(len(data) - 4, 6, replace=False):
        yield int(at), bytes([int(rng.integers(256))])


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["sysdig-examples-nginx-3f89e2d", "libs-sample"])
def test_corrupted_captures(name, tmp_path):
    data = _block_stream(corpus_capture(name))
    read = whole(corpus_capture(name))
    f = tmp_path / "bad.scap"
    for at, patch in _corruptions(data, read, np.random.default_rng(4)):
        bad = bytearray(data)
        bad[at:at + len(patch)] = patch
        f.write_bytes(bytes(bad))
        _check_damaged(f)


@pytest.mark.corpus
def test_a_block_longer_than_a_reader_holds(tmp_path, monkeypatch):
    """A length past what the reader holds: the same error as Capture's when the stream ends
    first (the rest is read and dropped, not held), a refusal when it does not."""
    from scaptool.scap import stream
    limit = 100_000  # above the biggest metadata block here (72 KiB)
    monkeypatch.setattr(stream_window, "HOLD_LIMIT", limit)
    monkeypatch.setattr(stream, "HOLD_LIMIT", limit)
    data = _block_stream(corpus_capture("libs-sample")) * 2
    at = int(whole(corpus_capture("libs-sample")).cols["block_offset"][100])
    f = tmp_path / "long.scap"
    for length in ((len(data) - at + 1000) // 4 * 4, 150_000):
        bad = bytearray(data)
        bad[at + 4:at + 8] = struct.pack("<I", length)
        f.write_bytes(bytes(bad))
        if at + length > len(data):
            assert isinstance(_check_damaged(f, configs=("default", "200-bytes")).error,
                              scap.TruncatedError)
        else:
            got = streamed(f, tables=False, **CONFIGS["200-bytes"])
            assert len(got) == 100 and "more than a stream reader holds" in got.error.message
            assert got.error.offset == at


# -- lifetimes -------------------------------------------------------------------------------------

@pytest.mark.corpus
def test_chunks_held_stay_valid_and_windows_are_reused_when_free():
    capture = corpus_capture("sysflow-nginx")
    want = whole(capture)
    held = []
    ids = set()
    for item in StreamReader(capture, max_events=500, read_size=1 << 16):
        if isinstance(item, EventChunk):
            held.append(item)
    # every window was a new one: held chunks view them all, and their bytes did not change
    ts = np.concatenate([c.headers.ts for c in held]).astype(np.int64)
    assert np.array_equal(ts, want.cols["ts"])
    freed = []
    for item in StreamReader(capture, max_events=500, read_size=1 << 16):
        if isinstance(item, EventChunk):
            ids.add(item.buffer.base.__array_interface__["data"][0])
            freed.append(item.detached())
            del item
    assert len(ids) <= 3, "windows nothing refers to are reused"
    ts = np.concatenate([c.headers.ts for c in freed]).astype(np.int64)
    assert np.array_equal(ts, want.cols["ts"])
    assert all(c.buffer.base is None for c in freed)


def test_reading_twice_and_refusals(tmp_path):
    f = tmp_path / "x.scap"
    f.write_bytes(b"")
    with pytest.raises(scap.NotAScapError, match="empty file"):
        list(StreamReader(f))
    with pytest.raises(ScapError, match="no such file"):
        list(StreamReader(tmp_path / "none.scap"))
    f.write_bytes(b"not a capture, clearly not")
    reader = StreamReader(f)
    with pytest.raises(scap.NotAScapError, match="no section header block"):
        list(reader)
    with pytest.raises(ScapError, match="once"):
        iter(reader)
    with pytest.raises(ValueError):
        StreamReader(f, max_events=0)


# -- written by our writer ---------------------------------------------------------------------------

LIBS = eventtable.libs()
EVENT_IDS = [e.id for e in LIBS]

event = st.builds(
    lambda ts, tid, cpu, etype, params, flags: Event(ts, tid, cpu, etype, params, flags),
    st.integers(0, 2**64 - 1), st.integers(-2**63, 2**63 - 1), st.integers(0, 2**16 - 1),
    st.sampled_from(EVENT_IDS), st.lists(st.binary(max_size=40), max_size=6),
    st.sampled_from([0, 0, 0, 1, 0x10]))
section = st.tuples(st.booleans(), st.lists(event, max_size=25))
bounds = st.fixed_dictionaries({"max_events": st.integers(1, 30),
                                "max_bytes": st.integers(1, 3000),
                                "read_size": st.integers(1, 3000)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(sections=st.lists(section, min_size=1, max_size=3), compress=st.booleans(),
       options=bounds)
def test_written_captures_read_back(tmp_path, sections, compress, options):
    f = tmp_path / "written.scap"
    parts = []
    for with_machine, events in sections:
        part = tmp_path / "part.scap"
        with Writer(part, compress=compress) as w:
            w.write_section_header()
            if with_machine or not events:
                w.write_block(bt.MI, struct.pack("<IQQ128sQQQQ", 2, 1 << 30, 0, b"host", 0, 0,
                                                 0, 0))
            w.write_event_list([e._replace(params=e.params[:LIBS[e.type].nparams])
                                for e in events])
        parts.append(part.read_bytes())
    f.write_bytes(b"".join(parts))
    want = whole(f)
    assert want.error is None
    assert_same(streamed(f, **options), want)
