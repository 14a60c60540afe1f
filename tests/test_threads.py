"""Thread state (proc.*, user.*, group.*) per event, as sysdig 0.29.3 keeps its thread table.

Unit tests write small captures with scaptool's writer (events in 0.29.3's table layout); the
corpus test holds every printed line of fields_rich.txt (sysdig -p with proc.name, proc.pid,
proc.ppid, proc.exe, user.name and proc.cmdline) against thread_columns().
"""
import pathlib

import numpy as np
import pytest
from conftest import corpus_captures, need_capture

from scaptool import scap
from scaptool.query.threads import COLUMNS, join_cwd, thread_columns
from scaptool.scap import blocktypes as bt
from scaptool.scap.codecs import codec_for
from scaptool.scap.eventtable import PT, sysdig_0293
from scaptool.scap.schema import body_schema
from scaptool.scap.writer import Event, Writer

TABLE = sysdig_0293()
T0 = 1_700_000_000 * 10**9
CLONE_THREAD = 8192
NO_ID = 0xFFFFFFFF

USERS = [(0, 0, b"root"), (33, 33, b"www-data"), (1000, 1000, b"alice")]
GROUPS = [(0, b"root"), (33, b"www-data"), (1000, b"alice")]
# tid, pid, ptid, comm, exe, args, cwd, uid, gid, flags
BASH = (100, 100, 1, b"bash", b"/bin/bash", b"-l\0", b"/home/alice", 1000, 1000, 0)
INIT = (1, 1, 0, b"systemd", b"/sbin/init", b"", b"/", 0, 0, 0)
WEB = (200, 200, 1, b"nginx", b"nginx: master", b"", b"/", 0, 0, 0)
WEB_THREAD = (201, 200, 1, b"nginx", b"nginx: master", b"", b"/", 0, 0, CLONE_THREAD)


def _event_id(name, direction):
    """The newest id of an event in 0.29.3's table (execve has two current layouts)."""
    ids = [i for i in TABLE.ids_named(name)
           if TABLE[i].direction == direction and not TABLE[i].old_version]
    return max(ids)


def ev(thread, name, direction, /, **params):
    """An event of `thread` with the 0.29.3 layout; params not given are zero or empty.
    (Positional-only: clone and execve have a param called `tid`.)"""
    info = TABLE[_event_id(name, direction)]
    raw = []
    for p in info.params:
        value = params.pop(p.name, None)
        if value is None:
            value = b"" if p.type in (PT.CHARBUF, PT.BYTEBUF, PT.FSPATH) else 0
        raw.append(codec_for(p.type).encode(value))
    assert not params, f"unknown params {params}"
    return (thread, info.id, raw)


def write_capture(path, sections):
    """sections: [(threads, events)]; every section gets the same users and groups."""
    with Writer(path) as w:
        for threads, events in sections:
            w.write_section_header()
            users = [{"kind": 0, "uid": u, "gid": g, "name": n, "homedir": b"/",
                      "shell": b"/bin/sh"} for u, g, n in USERS]
            groups = [{"kind": 1, "gid": g, "name": n} for g, n in GROUPS]
            w.write_block(bt.UL_V2, body_schema(bt.UL_V2).build({"entries": users + groups}))
            entries = [{
                "tid": tid, "pid": pid, "ptid": ptid, "sid": pid, "vpgid": pid, "comm": comm,
                "exe": exe, "exepath": b"/usr/bin/" + comm, "args": args, "cwd": cwd,
                "fdlimit": 1024, "flags": flags, "uid": uid, "gid": gid, "vmsize_kb": 0,
                "vmrss_kb": 0, "vmswap_kb": 0, "pfmajor": 0, "pfminor": 0, "env": b"",
                "vtid": tid, "vpid": pid, "cgroups": b"", "root": b"/", "loginuid": 1000,
                "exe_writable": 0}
                for tid, pid, ptid, comm, exe, args, cwd, uid, gid, flags in threads]
            w.write_block(bt.PL_V9, body_schema(bt.PL_V9).build({"entries": entries}))
            w.write_event_list([Event(T0 + k * 1000, tid, 0, etype, raw)
                                for k, (tid, etype, raw) in enumerate(events)])
    return path


