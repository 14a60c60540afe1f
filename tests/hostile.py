"""Captures built to exhaust a reader's memory or time (tests/test_hostile.py, and seeds for the
fuzz targets in fuzz/): each is small on disk and claims, or expands to, far more.

Everything is made here from the format's facts; nothing is copied from a real capture.
"""
import pathlib
import struct
import sys
import zlib

from scaptool.scap import blocktypes as bt
from scaptool.scap.writer import SECTION_HEADER, Event, frame_block

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "fixtures"))
import make_scenario as scenario  # noqa: E402 - the seed scenario's machine and threads

GIB = 1 << 30
MACHINE = frame_block(bt.MI, struct.pack("<IQQ128sQQQQ", 2, 1 << 30, 0, b"hostile", 0, 0, 0, 0))


def _record(ts, tid, etype, params, large=False):
    """One V2 event record with these raw parameters."""
    width = "<I" if large else "<H"
    lens = b"".join(struct.pack(width, len(p)) for p in params)
    return struct.pack("<QQIHI", ts, tid, 26 + len(lens) + sum(map(len, params)), etype,
                       len(params)) + lens + b"".join(params)


def event_block(ts, tid, etype, params, large=False):
    return frame_block(bt.EV_V2_LARGE if large else bt.EV_V2,
                       struct.pack("<H", 0) + _record(ts, tid, etype, params, large))


