"""scaptool merge: captures interleaved by time in one capture that sysdig and scaptool read with
every event's process and fd names as in its own capture; thread ids two machines share kept
apart."""
import pathlib
import struct
import subprocess
import sys

from conftest import COMPARE_ENV, corpus_capture, require_tool

from scaptool.scap import blocktypes as bt
from scaptool.scap import merge

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
# every event, with what a reader knows of its process and fd: the same in the merged capture
# as in its own (the event number and thread id are the merged capture's own)
NAMES = "*%evt.rawtime %evt.cpu %evt.type %evt.dir %proc.name %proc.exepath %fd.name"


def sysdig_lines(*paths, fmt=NAMES):
    sysdig = require_tool("sysdig")
    lines = []
    for path in paths:
        done = subprocess.run([sysdig, "-r", str(path), "-p", fmt], capture_output=True,
                              text=True, errors="replace", env=COMPARE_ENV, timeout=300)
        assert done.returncode == 0, done.stderr
        lines += done.stdout.splitlines()
    return lines


def scaptool_lines(path, fmt=NAMES):
    done = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(path), "-p", fmt],
                          capture_output=True, text=True, errors="replace", env=COMPARE_ENV,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def merged(tmp_path, *paths):
    out = tmp_path / "merged.scap"
    done = subprocess.run([sys.executable, "-m", "scaptool", "merge", *map(str, paths), "-w",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def test_three_corpus_captures_keep_their_names_for_sysdig_and_scaptool(tmp_path):
    sources = [corpus_capture(n) for n in ("falco-cat-write", "falco-connect-localhost",
                                           "libs-curl-google")]
    out = merged(tmp_path, *sources)
    expected = sorted(sysdig_lines(*sources))
    assert len(expected) > 1000
    assert sorted(sysdig_lines(out)) == expected
    assert sorted(scaptool_lines(out)) == expected
    times = [int(line.split()[0]) for line in sysdig_lines(out)]
    assert times == sorted(times)


def moved(source, out, seconds, hostname):
    """A copy of a capture our writer made (EV_V2 blocks) as if taken on another machine:
    another hostname, every event `seconds` later. Its thread ids are the source's."""
    data = bytearray(pathlib.Path(source).read_bytes())
    at = 0
    while at + 8 <= len(data):
        kind, length = struct.unpack_from("<II", data, at)
        if kind == bt.MI:
            name = hostname.encode().ljust(128, b"\0")
            data[at + 8 + 2 + 8 + 8:at + 8 + 2 + 8 + 8 + 128] = name
        elif kind in (bt.EV_V2, bt.EV_V2_LARGE):
            ts, = struct.unpack_from("<Q", data, at + 10)
            struct.pack_into("<Q", data, at + 10, ts + int(seconds * 1e9))
        at += length
    pathlib.Path(out).write_bytes(bytes(data))
    return out


def test_two_machines_with_the_same_thread_ids_interleave_and_stay_apart(tmp_path):
    """The seed story and the same story on another machine 5 ms later: every thread id in
    both. The merged events alternate between them and each keeps its names; the second
    machine's threads get ids of their own."""
    first = FIXTURES / "php-database-error-live.scap"
    second = moved(first, tmp_path / "other.scap", 0.005, "other-host")
    out = merged(tmp_path, first, second)
    expected = sorted(sysdig_lines(first, second))
    ours = sysdig_lines(out)
    assert sorted(ours) == expected
    assert sorted(scaptool_lines(out)) == expected
    # the first machine's events are as they were (its ids kept), the second's alternate
    # with them, under thread ids of their own, as many as the first machine has
    fmt = "*%evt.rawtime %thread.tid %proc.name"
    mine = set(sysdig_lines(first, fmt=fmt))
    rows = sysdig_lines(out, fmt=fmt)
    from_first = [line in mine for line in rows]
    assert sum(from_first) == len(rows) // 2
    assert sum(a != b for a, b in zip(from_first, from_first[1:])) > 10
    first_tids = {line.split()[1] for line in mine}
    second_tids = {line.split()[1] for line, f in zip(rows, from_first) if not f}
    assert len(second_tids) == len(first_tids) and not first_tids & second_tids


def test_merge_tells_what_it_renumbered_and_writes_every_event(tmp_path):
    """Two captures of one machine (same hostname and boot time) share their thread ids; a
    third from another machine with the same ids gets new ones."""
    from scaptool import scap
    first = FIXTURES / "php-database-error.scap"
    same_machine = FIXTURES / "story-child-exit.scap"
    other = moved(first, tmp_path / "other.scap", 1, "other-host")
    sources = [first, same_machine, other]
    result = merge.merge(sources, tmp_path / "m.scap")
    assert result.renumbered[0] == result.renumbered[1] == 0
    assert result.renumbered[2] > 0
    counts = []
    for path in [*sources, tmp_path / "m.scap"]:
        with scap.open(path) as capture:
            counts.append(len(capture))
    assert result.events == counts[-1] == sum(counts[:-1])


def test_one_capture_or_a_missing_one_is_one_line(tmp_path):
    for words in (["merge", str(FIXTURES / "php-database-error.scap"), "-w",
                   str(tmp_path / "m.scap")],
                  ["merge", str(FIXTURES / "php-database-error.scap"),
                   str(tmp_path / "missing.scap"), "-w", str(tmp_path / "m.scap")]):
        done = subprocess.run([sys.executable, "-m", "scaptool", *words], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "m.scap").exists()