def columns(tmp_path, events, threads=(INIT, BASH), more_sections=()):
    path = write_capture(tmp_path / "t.scap", [(list(threads), events), *more_sections])
    cap = scap.open(path)
    frame = thread_columns(cap)
    assert frame.columns == list(COLUMNS)
    assert frame.height == len(cap)
    return frame.to_dicts()


def test_process_list_seeds_the_table(tmp_path):
    rows = columns(tmp_path, [ev(100, "close", ">", fd=3)])
    r = rows[0]
    assert r["proc.name"] == "bash" and r["proc.pid"] == 100 and r["proc.ppid"] == 1
    assert r["proc.exe"] == "/bin/bash" and r["proc.exepath"] == "/usr/bin/bash"
    assert r["proc.args"] == ["-l"] and r["proc.cmdline"] == "bash -l"
    assert r["proc.cwd"] == "/home/alice/"
    assert (r["user.uid"], r["user.name"], r["group.gid"], r["group.name"]) == \
        (1000, "alice", 1000, "alice")
    assert r["user.loginuid"] == 1000 and r["proc.pname"] == "systemd"
    assert r["proc.vpid"] == 100 and r["thread.vtid"] == 100


def test_threads_share_the_main_threads_cwd_and_parent(tmp_path):
    rows = columns(tmp_path, [ev(201, "close", ">", fd=3)], threads=(INIT, WEB, WEB_THREAD))
    assert rows[0]["proc.pid"] == 200 and rows[0]["proc.ppid"] == 1
    assert rows[0]["proc.cwd"] == "/"
    assert rows[0]["proc.exe"] == "nginx: master"   # exe may hold spaces


def clone_exit(tid, res, **kw):
    params = {"res": res, "exe": b"/bin/bash", "args": b"-l\0", "tid": tid,
              "pid": kw.pop("pid", tid), "ptid": kw.pop("ptid", 1), "cwd": b"/home/alice",
              "comm": b"bash", "flags": 0, "uid": 1000, "gid": 1000, "vtid": tid,
              "vpid": kw.pop("vpid", tid)}
    params.update(kw)
    return ev(tid, "clone", "<", **params)


def test_clone_in_the_caller_creates_the_child(tmp_path):
    rows = columns(tmp_path, [
        ev(100, "clone", ">"),
        clone_exit(100, 101, ptid=1),           # the caller's exit: the child exists now
        ev(101, "close", ">", fd=3),
        clone_exit(101, 0, pid=101, ptid=100),   # the child's own exit changes nothing
    ])
    child = rows[2]
    assert child["proc.name"] == "bash" and child["proc.pid"] == 101
    assert child["proc.ppid"] == 100 and child["proc.pname"] == "bash"
    assert child["proc.cmdline"] == "bash -l" and child["user.name"] == "alice"
    assert child["proc.cwd"] == "/home/alice/"
    assert rows[3] == child


def test_clone_in_the_child_first_creates_it_from_the_parameters(tmp_path):
    rows = columns(tmp_path, [
        clone_exit(150, 0, pid=150, ptid=100, comm=b"worker", uid=33, gid=33),
        ev(150, "close", ">", fd=3),
    ])
    assert rows[0]["proc.name"] == "worker" and rows[0]["proc.ppid"] == 100
    assert rows[0]["user.name"] == "www-data" and rows[0]["proc.pname"] == "bash"
    # exe and args come from the event, loginuid from the parent
    assert rows[0]["proc.exe"] == "/bin/bash" and rows[0]["user.loginuid"] == 1000


def test_new_thread_belongs_to_the_callers_process(tmp_path):
    rows = columns(tmp_path, [
        clone_exit(100, 102, flags=CLONE_THREAD, pid=100),
        ev(102, "close", ">", fd=3),
    ])
    assert rows[1]["proc.pid"] == 100 and rows[1]["proc.ppid"] == 1
    assert rows[1]["proc.cwd"] == "/home/alice/"


def test_failed_clone_creates_nothing(tmp_path):
    rows = columns(tmp_path, [clone_exit(100, -11), ev(101, "switch", ">", next=0)])
    assert rows[1]["proc.name"] is None and rows[1]["proc.pid"] is None