def _zero_member(size):
    """A gzip member of `size` zero bytes (about size/1000 bytes of it)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    piece = bytes(16 << 20)
    out = []
    for _ in range(size // len(piece)):
        out.append(packer.compress(piece))
    out.append(packer.compress(bytes(size % len(piece))))
    out.append(packer.flush())
    return b"".join(out)


def gzip_bomb(path, expands_to=20 * GIB):
    """A gzip capture: a valid section header, then `expands_to` bytes of zeros, as gzip
    members of 1 GiB repeated (a member is 1 MB on disk: 20 GiB is 20 MB)."""
    head = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = _zero_member(GIB)
    with open(path, "wb") as f:
        f.write(head.compress(SECTION_HEADER + MACHINE) + head.flush())
        for _ in range(expands_to // GIB):
            f.write(member)
    return path


def gzip_bomb_in_a_block(path, expands_to=8 * GIB):
    """A gzip capture whose first event block claims 4 GiB and is followed by zeros."""
    head = zlib.compressobj(9, zlib.DEFLATED, 31)
    claim = struct.pack("<II", bt.EV_V2_LARGE, 0xFFFFFFFC)
    member = _zero_member(GIB)
    with open(path, "wb") as f:
        f.write(head.compress(SECTION_HEADER + MACHINE + claim) + head.flush())
        for _ in range(expands_to // GIB):
            f.write(member)
    return path


def block_claiming(path, block_type=bt.EV_V2_LARGE, length=0xFFFFFFFC):
    """A plain capture: one good event, then a block whose header claims `length` bytes."""
    good = event_block(1000, 42, 6, [struct.pack("<q", 3), struct.pack("<I", 8)])
    pathlib.Path(path).write_bytes(SECTION_HEADER + MACHINE + good
                                   + struct.pack("<II", block_type, length) + bytes(64))
    return path


def parameter_claiming(path, length=0xFFFFFFF0):
    """A plain capture whose only event says its one parameter is `length` bytes long."""
    record = struct.pack("<QQIHII", 1000, 42, 30 + 64, 3, 1, length) + bytes(64)
    pathlib.Path(path).write_bytes(SECTION_HEADER + MACHINE
                                   + frame_block(bt.EV_V2_LARGE, struct.pack("<H", 0) + record))
    return path


def empty_blocks(path, count=2_000_000, block_type=0x7777):
    """A capture of `count` empty blocks (header and trailer only) of a type no reader knows,
    between the metadata and one event."""
    empty = struct.pack("<III", block_type, 12, 12)
    good = event_block(1000, 42, 6, [struct.pack("<q", 3), struct.pack("<I", 8)])
    pathlib.Path(path).write_bytes(SECTION_HEADER + MACHINE + empty * count + good)
    return path


def empty_events(path, count=2_000_000):
    """A capture of `count` event blocks whose events have no parameters at all."""
    one = event_block(0, 42, 6, [])
    body = bytearray(one * count)
    # distinct timestamps, written in place: the record's ts is at byte 10 of each block
    stamps = memoryview(body)
    for k in range(0, count, 1):
        struct.pack_into("<Q", stamps, k * len(one) + 10, 1000 + k)
    pathlib.Path(path).write_bytes(SECTION_HEADER + MACHINE + bytes(body))
    return path


def process_list_claiming(path, entries=4_000_000_000):
    """A process-list block whose only entry claims `entries` bytes (every length in the
    entry at its largest), then an event."""
    body = struct.pack("<I", entries) + bytes(256)
    good = event_block(1000, 42, 6, [struct.pack("<q", 3), struct.pack("<I", 8)])
    pathlib.Path(path).write_bytes(SECTION_HEADER + MACHINE + frame_block(bt.PL_V9, body) + good)
    return path


def longest_strings(path, json_size=16 << 20):
    """Every string the format lets be long, at its longest: the process list's strings and
    an fd name at 64 KiB less one (their lengths are 16-bit), an open of such a path and a
    write of such a buffer holding terminal escapes, and a container event (the large-payload
    kind, 324, with 32-bit lengths) whose JSON is `json_size` bytes."""
    most = 0xFFFF - 1   # and the terminating NUL
    text = b"x" * most
    huge = b"\x1b[2J\x07" + b"A" * (most - 5)
    threads = [(scenario.WORKER, scenario.MASTER, scenario.MASTER, text, text, text, text, 33,
                33, text)]
    fds = {scenario.WORKER: [scenario.file_fd(7, 4242, text, 1)]}
    name = "n" * json_size
    events = [
        Event(scenario.T0 + 500, -1, 0, 324, [('{"container":{"id":"0123456789ab","name":"'
                                                + name + '"}}').encode() + b"\x00"]),
        scenario.event(1_000, scenario.WORKER, "open", ">", name=text, flags=1, mode=0),
        scenario.event(2_000, scenario.WORKER, "open", "<", fd=7, name=text, flags=1, mode=0,
                       dev=0),
        scenario.event(3_000, scenario.WORKER, "write", ">", fd=7, size=len(huge)),
        scenario.event(4_000, scenario.WORKER, "write", "<", res=len(huge), data=huge),
    ]
    scenario.write(path, threads=threads, fds=fds, events=events)
    return path


def deep_json_container(path, depth=100_000):
    """A container event (the large-payload kind, 324, whose JSON may pass 64 KiB) whose
    JSON nests `depth` lists deep inside "container"."""
    nested = "[" * depth + "]" * depth
    text = '{"container":{"id":"0123456789ab","name":"deep","x":' + nested + '}}'
    json_param = text.encode() + b"\x00"
    events = [Event(scenario.T0 + 1_000, -1, 0, 324, [json_param]),
              scenario.event(2_000, scenario.WORKER, "open", ">", name=b"/etc/hosts", flags=1,
                             mode=0)]
    scenario.write(path, events=events)
    return path


def control_character_names(path):
    """The seed scenario with a process whose name, arguments and an opened path hold
    terminal escape sequences, and a write of a buffer that holds them."""
    evil = "\x1b]0;owned\x07\x1b[2J\x1b[31mred"
    events = [
        scenario.event(1_000, scenario.WORKER, "open", ">", name=f"/tmp/{evil}".encode(), flags=1, mode=0),
        scenario.event(2_000, scenario.WORKER, "open", "<", fd=9, name=f"/tmp/{evil}".encode(), flags=1,
                       mode=0, dev=0),
        scenario.event(3_000, scenario.WORKER, "write", ">", fd=9, size=len(evil)),
        scenario.event(4_000, scenario.WORKER, "write", "<", res=len(evil),
                       data=evil.encode()),
    ]
    threads = [t[:3] + (b"ph\x1b[2Jp",) + t[4:] if t[0] == scenario.WORKER else t
               for t in scenario.THREADS]
    scenario.write(path, threads=threads, events=events)
    return path


# -- running a command within bounds ------------------------------------------------------------

# Runs the command given after it and prints, as JSON on its last line of stderr, the exit
# status, the wall time and the child's peak RSS. Being small itself, it gives the child a
# small start: Linux counts a child's peak RSS from its parent's at the fork (and across the
# exec), so measured straight from pytest it would include pytest's own.
_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.monotonic()
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"status": os.waitstatus_to_exitcode(status),
                  "seconds": time.monotonic() - started,
                  "peak_mb": usage.ru_maxrss / 1024}), file=sys.stderr)
"""


def run_bounded(command, timeout=60, stdin=None):
    """Run `command`; (exit status, seconds, peak RSS in MB, stdout bytes, stderr text)."""
    import subprocess
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *map(str, command)],
                          capture_output=True, timeout=timeout, stdin=stdin)
    err = done.stderr.decode("utf-8", "replace").rstrip("\n").split("\n")
    import json as _json
    figures = _json.loads(err[-1])
    return (figures["status"], figures["seconds"], figures["peak_mb"], done.stdout,
            "\n".join(err[:-1]))
