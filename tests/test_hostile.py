"""Inputs built to exhaust memory or time (tests/hostile.py makes them): each gives a clean
one-line error or a result, within TIME_S seconds and PEAK_MB of memory, in every way a
user reads it: `-r` (the streaming engine), `info` and a chisel (the whole-capture reader),
a filter, JSON output.

The bounds are the command's own: its wall time and its peak resident memory (which includes
the ~100-200 MB that Python, numpy and Polars take to start)."""
import gzip
import os
import sys

import pytest

import hostile
from hostile import run_bounded

TIME_S = 10
PEAK_MB = 500
SCAPTOOL = [sys.executable, "-m", "scaptool"]
COMMANDS = {
    "read": lambda path: ["-r", path],
    "info": lambda path: ["info", path],
    "chisel": lambda path: ["-r", path, "-c", "topfiles_bytes"],
    "filter-json": lambda path: ["-r", path, "-j", "proc.name exists"],
}


def bounded(*args, timeout=120):
    status, seconds, peak, out, err = run_bounded([*SCAPTOOL, *args], timeout=timeout)
    assert seconds < TIME_S, f"{args}: {seconds:.1f} s"
    assert peak < PEAK_MB, f"{args}: {peak:.0f} MB"
    assert "Traceback" not in err and "internal error" not in err, err
    return status, out, err