def execve_exit(tid, res, **kw):
    params = {"res": res, "exe": b"ls", "args": b"-la\0/tmp\0", "tid": tid, "pid": tid, "ptid": 1,
              "cwd": b"/home/alice", "comm": b"ls", "loginuid": 1000}
    params.update(kw)
    return ev(tid, "execve", "<", **params)


def test_execve_exit_already_shows_the_new_program(tmp_path):
    rows = columns(tmp_path, [
        ev(100, "execve", ">", filename=b"/bin/ls"),
        execve_exit(100, 0),
        ev(100, "close", ">", fd=3),
    ])
    assert rows[0]["proc.name"] == "bash"
    for r in rows[1:]:
        assert r["proc.name"] == "ls" and r["proc.exe"] == "ls"
        assert r["proc.args"] == ["-la", "/tmp"] and r["proc.cmdline"] == "ls -la /tmp"
        assert r["proc.ppid"] == 1 and r["user.name"] == "alice"
        assert r["proc.exepath"] == "/bin/ls"


def test_failed_execve_changes_nothing(tmp_path):
    rows = columns(tmp_path, [execve_exit(100, -2)])
    assert rows[0]["proc.name"] == "bash" and rows[0]["proc.cmdline"] == "bash -l"


def test_execve_of_an_unknown_thread_fills_a_placeholder(tmp_path):
    rows = columns(tmp_path, [execve_exit(300, 0, ptid=100), ev(300, "close", ">", fd=3)])
    for r in rows:
        assert r["proc.name"] == "ls" and r["proc.pid"] == 300
        assert r["proc.ppid"] == 100 and r["proc.pname"] == "bash"
        assert r["user.name"] is None and r["user.uid"] == NO_ID


def test_procexit_removes_the_thread_one_event_later(tmp_path):
    rows = columns(tmp_path, [
        ev(100, "procexit", ">"),
        ev(1, "close", ">", fd=3),       # the removal happens as this one is processed
        ev(100, "switch", ">", next=0),  # a switch only looks the thread up
        ev(100, "close", ">", fd=3),     # anything else makes up a placeholder
        ev(100, "close", "<", res=0),
    ])
    assert rows[0]["proc.name"] == "bash"
    assert rows[1]["proc.name"] == "systemd"
    assert all(v is None for v in rows[2].values())
    for r in rows[3:]:
        # the placeholder's comm and exe are the text "<NA>" (JSON shows the string)
        assert r["proc.name"] == r["proc.exe"] == r["proc.cmdline"] == "<NA>"
        assert r["proc.pid"] == 100 and r["proc.ppid"] == -1 and r["user.name"] is None


def test_main_thread_stays_while_its_threads_live(tmp_path):
    rows = columns(tmp_path, [
        ev(200, "procexit", ">"),
        ev(1, "close", ">", fd=3),
        ev(200, "close", ">", fd=3),
        ev(201, "procexit", ">"),
        ev(1, "close", ">", fd=3),
        ev(200, "procexit", ">"),
        ev(1, "close", ">", fd=3),
        ev(200, "switch", ">", next=0),
    ], threads=(INIT, WEB, WEB_THREAD))
    assert rows[2]["proc.name"] == "nginx"
    assert rows[7]["proc.name"] is None and rows[7]["proc.pid"] is None


def test_chdir_changes_the_process_cwd(tmp_path):
    rows = columns(tmp_path, [
        ev(201, "chdir", "<", res=0, path=b"../tmp/./x"),
        ev(200, "chdir", "<", res=-2, path=b"/nonexistent"),
        ev(201, "getcwd", "<", res=7, path=b"/srv"),
        ev(200, "close", ">", fd=3),
    ], threads=(INIT, WEB, WEB_THREAD))
    assert [r["proc.cwd"] for r in rows] == ["/tmp/x/", "/tmp/x/", "/srv/", "/srv/"]


def test_setuid_takes_the_id_of_its_enter_event(tmp_path):
    rows = columns(tmp_path, [
        ev(100, "setuid", ">", uid=33),
        ev(100, "setuid", "<", res=0),
        ev(100, "setuid", ">", uid=0),
        ev(100, "setuid", "<", res=-1),                    # failed: no change
        ev(100, "setresuid", ">", ruid=0, euid=NO_ID, suid=0),
        ev(100, "setresuid", "<", res=0),                  # euid -1: no change
        ev(100, "setresuid", ">", ruid=0, euid=0, suid=0),
        ev(100, "setresuid", "<", res=0),
        ev(100, "setgid", ">", gid=33),
        ev(100, "setgid", "<", res=0),
    ])
    assert [r["user.name"] for r in rows] == \
        ["alice", "www-data", "www-data", "www-data", "www-data", "www-data", "www-data",
         "root", "root", "root"]
    assert rows[-1]["group.name"] == "www-data" and rows[0]["group.name"] == "alice"


