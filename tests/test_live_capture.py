"""Live capture on this machine with the libbpf helper (scap/live), checked event by event.

The helper is built from scratch into a temporary directory, captures real commands as root,
and what it writes is read back by scaptool's own decoder and by Debian's sysdig 0.29.3, which
must print the same default output. Without root, BTF or the build tools these tests skip; in
CI (SCAPTOOL_REQUIRE_TOOLS=1) they fail instead.
"""
import os
import pathlib
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from scaptool import scap
from conftest import require_live_capture, require_tool
from scaptool.scap import live
from scaptool.scap.codecs import codec_for
from scaptool.scap.eventtable import sysdig_0293
from scaptool.scap.schema import iter_blocks

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = dict(os.environ, TZ="UTC", LC_ALL="C")
TABLE = sysdig_0293()
EV_V2 = 0x216
AT_FDCWD = -100


@dataclass
class Ev:
    num: int
    ts: int
    tid: int
    cpu: int
    type: int
    name: str
    dir: str
    params: dict = field(default_factory=dict)


def decode(path):
    """Every event of a capture, its parameters decoded by the 0.29.3 table: independent of
    scaptool's vectorized reader and of its renderer."""
    events = []
    for _, block_type, _, body in iter_blocks(pathlib.Path(path).read_bytes()):
        if block_type != EV_V2:
            continue
        cpu, = struct.unpack_from("<H", body)
        ts, tid, length, etype, nparams = struct.unpack_from("<QQIHI", body, 2)
        lens = struct.unpack_from(f"<{nparams}H", body, 28)
        assert 26 + 2 * nparams + sum(lens) == length
        info = TABLE[etype]
        assert nparams == len(info.params), f"{info.name}: {nparams} params"
        pos = 28 + 2 * nparams
        params = {}
        for p, n in zip(info.params, lens):
            params[p.name] = codec_for(p.type).decode(body[pos:pos + n])
            pos += n
        events.append(Ev(len(events) + 1, ts, tid, cpu, etype, info.name, info.direction,
                         params))
    return events


def text(value):
    return value.rstrip(b"\0").decode() if isinstance(value, bytes) else value


def first_difference(theirs, ours):
    """The first line where two outputs differ (for a failing comparison's message)."""
    a, b = theirs.splitlines(), ours.splitlines()
    for k, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {k + 1}:\n sysdig:   {x}\n scaptool: {y}"
    return f"lengths differ: sysdig {len(a)} lines, scaptool {len(b)}"


def both_readers(path):
    """(sysdig's default output, scaptool's) for a capture."""
    sysdig = require_tool("sysdig")
    theirs = subprocess.run([sysdig, "-r", str(path)], capture_output=True, env=ENV)
    ours = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(path)],
                          capture_output=True, env=ENV, cwd=ROOT)
    assert theirs.returncode == 0, theirs.stderr.decode()
    assert ours.returncode == 0, ours.stderr.decode()
    return theirs.stdout.decode(errors="replace"), ours.stdout.decode(errors="replace")


@pytest.fixture(scope="module")
def helper(tmp_path_factory):
    """The helper, built from scratch (as CI does) into a fresh cache directory."""
    require_live_capture()
    out = tmp_path_factory.mktemp("helper-build")
    started = time.monotonic()
    binary = live.build_helper(out)
    assert binary.is_file() and os.access(binary, os.X_OK)
    assert time.monotonic() - started < 120
    # nothing was written into the source tree
    assert not (ROOT / "scap" / "live" / "build").exists()
    old = os.environ.get("SCAPTOOL_HELPER_DIR")
    os.environ["SCAPTOOL_HELPER_DIR"] = str(out)
    yield binary
    if old is None:
        os.environ.pop("SCAPTOOL_HELPER_DIR", None)
    else:
        os.environ["SCAPTOOL_HELPER_DIR"] = old


# --------------------------------------------------------------------------------------------
# the shell appends 'hello' to a log file

@pytest.fixture(scope="module")
def hello(helper, tmp_path_factory):
    work = tmp_path_factory.mktemp("hello")
    log = work / "x.log"
    out = work / "hello.scap"
    stats = live.capture(out, command=["sh", "-c", f"echo hello >> {log}"])
    assert log.read_text() == "hello\n"
    return out, log, stats, decode(out)