def one_line_error(status, err, *words):
    assert status == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scaptool: "), err
    for word in words:
        assert word in lines[0], err
    return lines[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Each hostile capture, made once for the module."""
    folder = tmp_path_factory.mktemp("hostile")
    cache = {}

    def make(name, maker, *args):
        if name not in cache:
            cache[name] = maker(folder / name, *args)
        return str(cache[name])
    return make


@pytest.mark.parametrize("command", COMMANDS)
def test_gzip_bomb_of_zeros_after_a_sound_start(made, command):
    """20 MB of gzip that expand to 20 GiB of zeros after a valid section header and machine
    block: the first block of zeros is damage, found in the first piece inflated."""
    path = made("bomb.scap.gz", hostile.gzip_bomb, 20 * hostile.GIB)
    assert os.path.getsize(path) < 25 << 20
    status, out, err = bounded(*COMMANDS[command](path))
    one_line_error(status, err, "offset 220", "invalid block length 0")


@pytest.mark.parametrize("command", COMMANDS)
def test_gzip_bomb_inside_a_block_claiming_4_gib(made, command):
    """A block claiming 4 GiB, its body 8 GiB of zeros from a few MB of gzip: more than a
    reader holds, said without holding it."""
    path = made("bomb-block.scap.gz", hostile.gzip_bomb_in_a_block, 8 * hostile.GIB)
    status, out, err = bounded(*COMMANDS[command](path))
    assert "4294967292 bytes" in err and "more than" in err, err
    if command != "info":
        one_line_error(status, err, "offset 220")


@pytest.mark.parametrize("block_type", [hostile.bt.EV_V2_LARGE, hostile.bt.PL_V9],
                         ids=["event", "process-list"])
@pytest.mark.parametrize("command", ["read", "info"])
def test_a_block_claiming_4_gib(made, block_type, command):
    path = made(f"claim-{block_type:x}.scap", hostile.block_claiming, block_type)
    status, out, err = bounded(*COMMANDS[command](path))
    assert "offset 276" in err, err
    if command == "read":
        one_line_error(status, err)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_parameter_claiming_4_gib(made, command):
    """Its value runs past its event: shown as far as the event goes, as sysdig reads it."""
    path = made("param.scap", hostile.parameter_claiming)
    status, out, err = bounded(*COMMANDS[command](path))
    assert status == 0, err


@pytest.mark.parametrize("command", ["read", "info"])
def test_process_list_entry_claiming_billions(made, command):
    path = made("proclist.scap", hostile.process_list_claiming)
    status, out, err = bounded(*COMMANDS[command](path))
    one_line_error(status, err, "offset 220", "PL_V9", "3999999996")


@pytest.mark.parametrize("command", ["read", "info"])
def test_two_million_empty_blocks(made, command):
    """Blocks of a type libscap skips are counted, not listed, so that millions of them cost
    time in proportion and little memory; the event after them is read."""
    path = made("empty-blocks.scap", hostile.empty_blocks, 2_000_000)
    status, out, err = bounded(*COMMANDS[command](path))
    assert status == 0, err
    assert (b"> read fd=3 size=8" in out) if command == "read" else (b"2000000" in out)


def test_two_million_events_without_parameters(made):
    path = made("empty-events.scap", hostile.empty_events, 2_000_000)
    status, out, err = bounded("-r", path, "-q", "-S")
    assert status == 0 and b"2000000" in out.replace(b",", b""), (out[-300:], err)


@pytest.mark.parametrize("command", COMMANDS)
def test_the_longest_strings_the_format_allows(made, command):
    """64 KiB less one in every 16-bit-length string (process list, fd name, path, buffer)
    and a 16 MiB container JSON."""
    path = made("longest.scap", hostile.longest_strings)
    status, out, err = bounded(*COMMANDS[command](path))
    assert status == 0, err


@pytest.mark.parametrize("command", COMMANDS)
def test_container_json_nested_100000_deep(made, command):
    """Nested deeper than any JSON parser recurses (jsoncpp, sysdig's, stops at 1,000): the
    event describes no container, and the events after it are read."""
    path = made("deep.scap", hostile.deep_json_container, 100_000)
    status, out, err = bounded(*COMMANDS[command](path))
    assert status == 0, err
    if command == "read":
        assert b"open name=/etc/hosts" in out


def test_container_fields_of_a_deep_json(made):
    path = made("deep.scap", hostile.deep_json_container, 100_000)
    status, out, err = bounded("-r", path, "-p", "%container.name %evt.type")
    assert status == 0 and out.split(b"\n")[0] == b"host open", (out, err)


def test_a_100_kb_filter_compiles_in_linear_time():
    """5,000 `or`-ed comparisons (a Falco condition with its lists expanded is this long)."""
    words = ["evt.type=open", "and", "("]
    for k in range(5000):
        words += [f"fd.name=/var/lib/app/data-file-{k:05d}.db", "or"]
    words[-1] = ")"
    assert len(" ".join(words)) > 100_000   # (as words: one argument may not pass 128 KiB)
    status, out, err = bounded("-r", hostile.scenario.OUTPUT, *words)
    assert status == 0, err


@pytest.mark.parametrize("condition", [
    'fd.name regex "(a|a)*(a|a)*(a|a)*b"',
    'fd.name regex "(a*)*$x"',
    'fd.name glob "*a*a*a*a*a*a*a*a*a*a*a*a*b"',
    'fd.name pmatch (/aaaa*a*a*a*a*a*a*a*a*a*b, /x)',
    'proc.name icontains "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"',
])
def test_patterns_that_make_backtracking_engines_exponential(made, condition):
    """regex, glob and pmatch run on a linear-time engine (Rust's regex, through Polars):
    a 64 KiB path of 'a's does not make them take exponential time."""
    path = made("longest-a.scap", _long_a_path)
    status, out, err = bounded("-r", path, condition)
    assert status == 0 and out == b"", (out[:200], err)


def _long_a_path(path):
    a = b"/" + b"a" * 0xFFF0
    events = [hostile.scenario.event(1_000, hostile.scenario.WORKER, "open", "<", fd=7, name=a,
                                     flags=1, mode=0, dev=0),
              hostile.scenario.event(2_000, hostile.scenario.WORKER, "close", ">", fd=7)]
    hostile.scenario.write(path, events=events)
    return path


def test_a_regex_too_big_to_compile_is_a_filter_error():
    status, out, err = bounded("-r", hostile.scenario.OUTPUT, 'fd.name regex "(((a{100}){100}){100})"')
    assert status == 2 and len(err.strip().splitlines()) == 1 and "filter" in err, err


def test_gzip_member_damaged_at_its_checksum_keeps_every_byte_whatever_the_pieces():
    """Found by fuzz_gzip: a CRC error at a member's end lost its last byte or not depending
    on how the input came in pieces (a pipe, a file); now it is the same either way."""
    from scaptool.scap.source import GzipInflater
    packed = bytearray(gzip.compress(b"x" * 348, mtime=0))
    packed[-8] ^= 0xFF   # the CRC
    results = set()
    for piece in (1, 2, 7, 100, len(packed)):
        inflater = GzipInflater()
        out = b""
        for at in range(0, len(packed), piece):
            inflater.feed(bytes(packed[at:at + piece]))
            while chunk := inflater.inflate(1 << 16):
                out += chunk
        inflater.feed(b"")
        while chunk := inflater.inflate(1 << 16):
            out += chunk
        results.add((out, inflater.damage.offset))
    assert len(results) == 1, {(len(o), d) for o, d in results}


def test_parameter_names_no_event_has_cost_no_memory_each():
    """evt.arg.NAME with ever new names (a fuzzer found it: 192 KB kept per name, 1.5 GB after
    ~100,000 formats) share one table."""
    from scaptool import scap
    from scaptool.scap import capture as capture_module
    import pathlib
    fixture = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / \
        "php-database-error.scap"
    with scap.open(fixture) as cap:
        cap.param("fd")
        before = capture_module._layout_of.cache_info().currsize
        for k in range(200):
            assert cap.param(f"no_such_parameter_{k}").null_count() == len(cap)
        assert capture_module._layout_of.cache_info().currsize <= before + 1