def test_setuid_after_a_lost_exit_has_no_enter_id(tmp_path):
    """An exit whose enter was lost (close, here) frees sysdig's copy of the thread's last
    enter: the setuid exit that follows is paired but cannot read the new id (as sysdig
    0.29.3 shows it)."""
    rows = columns(tmp_path, [
        ev(100, "setuid", ">", uid=33),
        ev(100, "close", "<", res=0),
        ev(100, "setuid", "<", res=0),                     # no id: no change
        ev(100, "setuid", ">", uid=33),
        ev(100, "setuid", "<", res=0),
    ])
    assert [r["user.name"] for r in rows] == ["alice", "alice", "alice", "alice", "www-data"]


def test_each_section_starts_from_its_own_process_list(tmp_path):
    rows = columns(tmp_path, [execve_exit(100, 0)],
                   more_sections=[([INIT, BASH], [ev(100, "close", ">", fd=3)])])
    assert rows[0]["proc.name"] == "ls" and rows[1]["proc.name"] == "bash"


def test_join_cwd():
    assert join_cwd("/a/b/", "c") == "/a/b/c/"
    assert join_cwd("/a/b/", "../c/./d/") == "/a/c/d/"
    assert join_cwd("/a/", "/x//y") == "/x/y/"
    assert join_cwd("", "/") == "/"


# ---------------------------------------------------------------------------------------------
# The corpus: every line sysdig printed with -p "*... %proc.name %proc.pid %proc.ppid
# %proc.exe ... %user.name ... %proc.cmdline"

def _is_int(text):
    return text.lstrip("-").isdigit()


def parse_fields_rich(line):
    """(evt.num, proc.name, proc.pid, proc.ppid, proc.exe, user.name, proc.cmdline) of one
    line. proc.exe, fd.name and proc.cmdline may hold spaces: the fields around them are
    found by shape (the direction, then evt.failed two further; evt.latency and evt.is_io
    just before the cmdline)."""
    f = line.split(" ")
    for i in range(8, len(f)):
        if f[i] in ("<", ">") and i + 2 < len(f) and f[i + 2] in ("true", "false") \
                and _is_int(f[i - 2]):
            for j in range(i + 9, len(f)):
                if f[j] in ("true", "false") and _is_int(f[j - 1]) \
                        and (_is_int(f[j - 2]) or f[j - 2] == "<NA>"):
                    return (int(f[0]), f[3], f[4], f[5], " ".join(f[6:i - 2]), f[i - 1],
                            " ".join(f[j + 1:]))
    raise ValueError(f"cannot parse {line!r}")


def _shown(value):
    return "<NA>" if value is None else str(value)


@pytest.mark.parametrize("capture", corpus_captures())
def test_corpus_fields_rich(capture):
    capture = need_capture(capture)
    expected = capture.parent.parent / "expected" / capture.stem / "fields_rich.txt"
    lines = pathlib.Path(expected).read_text().splitlines()
    cap = scap.open(capture)
    frame = thread_columns(cap).select(
        "proc.name", "proc.pid", "proc.ppid", "proc.exe", "user.name", "proc.cmdline")
    got_rows = frame.rows()
    row_of = np.zeros(int(cap.event_numbers.max(initial=0)) + 1, dtype=np.int64)
    row_of[cap.event_numbers[cap.event_numbers > 0]] = \
        np.flatnonzero(cap.event_numbers > 0)
    mismatches = []
    for line in lines:
        num, *want = parse_fields_rich(line)
        got = [_shown(v) for v in got_rows[row_of[num]]]
        if got != want:
            mismatches.append((num, want, got))
    rate = 1 - len(mismatches) / max(len(lines), 1)
    print(f"{capture.stem}: {len(lines) - len(mismatches)}/{len(lines)} ({rate:.2%})")
    assert not mismatches, mismatches[:5]