def test_hello_capture_reads_back(hello):
    out, log, stats, events = hello
    assert stats["drops"] == 0 and stats["command_status"] == 0
    assert stats["events"] == len(events) > 0
    # the shell's execve: the command line is the shell's
    execs = [e for e in events if e.name == "execve" and e.dir == "<" and e.params["res"] == 0]
    assert len(execs) == 1
    shell = execs[0]
    assert text(shell.params["comm"]) == "sh"
    assert shell.params["args"] == f"-c\0echo hello >> {log}\0".encode()
    assert shell.params["tid"] == shell.params["pid"] == shell.tid
    tid = shell.tid
    # the openat of the log file, enter and exit
    opens = [e for e in events if e.name == "openat" and e.tid == tid
             and text(e.params["name"]) == str(log)]
    assert [e.dir for e in opens] == [">", "<"]
    fd = opens[1].params["fd"]
    assert fd >= 0 and opens[1].params["dirfd"] == AT_FDCWD
    assert opens[1].params["flags"] == 14      # O_APPEND|O_CREAT|O_WRONLY, PPM encoding
    assert opens[1].params["dev"] != 0
    # the write of 'hello\n'
    writes = [e for e in events if e.name == "write" and e.tid == tid]
    assert [e.dir for e in writes] == [">", "<"]
    assert writes[0].params["size"] == 6
    assert writes[1].params["res"] == 6 and writes[1].params["data"] == b"hello\n"
    # and the exit
    exits = [e for e in events if e.name == "procexit" and e.tid == tid]
    assert len(exits) == 1 and exits[0].params["status"] == 0
    assert events.index(shell) < events.index(opens[0]) < events.index(writes[1]) < \
        events.index(exits[0])
    # in time order, and stamped with the wall clock
    stamps = [e.ts for e in events]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] / 1e9 - time.time()) < 600


def test_hello_capture_through_the_library(hello):
    out, log, _, _ = hello
    capture = scap.open(out)
    assert capture.damage is None
    frame = capture.events(params=["data", "name"])
    writes = frame.filter((frame["name"] == "write") & (frame["dir"] == "<"))
    assert b"hello\n" in writes["arg.data"].to_list()
    # the metadata blocks Python wrote: the command is in the thread list before it runs
    procs = capture.processes
    assert len(procs) > 0


def test_hello_capture_sysdig_prints_what_scaptool_prints(hello):
    out, log, _, events = hello
    theirs, ours = both_readers(out)
    assert theirs == ours, first_difference(theirs, ours)
    assert f"> openat dirfd=-100(AT_FDCWD) name={log} flags=14(O_APPEND|O_CREAT|O_WRONLY) " \
        "mode=0666 " in theirs
    assert "< write res=6 data=hello. " in theirs
    assert " sh (" in theirs and "> procexit status=0 ret=0 sig=0 core=0 " in theirs
    assert len(theirs.splitlines()) == len(events)


# --------------------------------------------------------------------------------------------
# every covered syscall, made by a test program with known arguments

@pytest.fixture(scope="module")
def exercise(helper, tmp_path_factory):
    work = tmp_path_factory.mktemp("exercise")
    program = work / "exercise"
    cc = subprocess.run(["cc", "-O0", "-o", str(program), str(ROOT / "scap/live/exercise.c")],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    run_dir = work / "run"
    run_dir.mkdir()
    out = work / "exercise.scap"
    stats = live.capture(out, command=[str(program), str(run_dir)])
    assert stats["command_status"] == 7 and stats["drops"] == 0
    report = dict(line.split("=", 1) for line in
                  (run_dir / "report.txt").read_text().splitlines())
    events = decode(out)
    main = next(e.tid for e in events if e.name == "execve" and e.dir == "<"
                and text(e.params["comm"]) == "exercise")
    return Calls(events, main, report, run_dir, out)


class Calls:
    def __init__(self, events, main, report, run_dir, path):
        self.events, self.main, self.report, self.run_dir, self.path = \
            events, main, report, run_dir, path

    def num(self, key):
        return int(self.report[key])

    def pair(self, syscall, nth=0, tid=None, /, **match):
        """The nth (enter, exit) of a syscall by `tid` (default: the program's main thread)
        whose exit params equal `match`."""
        tid = self.main if tid is None else tid
        out = []
        pending = None
        for e in self.events:
            if e.name != syscall or e.tid != tid:
                continue
            if e.dir == ">":
                pending = e
            elif pending is not None:
                if all(e.params.get(k) == v or text(e.params.get(k)) == v
                       for k, v in match.items()):
                    out.append((pending, e))
                pending = None
        assert len(out) > nth, f"no {syscall} #{nth} with {match}"
        return out[nth]


def tuple_of(value):
    return (str(value.sip), value.sport, str(value.dip), value.dport)


def test_exercise_files_open_creat_close(exercise):
    c = exercise
    enter, exit_ = c.pair("open", name="a.txt")
    assert text(enter.params["name"]) == "a.txt"
    assert enter.params["flags"] == exit_.params["flags"] == 262   # O_TRUNC|O_CREAT|O_WRONLY
    assert enter.params["mode"] == exit_.params["mode"] == 0o640
    assert exit_.params["fd"] == c.num("open")
    dev = c.num("dev")
    assert exit_.params["dev"] == dev
    enter, exit_ = c.pair("creat")
    assert text(enter.params["name"]) == text(exit_.params["name"]) == "b.txt"
    assert exit_.params["mode"] == 0o600 and exit_.params["fd"] == c.num("creat")
    closes = [c.pair("close", n) for n in range(5)]
    assert any(enter.params["fd"] == c.num("open") and exit_.params["res"] == 0
               for enter, exit_ in closes)


def test_exercise_openat_openat2(exercise):
    c = exercise
    enter, exit_ = c.pair("openat", name="a.txt")
    assert enter.params["dirfd"] == exit_.params["dirfd"] == AT_FDCWD
    assert enter.params["flags"] == 1 and exit_.params["fd"] == c.num("openat")
    enter, exit_ = c.pair("openat2")
    assert text(enter.params["name"]) == text(exit_.params["name"]) == "a.txt"
    assert exit_.params["flags"] == 4097                       # O_RDONLY|O_CLOEXEC
    assert exit_.params["resolve"] == 8                        # PPM RESOLVE_NO_SYMLINKS
    assert exit_.params["fd"] == c.num("openat2")


def test_exercise_read_write_family(exercise):
    c = exercise
    enter, exit_ = c.pair("write", data=b"write-data")
    assert enter.params["size"] == 10 and exit_.params["res"] == 10
    enter, exit_ = c.pair("pwrite")
    assert enter.params["size"] == 6 and enter.params["pos"] == 100
    assert exit_.params["data"] == b"pwrite"
    enter, exit_ = c.pair("writev")
    assert enter.params["size"] == 7 and exit_.params["data"] == b"wv1-wv2"
    enter, exit_ = c.pair("read", data=b"writ")
    assert enter.params["size"] == 4 and enter.params["fd"] == c.num("openat")
    enter, exit_ = c.pair("pread", data=b"pwrite")
    assert enter.params["pos"] == 100 and exit_.params["data"] == b"pwrite"
    enter, exit_ = c.pair("readv")
    assert exit_.params["res"] == 6 and exit_.params["size"] == 6
    assert exit_.params["data"] == b"e-data"


def test_exercise_stat_family(exercise):
    c = exercise
    _, exit_ = c.pair("stat")
    assert exit_.params["res"] == 0 and text(exit_.params["path"]) == "a.txt"
    _, exit_ = c.pair("lstat")
    assert exit_.params["res"] == -2 and text(exit_.params["path"]) == "missing.txt"
    enter, exit_ = c.pair("fstat")
    assert enter.params["fd"] == c.num("openat") and exit_.params["res"] == 0


def test_exercise_dup_fcntl_pipe(exercise):
    c = exercise
    results = [c.pair("dup", n)[1].params["res"] for n in range(3)]
    assert results == [c.num("dup"), 20, 21]          # dup, dup2, dup3
    enter, exit_ = c.pair("fcntl")
    assert enter.params["cmd"] == 26 and exit_.params["res"] == c.num("fcntl")  # DUPFD_CLOEXEC
    assert c.pair("fcntl", 1)[0].params["cmd"] == 4                           # F_GETFL
    for n, key in enumerate(("pipe", "pipe2")):
        _, exit_ = c.pair("pipe", n)
        fds = [int(x) for x in c.report[key].split(",")]
        assert [exit_.params["fd1"], exit_.params["fd2"]] == fds
    assert c.pair("pipe")[1].params["ino"] == c.num("pipe_ino")


def test_exercise_directories_and_renames(exercise):
    c = exercise
    _, exit_ = c.pair("chdir")
    assert exit_.params["res"] == 0 and text(exit_.params["path"]) == str(c.run_dir)
    enter, exit_ = c.pair("mkdir")
    assert enter.params["mode"] == 0o755 and text(exit_.params["path"]) == "d1"
    _, exit_ = c.pair("mkdirat")
    assert exit_.params["dirfd"] == AT_FDCWD and text(exit_.params["path"]) == "d2"
    assert exit_.params["mode"] == 0o700
    _, exit_ = c.pair("rename")
    assert (text(exit_.params["oldpath"]), text(exit_.params["newpath"])) == ("b.txt", "c.txt")
    _, exit_ = c.pair("renameat")
    assert (text(exit_.params["oldpath"]), text(exit_.params["newpath"])) == ("c.txt", "d.txt")
    assert exit_.params["olddirfd"] == exit_.params["newdirfd"] == AT_FDCWD
    _, exit_ = c.pair("renameat2")
    assert (text(exit_.params["oldpath"]), text(exit_.params["newpath"])) == ("d.txt", "e.txt")
    assert exit_.params["flags"] == 1                          # RENAME_NOREPLACE
    _, exit_ = c.pair("unlink")
    assert text(exit_.params["path"]) == "e.txt" and exit_.params["res"] == 0
    _, exit_ = c.pair("unlinkat")
    assert text(exit_.params["name"]) == "d2" and exit_.params["flags"] == 512  # AT_REMOVEDIR
    _, exit_ = c.pair("rmdir")
    assert text(exit_.params["path"]) == "d1" and exit_.params["res"] == 0


def test_exercise_tcp(exercise):
    c = exercise
    port, client = c.num("tcp_port"), c.num("client_port")
    enter, exit_ = c.pair("socket")
    assert (enter.params["domain"], enter.params["type"], enter.params["proto"]) == (2, 1, 0)
    _, exit_ = c.pair("bind")
    assert exit_.params["res"] == 0 and str(exit_.params["addr"].ip) == "127.0.0.1"
    enter, exit_ = c.pair("listen")
    assert enter.params["backlog"] == 5 and exit_.params["res"] == 0
    enter, exit_ = c.pair("connect")
    assert (str(enter.params["addr"].ip), enter.params["addr"].port) == ("127.0.0.1", port)
    assert exit_.params["res"] == 0
    assert tuple_of(exit_.params["tuple"]) == ("127.0.0.1", client, "127.0.0.1", port)
    _, exit_ = c.pair("accept", fd=c.num("accept"))
    # accepted: the peer (the client) first, as sysdig's driver orders inbound tuples
    assert tuple_of(exit_.params["tuple"]) == ("127.0.0.1", client, "127.0.0.1", port)
    assert exit_.params["queuemax"] == 5 and exit_.params["queuelen"] == 0   # listen(ls, 5)
    enter, exit_ = c.pair("accept", fd=c.num("accept4"))
    assert enter.type == 248 and enter.params["flags"] == 0x80000     # SOCK_CLOEXEC
    enter, exit_ = c.pair("sendto", data=b"ping")
    assert enter.params["size"] == 4
    assert tuple_of(enter.params["tuple"]) == ("127.0.0.1", client, "127.0.0.1", port)
    _, exit_ = c.pair("recvfrom", data=b"ping")
    assert tuple_of(exit_.params["tuple"]) == ("127.0.0.1", client, "127.0.0.1", port)
    enter, exit_ = c.pair("sendmsg")
    assert enter.params["size"] == 4 and exit_.params["data"] == b"pong"
    assert tuple_of(enter.params["tuple"]) == ("127.0.0.1", port, "127.0.0.1", client)
    _, exit_ = c.pair("recvmsg")
    assert exit_.params["data"] == b"pong" and exit_.params["size"] == 64
    enter, exit_ = c.pair("shutdown")
    assert enter.params["how"] == 1 and exit_.params["res"] == 0


def test_exercise_udp_addresses(exercise):
    c = exercise
    port, source = c.num("udp_port"), c.num("udp_from")
    enter, exit_ = c.pair("sendto", data=b"udp!")
    t = enter.params["tuple"]
    assert (str(t.dip), t.dport) == ("127.0.0.1", port)
    _, exit_ = c.pair("recvfrom", data=b"udp!")
    assert tuple_of(exit_.params["tuple"]) == ("127.0.0.1", source, "127.0.0.1", port)


def test_exercise_processes(exercise):
    c = exercise
    enter, exit_ = c.pair("kill")
    assert enter.params["pid"] == c.main and enter.params["sig"] == 0
    for name, key, code in (("clone", "clone_child", 3), ("fork", "fork_child", 4),
                            ("vfork", "vfork_child", 5), ("clone3", "clone3_child", 6)):
        child = c.num(key)
        _, parent_side = c.pair(name, res=child)
        assert parent_side.params["tid"] == c.main
        child_side = [e for e in c.events if e.name == name and e.dir == "<" and e.tid == child]
        assert len(child_side) == 1, name
        p = child_side[0].params
        assert p["res"] == 0 and p["pid"] == child and p["ptid"] == c.main
        assert text(p["comm"]) == "exercise" and text(p["cwd"]) == str(c.run_dir)
        exits = [e for e in c.events if e.name == "procexit" and e.tid == child]
        assert len(exits) == 1 and exits[0].params["ret"] == code, name
    vfork = [e for e in c.events if e.name == "vfork" and e.dir == "<"][0]
    assert vfork.params["flags"] & (32768 | 134217728) == 32768 | 134217728   # VM|VFORK
    killed = [e for e in c.events if e.name == "procexit" and e.tid == c.num("killed_child")]
    assert killed[0].params["sig"] == 9
    main_exit = [e for e in c.events if e.name == "procexit" and e.tid == c.main]
    assert main_exit[0].params["ret"] == 7


def test_exercise_execve_execveat(exercise):
    c = exercise
    child = c.num("execve_child")
    enter, exit_ = c.pair("execve", 0, child, res=-2)
    assert text(enter.params["filename"]) == "/nonexistent/program"
    enter, exit_ = c.pair("execve", 0, child, res=0)
    assert text(enter.params["filename"]) == "/bin/true"
    p = exit_.params
    assert text(p["comm"]) == "true" and text(p["exe"]) == "true"
    assert p["args"] == b"arg1\0" and p["env"] == b"FOO=bar\0"
    assert p["ptid"] == c.main and text(p["cwd"]) == str(c.run_dir)
    child = c.num("execveat_child")
    enter = [e for e in c.events if e.name == "execveat" and e.tid == child][0]
    assert enter.params["dirfd"] == AT_FDCWD and text(enter.params["pathname"]) == "/bin/true"
    # a successful execveat ends as an execve exit (the kernel reports the execve number)
    exits = [e for e in c.events if e.dir == "<" and e.tid == child and e.name == "execve"]
    assert text(exits[-1].params["comm"]) == "true"


def test_exercise_generic_events(exercise):
    c = exercise
    getpid = [e for e in c.events if e.name == "syscall" and e.tid == c.main
              and e.params["ID"] == 16]                          # PPM_SC getpid
    assert getpid and getpid[0].dir == ">" and getpid[0].params["nativeID"] == 39


def test_exercise_sysdig_prints_what_scaptool_prints(exercise):
    theirs, ours = both_readers(exercise.path)
    assert theirs == ours, first_difference(theirs, ours)


def test_exercise_sysdig_reads_every_event(exercise):
    sysdig = require_tool("sysdig")
    theirs = subprocess.run([sysdig, "-r", str(exercise.path)], capture_output=True, env=ENV)
    assert theirs.returncode == 0
    lines = theirs.stdout.decode(errors="replace").splitlines()
    assert len(lines) == len(exercise.events)
    assert any("< openat2 fd=3(<f>" in line and "resolve=8(RESOLVE_NO_SYMLINKS)" in line
               for line in lines)


# --------------------------------------------------------------------------------------------
# capture options: snaplen, event count, duration, a running process, context switches,
# an interrupted capture

def test_raw_tracepoint_fallback(helper, tmp_path):
    """The raw_tp programs, used when tp_btf does not attach, capture the same thing."""
    out = tmp_path / "raw.scap"
    log = tmp_path / "raw.log"
    stats = live.capture(out, command=["sh", "-c", f"echo hello >> {log}"],
                         raw_tracepoints=True)
    assert stats["attach"] == "raw_tp" and stats["drops"] == 0
    events = decode(out)
    assert any(e.name == "write" and e.dir == "<" and e.params["data"] == b"hello\n"
               for e in events)
    assert any(e.name == "openat" and e.dir == ">" and text(e.params["name"]) == str(log)
               for e in events)


def test_snaplen_cuts_buffers(helper, tmp_path):
    out = tmp_path / "snap.scap"
    data = "x" * 300
    live.capture(out, command=["sh", "-c", f"printf {data} > /dev/null"], snaplen=200)
    writes = [e for e in decode(out) if e.name == "write" and e.dir == "<"]
    assert writes and writes[-1].params["res"] == 300
    assert writes[-1].params["data"] == b"x" * 200
    live.capture(out, command=["sh", "-c", f"printf {data} > /dev/null"])
    writes = [e for e in decode(out) if e.name == "write" and e.dir == "<"]
    assert writes[-1].params["data"] == b"x" * 80       # sysdig's default snaplen


def test_writes_cut_in_the_kernel_by_what_they_write_to(helper, tmp_path):
    """`-e write:f` keeps writes to regular files only; `-e write:l` (spy_logs) only those to
    files whose path may be a log's: .log or _log in a name, or a directory "var" followed by
    one whose name starts with "log" (sysdig's rule is a substring test on the path). The
    test's own directory holds none of these (its name is chosen for that)."""
    targets = {"a.log": True, "data_log": True, "var/log/c.txt": True, "var/logs2/x": True,
               "notes.txt": False, "logbook/x": False, "myvar/log/x": False,
               "var/lag/x": False}
    for name in targets:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    script = "; ".join(f"printf 'to:{name}' >> '{tmp_path / name}'" for name in targets)
    script += "; printf 'to:null' > /dev/null"

    def written(kinds):
        out = tmp_path / f"cut-{kinds}.scap"
        live.capture(out, command=["sh", "-c", script],
                     syscalls=[f"write:{kinds}", "open", "openat", "close", "execve"])
        return {e.params["data"].decode() for e in decode(out)
                if e.name == "write" and e.dir == "<"}

    assert written("f") == {f"to:{name}" for name in targets}
    assert written("l") == {f"to:{name}" for name, log in targets.items() if log}
    assert written("o") == {"to:null"}


def test_event_count_limit(helper, tmp_path):
    out = tmp_path / "n.scap"
    stats = live.capture(out, command=["sh", "-c", "for i in 1 2 3 4 5; do echo $i; done"],
                         max_events=10)
    assert stats["events"] == 10 and len(decode(out)) == 10


def test_duration_on_a_running_process(helper, tmp_path):
    out = tmp_path / "pid.scap"
    sleeper = subprocess.Popen(["sh", "-c", "while true; do echo tick > /dev/null; "
                                "sleep 0.05; done"])
    try:
        started = time.monotonic()
        stats = live.capture(out, pid=sleeper.pid, duration=0.5)
        elapsed = time.monotonic() - started
    finally:
        sleeper.kill()
        sleeper.wait()
    assert 0.4 < elapsed < 10
    events = decode(out)
    assert stats["events"] == len(events) > 0 and stats["drops"] == 0
    # only the process and the children it started
    pids = {e.tid for e in events}
    assert sleeper.pid in pids
    forked = {e.params["res"] for e in events if e.dir == "<" and e.tid == sleeper.pid
              and e.name in ("clone", "fork", "vfork", "clone3")}
    assert pids <= {sleeper.pid} | forked


def test_context_switches(helper, tmp_path):
    out = tmp_path / "switch.scap"
    live.capture(out, command=["sleep", "0.1"], switch=True)
    events = decode(out)
    switches = [e for e in events if e.name == "switch"]
    assert switches
    sleeper = next(e.tid for e in events if e.name == "execve" and e.dir == "<")
    assert any(e.tid == sleeper for e in switches)
    assert all(e.params["vm_size"] >= 0 for e in switches)


def test_interrupted_capture_is_a_valid_file(helper, tmp_path):
    out = tmp_path / "int.scap"
    session = live.LiveCapture(out, command=["sh", "-c", "while true; do echo x > /dev/null; "
                                             "done"]).start()
    time.sleep(0.5)
    session.helper.send_signal(signal.SIGINT)   # what ^C does
    stats = session.wait()
    assert stats["events"] > 100
    events = decode(out)                         # every block whole, trailers included
    assert len(events) == stats["events"]
    theirs, ours = both_readers(out)
    assert theirs == ours, first_difference(theirs, ours)


def test_cli_capture(helper, tmp_path):
    out = tmp_path / "cli.scap"
    log = tmp_path / "cli.log"
    result = subprocess.run([sys.executable, "-m", "scaptool", "capture", "-w", str(out),
                             "--", "sh", "-c", f"echo hello >> {log}"],
                            capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "drops" in result.stderr
    assert log.read_text() == "hello\n"
    assert any(e.name == "write" and e.params.get("data") == b"hello\n" for e in decode(out))


def test_cli_capture_prints_live(helper, tmp_path):
    result = subprocess.run([sys.executable, "-m", "scaptool", "capture", "--",
                             "sh", "-c", "echo live-hello > /dev/null"],
                            capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "< write res=11 data=live-hello. " in result.stdout
    assert " sh (" in result.stdout


def test_cli_explains_what_is_missing(tmp_path):
    """Not root: a clear message instead of a libbpf error (run as nobody when we are root)."""
    if os.geteuid() != 0:
        result = subprocess.run([sys.executable, "-m", "scaptool", "capture", "-w",
                                 str(tmp_path / "x.scap"), "--", "true"],
                                capture_output=True, text=True, env=ENV, cwd=ROOT)
        assert result.returncode != 0 and "root" in result.stderr
        return
    problems = live.run_problems()
    assert problems == []


# --------------------------------------------------------------------------------------------
# the seed story, captured for real by fixtures/make_live_scenario.sh (no root needed to read)

FIXTURE = ROOT / "fixtures" / "php-database-error-live.scap"


def test_live_fixture_tells_the_story():
    events = decode(FIXTURE)
    assert 500 < len(events) < 5000 and FIXTURE.stat().st_size < 200_000
    comm = {}
    for e in events:
        if e.name in ("execve", "clone") and e.dir == "<" and e.params["res"] in (0, e.tid):
            comm[e.tid] = text(e.params["comm"])
    capture = scap.open(FIXTURE)
    for row in capture.processes.select(["tid", "comm"]).iter_rows():
        comm.setdefault(row[0], row[1])
    by = lambda e: comm.get(e.tid)
    # curl asks for the page; php reads the request
    assert any(by(e) == "php" and e.name == "recvfrom" and e.dir == "<"
               and (e.params["data"] or b"").startswith(b"GET /orders.php HTTP/1.1")
               for e in events)
    # php connects to MariaDB, which refuses the password: the real cause, on the wire
    denied = [e for e in events if e.dir == "<" and e.name in ("recvfrom", "read")
              and by(e) == "php" and b"#28000Access denied for user 'shop'@'localhost'"
              in (e.params.get("data") or b"")]
    assert len(denied) == 1
    # ... and the application logs nothing but "Database error", then answers 500
    logged = [e for e in events if e.dir == "<" and e.name == "write" and by(e) == "php"
              and (e.params["data"] or b"").endswith(b"Database error\n")]
    assert logged and logged[0].num > denied[0].num
    assert any(e.dir == "<" and by(e) == "php" and
               (e.params.get("data") or b"").startswith(b"HTTP/1.1 500 Internal Server Error")
               for e in events if e.name in ("write", "writev", "sendto"))


def test_live_fixture_sysdig_prints_what_scaptool_prints():
    theirs, ours = both_readers(FIXTURE)
    assert "Access denied for user 'shop'@'localhost' (using password: YES) " in theirs
    # (sysdig names a unix socket after the path given to connect, at the connect's enter
    # event: scaptool too, since merging this fixture showed it did not)
    assert "> connect fd=3(<u>/var/run/nscd/socket)" in theirs
    assert theirs == ours, first_difference(theirs, ours)


# --------------------------------------------------------------------------------------------
# pieces that need no root

def test_host_metadata_blocks_read_back(tmp_path):
    """The metadata blocks a live capture starts with, from this machine's /proc."""
    from scaptool.scap.live import host
    from scaptool.scap.writer import Writer
    out = tmp_path / "meta.scap"
    me = os.getpid()
    with Writer(out) as w:
        w.write_section_header()
        host.write_header(w, only_pids={me})
    capture = scap.open(out)
    assert capture.machine["num_cpus"] == os.cpu_count()
    procs = capture.processes
    assert me in procs["tid"].to_list()
    row = procs.filter(procs["tid"] == me).row(0, named=True)
    assert row["pid"] == me and row["cwd"].rstrip("/") == os.getcwd().rstrip("/")
    assert any(u for u in capture.users["name"].to_list() if u == "root")
    fds = capture.fds
    mine = fds.filter(fds["tid"] == me)
    assert len(mine) > 0


@pytest.fixture
def oversize_process(tmp_path):
    """A process whose command line, environment and working directory are longer than
    libscap's reader accepts in a process-list entry (CI runners have such processes)."""
    deep = tmp_path
    for i in range(6):
        deep = deep / (f"{i}" * 200)
    deep.mkdir(parents=True)
    env = dict(os.environ, SCAPTOOL_BIG="x" * 9000)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "y" * 30000],
                            cwd=deep, env=env)
    time.sleep(0.3)
    yield proc
    proc.kill()
    proc.wait()


def test_host_entries_stay_within_the_readers_limits(oversize_process):
    from scaptool.scap.live import host
    entry = host.thread_entry(oversize_process.pid, oversize_process.pid)
    assert len(entry["exe"]) + 1 + len(entry["args"]) <= 4096   # the first 4096 bytes, cut
    assert entry["args"].startswith(b"-c\0import time")
    assert len(entry["env"]) == 4096
    assert len(entry["cwd"]) <= 1024 and len(entry["exepath"]) <= 1024
    assert len(entry["cgroups"]) <= 4096


def test_host_header_with_an_oversize_process_is_read_by_sysdig(oversize_process, tmp_path):
    from scaptool.scap.live import host
    from scaptool.scap.writer import Event, Writer
    out = tmp_path / "meta.scap"
    pid = oversize_process.pid
    with Writer(out) as w:
        w.write_section_header()
        host.write_header(w, only_pids={pid})
        # sysdig refuses a file without events: one close(3) enter by that process
        w.write_event_list([Event(time.time_ns(), pid, 0, 6, [(3).to_bytes(8, "little")])])
    procs = scap.open(out).processes
    assert pid in procs["tid"].to_list()
    sysdig = require_tool("sysdig")
    fmt = ["-p", "%proc.name %proc.exepath %proc.cmdline %proc.env"]
    theirs = subprocess.run([sysdig, "-r", str(out), *fmt], capture_output=True, env=ENV)
    assert theirs.returncode == 0, theirs.stderr.decode()
    assert theirs.stdout.decode().startswith("python")
    assert "y" * 3000 in theirs.stdout.decode()   # the args, cut at 4096 bytes
    ours = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(out), *fmt],
                          capture_output=True, env=ENV, cwd=ROOT)
    assert ours.stdout == theirs.stdout


def test_open_flags_in_ppm_encoding():
    from scaptool.scap.live.host import open_flags_to_ppm
    assert open_flags_to_ppm(os.O_RDONLY) == 1
    assert open_flags_to_ppm(os.O_WRONLY | os.O_CREAT | os.O_APPEND) == 14
    assert open_flags_to_ppm(os.O_RDWR | os.O_CLOEXEC) == 3 | 4096


def test_durations():
    from scaptool.cli.capture import parse_duration
    assert parse_duration("5s") == 5 and parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120 and parse_duration("1.5") == 1.5
    with pytest.raises(Exception):
        parse_duration("soon")
