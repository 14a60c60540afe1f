"""The process, thread and event fields of query.fields_proc (proc.env, proc.nthreads,
proc.sid, proc.vmsize, thread.cgroups, evt.abspath, evt.count.error.*, ...).

Unit tests write small captures with scaptool's writer (events in 0.29.3's table layout) and
check each field's rule. The corpus tests print the fields with `-p` through sysdig 0.29.3 and
through scaptool (in-process, time zone UTC) and require identical output; filters likewise.

Known differences kept out of the corpus tables (each is a sysdig defect, not a rule):
- thread.totexectime: sysdig aborts ("invalid thread state ID0") on a container event it
  evaluates the field on; scaptool shows no value there.
- proc.is_exe_writable: for threads made by a clone sysdig 0.29.3 reads an uninitialized
  bool (its output changes with the other fields of the format); tested alone here.
- evt.type.is in -p: sysdig parses the name up to the end of the whole format, so unless the
  field ends the format it prints `<NA>` followed by the field's own text; tested last.
- filters on the memory counters: sysdig does not parse the events its filter rejects (unless
  they modify state), so which brk/mmap/switch updates it kept depends on the filter itself.
"""

import numpy as np
import pytest
from conftest import corpus_capture, scaptool_output, sysdig_output

from scaptool import scap
from scaptool.query import threads
from scaptool.query.events import EventData
from scaptool.query.fields import lookup
from scaptool.scap import blocktypes as bt
from scaptool.scap.codecs import codec_for
from scaptool.scap.eventtable import PT, sysdig_0293
from scaptool.scap.schema import body_schema
from scaptool.scap.writer import Event, Writer

TABLE = sysdig_0293()
T0 = 1_700_000_000 * 10**9
CLONE_THREAD = 8192
USERS = [(0, 0, b"root"), (1000, 1000, b"alice")]


# -- writing small captures ------------------------------------------------------------------

def _event_id(name, enter):
    ids = [i for i in TABLE.ids_named(name) if TABLE[i].is_enter == enter
           and not TABLE[i].old_version]
    return max(ids)


def ev(tid, name, direction, /, *, cpu=0, etype=None, **params):
    """An event of `tid` in the 0.29.3 layout (newest version unless `etype`); params not given
    are zero or empty."""
    etype = etype if etype is not None else _event_id(name, direction == ">")
    info = TABLE[etype]
    raw = []
    for p in info.params:
        value = params.pop(p.name, None)
        codec = codec_for(p.type)
        if value is None:
            text = p.type in (PT.CHARBUF, PT.BYTEBUF, PT.FSPATH, PT.FSRELPATH)
            raw.append(codec.encode(b"") if text else _zero(codec))
            continue
        raw.append(codec.encode(value))
    assert not params, f"unknown params {params}"
    return (tid, etype, raw, cpu)


def _zero(codec):
    """A parameter left out: 0, or empty for the kinds that are not numbers."""
    try:
        return codec.encode(0)
    except (AttributeError, TypeError):
        return codec.encode(None)


def thread(tid, pid=None, ptid=1, comm=b"bash", flags=0, **more):
    entry = {"tid": tid, "pid": pid or tid, "ptid": ptid, "sid": 100, "vpgid": 100,
             "comm": comm, "exe": comm, "exepath": b"/bin/" + comm, "args": b"", "cwd": b"/",
             "fdlimit": 1024, "flags": flags, "uid": 1000, "gid": 1000, "vmsize_kb": 5000,
             "vmrss_kb": 400, "vmswap_kb": 0, "pfmajor": 2, "pfminor": 30,
             "env": b"HOME=/home/alice\0TERM=xterm\0", "vtid": tid, "vpid": pid or tid,
             "cgroups": b"cpu=/user.slice\0perf=/\0", "root": b"/", "loginuid": 1000,
             "exe_writable": 0}
    entry.update(more)
    return entry


INIT = thread(1, ptid=0, comm=b"systemd", sid=1, vpgid=1, loginuid=0xFFFFFFFF)
BASH = thread(100)


def write(path, events, threads_=(INIT, BASH), step=1000):
    with Writer(path) as w:
        w.write_section_header()
        users = [{"kind": 0, "uid": u, "gid": g, "name": n, "homedir": b"/", "shell": b"/bin/sh"}
                 for u, g, n in USERS]
        w.write_block(bt.UL_V2, body_schema(bt.UL_V2).build({"entries": users}))
        w.write_block(bt.PL_V9, body_schema(bt.PL_V9).build({"entries": list(threads_)}))
        w.write_event_list([Event(T0 + k * step, tid, cpu, etype, raw)
                            for k, (tid, etype, raw, cpu) in enumerate(events)])
    return path


def values(path, name, printed=False):
    """The field for every event: as filters see it, or as printed (-p) when `printed`."""
    data = EventData(scap.open(str(path)))
    definition, arg = lookup(name)
    if printed:
        return definition.series_at(data, arg, np.arange(len(data))).to_list()
    return definition.series(data, arg).to_list()


# -- thread state ----------------------------------------------------------------------------

def test_process_list_values(tmp_path):
    p = write(tmp_path / "t.scap", [ev(100, "close", ">", fd=3)])
    assert values(p, "proc.env") == ["HOME=/home/alice TERM=xterm"]
    assert values(p, "proc.sid") == [100] and values(p, "proc.vpgid") == [100]
    assert values(p, "proc.fdlimit") == [1024]
    assert values(p, "thread.cgroups") == ["cpu=/user.slice perf_event=/"]
    assert values(p, "thread.cgroup.perf_event") == ["/"]
    assert values(p, "thread.cgroup.memory") == [None]
    assert values(p, "proc.sname") == ["bash"]        # the thread whose tid is the sid
    assert values(p, "user.loginname") == ["alice"]
    # the process list gives no start time, and 0.29.3 reads no tty from it
    assert values(p, "proc.duration") == [None] and values(p, "proc.tty") == [0]


def test_threads_count_towards_their_main_thread(tmp_path):
    worker = thread(101, pid=100, ptid=1, flags=CLONE_THREAD, env=b"")
    p = write(tmp_path / "t.scap", [ev(100, "close", ">", fd=3), ev(101, "close", ">", fd=3),
                                    ev(1, "close", ">", fd=3)], (INIT, BASH, worker))
    assert values(p, "proc.nthreads") == [2, 2, 1]
    assert values(p, "proc.nchilds") == [1, 0, 0]
    # the environment is the process's: a thread shows its main thread's
    assert values(p, "proc.env")[1] == "HOME=/home/alice TERM=xterm"


def clone_exit(tid, res, **kw):
    params = {"res": res, "exe": b"/bin/bash", "args": b"", "tid": tid, "pid": tid,
              "ptid": 1, "cwd": b"/", "comm": b"bash", "flags": 0, "uid": 1000, "gid": 1000,
              "vtid": tid, "vpid": tid, "fdlimit": 4096, "vm_size": 7000, "vm_rss": 600,
              "pgft_min": 5, "cgroups": b"cpu=/child\0"}
    params.update(kw)
    return ev(tid, "clone", "<", **params)


def test_clone_copies_session_and_environment_and_takes_the_rest_from_the_event(tmp_path):
    p = write(tmp_path / "t.scap", [
        ev(100, "clone", ">"),
        clone_exit(100, 150),
        ev(150, "close", ">", fd=3),
    ])
    assert values(p, "proc.sid")[2] == 100 and values(p, "proc.vpgid")[2] == 100
    assert values(p, "proc.env")[2] == "HOME=/home/alice TERM=xterm"
    assert values(p, "proc.fdlimit")[2] == 4096
    assert values(p, "thread.cgroups")[2] == "cpu=/child"
    assert values(p, "proc.vmsize")[2] == 7000 and values(p, "thread.pfminor")[2] == 5
    # the new process started at the clone: 1 us before the close
    assert values(p, "proc.duration")[2] == 1000
    # the caller has one more child process, not one more thread
    assert values(p, "proc.nthreads")[2] == 1 and values(p, "proc.nchilds")[1] == 0


def test_a_new_thread_raises_nthreads_until_it_exits(tmp_path):
    p = write(tmp_path / "t.scap", [
        clone_exit(100, 101, flags=CLONE_THREAD, pid=100),
        ev(100, "close", ">", fd=3),
        ev(101, "procexit", ">"),
        ev(100, "close", ">", fd=3),
        ev(100, "close", ">", fd=3),
    ])
    assert values(p, "proc.nthreads") == [2, 2, 2, 1, 1]


def test_execve_sets_environment_tty_group_and_limit(tmp_path):
    p = write(tmp_path / "t.scap", [
        ev(100, "execve", ">", filename=b"/bin/ls"),
        ev(100, "execve", "<", res=0, exe=b"ls", comm=b"ls", pid=100, ptid=1, fdlimit=2048,
           env=b"A=1\0B=2\0\0\0", tty=34817, pgid=777, loginuid=0, flags=1,
           cgroups=b"io=/x\0", vm_size=900),
        ev(100, "close", ">", fd=3),
    ])
    after = 2
    assert values(p, "proc.env")[after] == "A=1 B=2"     # trailing NULs end the list
    assert values(p, "proc.tty")[after] == 34817
    assert values(p, "proc.vpgid")[after] == 777 and values(p, "proc.sid")[after] == 100
    assert values(p, "proc.fdlimit")[after] == 2048
    assert values(p, "thread.cgroups")[after] == "blkio=/x"
    assert values(p, "proc.is_exe_writable")[after] is True
    assert values(p, "user.loginname")[after] == "root"
    assert values(p, "proc.vmsize")[after] == 900
    assert values(p, "proc.env")[0] == "HOME=/home/alice TERM=xterm"


def test_setsid_and_rlimit(tmp_path):
    p = write(tmp_path / "t.scap", [
        ev(100, "setsid", ">"), ev(100, "setsid", "<", res=100),
        ev(100, "getrlimit", ">", resource=7), ev(100, "getrlimit", "<", res=0, cur=65536),
        ev(100, "getrlimit", ">", resource=3), ev(100, "getrlimit", "<", res=0, cur=8192),
        ev(100, "prlimit", ">", pid=100, resource=7), ev(100, "prlimit", "<", res=0, newcur=-1),
        ev(100, "close", ">", fd=3),
    ])
    fdlimit = values(p, "proc.fdlimit")
    # only RLIMIT_NOFILE counts, and an unlimited (-1) value is ignored
    assert fdlimit[2] == 1024 and fdlimit[3] == 65536 and fdlimit[-1] == 65536
    assert values(p, "proc.sid")[1] == 100


def test_session_leader_gone_falls_back_to_the_eldest_ancestor_of_the_session(tmp_path):
    sshd = thread(50, ptid=1, comm=b"sshd", sid=60)
    shell = thread(70, ptid=50, comm=b"sh", sid=60)
    child = thread(80, ptid=70, comm=b"cat", sid=60)
    p = write(tmp_path / "t.scap", [ev(80, "close", ">", fd=3)], (INIT, sshd, shell, child))
    # no thread 60: walk up from cat while the session id stays 60
    assert values(p, "proc.sname") == ["sshd"]


def test_process_list_of_the_libs_0_10_layout_as_0_29_3_reads_it():
    start = (0x12 << 32) | 1000
    r = threads._as_read_by_0293({"pidns_init_start_ts": start, "tty": 34816,
                                  "loginuid": 7, "exe_writable": False})
    assert r["loginuid"] == 1000 and r["exe_writable"] is True and r["tty"] == 0
    old = threads._as_read_by_0293({"pidns_init_start_ts": 0, "tty": 5, "loginuid": 7,
                                    "exe_writable": False})
    assert old["loginuid"] == 7 and old["exe_writable"] is False and old["tty"] == 0


def test_cgroup_names():
    assert threads.cgroup_list(["cpu=/a", "perf=/b", "mem=/c", "io=/d", "name=systemd=/e",
                                "net_cls_cgroup=/f"]) == (
        "cpu=/a", "perf_event=/b", "memory=/c", "blkio=/d", "name=systemd=/e", "net_cls=/f")
    assert threads.cgroup_list(["cpu=/a", "broken", "mem=/c"]) == ("cpu=/a",)


# -- memory counters -----------------------------------------------------------------------------

def test_memory_counters_follow_switches_and_mappings(tmp_path):
    worker = thread(101, pid=100, ptid=1, flags=CLONE_THREAD, pfminor=3)
    p = write(tmp_path / "t.scap", [
        ev(100, "brk", "<", res=0, vm_size=6000, vm_rss=500, vm_swap=1),
        ev(101, "switch", ">", next=100, pgft_maj=9, pgft_min=99, vm_size=8000, vm_rss=800,
           vm_swap=2),
        ev(100, "close", ">", fd=3),
        ev(101, "close", ">", fd=3),
    ], (INIT, BASH, worker))
    assert values(p, "proc.vmsize", printed=True) == [6000, 5000, 8000, 5000]
    # the switch sets the page faults of the thread switched out, the sizes of its process
    assert values(p, "thread.pfminor", printed=True) == [30, 99, 30, 99]
    assert values(p, "proc.vmswap", printed=True) == [1, 0, 2, 0]
    assert values(p, "thread.vmsize", printed=True) == [6000, 0, 8000, 0]
    # filters run before sysdig parses these events: the event's own update is not seen yet
    assert values(p, "proc.vmsize") == [5000, 5000, 8000, 5000]


def test_printed_memory_counters_skip_the_events_a_filter_dropped(tmp_path):
    p = write(tmp_path / "t.scap", [
        ev(100, "brk", "<", res=0, vm_size=6000),
        ev(100, "close", ">", fd=3),
        ev(100, "brk", "<", res=0, vm_size=7000),
        ev(100, "close", ">", fd=3),
    ])
    data = EventData(scap.open(str(p)))
    definition, arg = lookup("proc.vmsize")
    # printing the close events only (as with the filter evt.type=close): no brk was parsed
    assert definition.series_at(data, arg, np.array([1, 3])).to_list() == [5000, 5000]
    # printing everything, batch by batch: the updates of earlier batches still count
    assert definition.series_at(data, arg, np.array([0, 1])).to_list() == [6000, 6000]
    assert definition.series_at(data, arg, np.array([2, 3])).to_list() == [7000, 7000]


# -- event fields ---------------------------------------------------------------------------------

def test_evt_type_is(tmp_path):
    p = write(tmp_path / "t.scap", [ev(100, "open", ">", name=b"/x"),
                                    ev(100, "open", "<", fd=3, name=b"/x"),
                                    ev(100, "close", ">", fd=3)])
    assert values(p, "evt.type.is.open") == [1, 1, 0]
    assert values(p, "evt.type.is.3") == [0, 1, 0]          # a number: that id only
    assert values(p, "evt.type.is.open", printed=True) == [None] * 3   # printed: <NA>
    with pytest.raises(ValueError):
        values(p, "evt.type.is.nosuchevent")


def test_evt_time_iso8601(tmp_path):
    p = write(tmp_path / "t.scap", [ev(100, "close", ">", fd=3)])
    assert values(p, "evt.time.iso8601") == ["2023-11-14T22:13:20.000000000+0000"]


def test_evt_is_open_exec(tmp_path):
    p = write(tmp_path / "t.scap", [
        ev(100, "open", "<", fd=3, name=b"/a", flags=4 | 2, mode=0o755),   # O_CREAT, rwx
        ev(100, "open", "<", fd=4, name=b"/b", flags=2, mode=0o755),       # no O_CREAT
        ev(100, "open", "<", fd=5, name=b"/c", flags=4, mode=0o644),
        ev(100, "creat", "<", fd=6, name=b"/d", mode=0o700),
        ev(100, "close", ">", fd=3),
    ])
    assert values(p, "evt.is_open_exec") == [True, False, False, True, False]


def test_evt_abspath(tmp_path):
    home = thread(100, cwd=b"/home/alice")
    p = write(tmp_path / "t.scap", [
        ev(100, "openat", "<", fd=3, dirfd=-100, name=b"notes.txt"),
        ev(100, "openat", "<", fd=4, dirfd=3, name=b"../x"),
        ev(100, "openat", "<", fd=5, dirfd=42, name=b"y"),
        ev(100, "openat", "<", fd=6, dirfd=42, name=b"/etc//passwd"),
        ev(100, "close", ">", fd=3),
    ], (INIT, home))
    assert values(p, "evt.abspath") == ["/home/alice/notes.txt", "/home/alice/x",
                                        "<UNKNOWN>/y", "/etc/passwd", None]


def test_evt_count_error_by_kind(tmp_path):
    p = write(tmp_path / "t.scap", [
        ev(100, "open", "<", fd=-2, name=b"/nope"),                     # file
        ev(100, "connect", ">", fd=3),
        ev(100, "connect", "<", res=-111),                              # net
        ev(100, "brk", "<", res=0),                                     # not failed
        ev(100, "kill", "<", res=-1),                                   # other
    ])
    assert values(p, "evt.count.error.file") == [1, None, None, None, None]
    assert values(p, "evt.count.error.net") == [None, None, 1, None, None]
    assert values(p, "evt.count.error.other") == [None, None, None, None, 1]
    assert values(p, "evt.count.error.memory") == [None] * 5


def test_wait_latency_only_on_exits_of_waiting_events(tmp_path):
    p = write(tmp_path / "t.scap", [ev(100, "nanosleep", ">"), ev(100, "nanosleep", "<"),
                                    ev(100, "close", ">", fd=3), ev(100, "close", "<")])
    assert values(p, "evt.wait_latency") == [None, 1000, None, None]


def test_exectime_per_cpu_and_total_per_thread(tmp_path):
    worker = thread(101, pid=100, ptid=1, flags=CLONE_THREAD)
    p = write(tmp_path / "t.scap", [
        ev(100, "switch", ">", next=101, cpu=0),   # first switch on cpu 0: 0
        ev(101, "switch", ">", next=100, cpu=1),   # first on cpu 1: 0
        ev(101, "switch", ">", next=100, cpu=0),   # 2 us after cpu 0's last
        ev(100, "close", ">", fd=3, cpu=0),
        ev(100, "switch", ">", next=101, cpu=0),   # 2 us
        ev(100, "switch", ">", next=101, cpu=1),   # 4 us after cpu 1's last
    ], (INIT, BASH, worker))
    assert values(p, "thread.exectime") == [0, 0, 2000, 0, 2000, 4000]
    assert values(p, "thread.totexectime") == [0, 0, 2000, 0, 2000, 6000]


# -- the corpus, against sysdig 0.29.3 -------------------------------------------------------------


# every field of the module in one -p format (evt.type.is last: see the notes above)
PRINTED = ["proc.env", "proc.nthreads", "proc.nchilds", "user.loginname",
           "evt.count.error.file", "evt.count.error.net", "evt.count.error.memory",
           "evt.count.error.other", "evt.time.iso8601", "evt.abspath", "evt.abspath.dst",
           "evt.is_open_exec", "proc.sid", "proc.vpgid", "proc.sname", "proc.tty",
           "proc.vmsize", "proc.vmrss", "proc.vmswap", "proc.fdlimit", "thread.cgroups",
           "thread.cgroup.cpu", "proc.duration", "thread.pfmajor", "thread.pfminor",
           "evt.wait_latency", "thread.exectime", "proc.fdopencount", "proc.fdusage",
           "thread.vmsize", "thread.vmrss", "evt.type.is.open"]
SEP = " \x1f"
FORMAT = "*%evt.num" + "".join(SEP + "%" + f for f in PRINTED)

# chosen for what they hold: execve with env/cgroups (cat-write), a libs >= 0.10 process list
# (libs-sample), containers and getrlimit (run-as-user-0), prlimit, clones and *at calls
# (instruqt), setsid and session fallbacks (mpm-event-full), io= cgroups (setuid), openat
# (filesat), failed connects (curl-google, tcp-client-server), fork (alpine), switches (upload)
CAPTURES = ["falco-cat-write", "libs-sample", "falco-run-as-user-0-container",
            "instruqt-svh5-activity", "sysflow-mpm-event-full", "sysflow-setuid",
            "sysflow-filesat", "libs-curl-google", "sysflow-tcp-client-server", "sysflow-alpine",
            "sysflow-upload", "sysdig-examples-nginx-e3a0456"]

FILTERS = [
    ("falco-cat-write", "proc.env contains EMACS"),
    ("sysflow-mpm-event-full", "proc.nthreads > 1"),
    ("sysflow-mpm-event-full", "proc.sid = 1 and proc.nchilds = 0"),
    ("instruqt-svh5-activity", "user.loginname = root"),
    ("falco-cat-write", "evt.type.is.open = 1"),
    ("falco-run-as-user-0-container", "evt.count.error.other = 1"),
    ("libs-curl-google", "evt.count.error.net = 1 or evt.count.error.file = 1"),
    ("falco-cat-write", "evt.time.iso8601 contains T16:17:57.8818"),
    ("sysflow-filesat", "evt.abspath startswith /tmp"),
    ("sysflow-filesat", "evt.is_open_exec = false and evt.type = openat"),
    ("instruqt-svh5-activity", "proc.vpgid > 1000"),
    ("falco-run-as-user-0-container", "proc.sname = bash"),
    ("sysflow-alpine", "proc.tty != 0"),
    ("instruqt-svh5-activity", "proc.fdlimit = 1024"),
    ("sysflow-setuid", "thread.cgroups contains blkio"),
    ("sysflow-setuid", "thread.cgroup.pids startswith /user.slice"),
    ("instruqt-svh5-activity", "proc.duration > 1000000"),
    ("falco-run-as-user-0-container", "evt.wait_latency > 1000"),
    ("libs-sample", "thread.exectime > 1000000"),
    ("libs-sample", "thread.totexectime > 100000"),
    ("sysflow-upload", "proc.fdopencount > 5"),
    ("libs-curl-google", "proc.fdusage exists"),
    ("sysflow-upload", "proc.vmswap = 0"),
]

# the memory counters printed under a filter: sysdig never parsed the updates it dropped
FILTERED_MEMORY = [
    ("falco-cat-write", "evt.type in (close, read, write, open)"),
    ("sysflow-upload", "evt.type = switch or evt.type = mmap"),
    ("instruqt-svh5-activity", "evt.dir = <"),
]
MEMORY_FORMAT = "*%evt.num %proc.vmsize %proc.vmrss %proc.vmswap %thread.pfmajor " \
    "%thread.pfminor %thread.vmsize %thread.vmrss"


def _differing_fields(expected, got):
    """The names of the fields whose printed values differ (for the failure message)."""
    names = ["evt.num"] + PRINTED
    out = set()
    for a, b in zip(expected.split("\n"), got.split("\n")):
        for name, x, y in zip(names, a.split("\x1f"), b.split("\x1f")):
            if x != y:
                out.add(name)
    return sorted(out)


@pytest.mark.parametrize("name", CAPTURES)
def test_fields_printed_as_sysdig(utc, name):
    path = corpus_capture(name)
    expected = sysdig_output("-r", path, "-p", FORMAT)
    assert expected.count("\n") > 50
    got = scaptool_output("-r", path, "-p", FORMAT)
    assert got == expected, f"differ: {_differing_fields(expected, got)}"


@pytest.mark.parametrize("name, text", FILTERS, ids=[t for _, t in FILTERS])
def test_fields_filter_as_sysdig(utc, name, text):
    path = corpus_capture(name)
    expected = sysdig_output("-r", path, "-p", "%evt.num", text)
    assert expected.strip(), "the filter should select something"
    assert scaptool_output("-r", path, "-p", "%evt.num", text) == expected


@pytest.mark.parametrize("name, text", FILTERED_MEMORY, ids=[t for _, t in FILTERED_MEMORY])
def test_memory_counters_printed_under_a_filter_as_sysdig(utc, name, text):
    path = corpus_capture(name)
    expected = sysdig_output("-r", path, "-p", MEMORY_FORMAT, text)
    assert expected.strip()
    assert scaptool_output("-r", path, "-p", MEMORY_FORMAT, text) == expected


@pytest.mark.parametrize("field, name", [
    ("thread.totexectime", "libs-sample"), ("thread.totexectime", "sysflow-upload"),
    ("thread.totexectime", "sysdig-examples-example4-1"),
    ("proc.is_exe_writable", "libs-sample"), ("proc.is_exe_writable", "sysflow-setuid"),
    ("evt.abspath.src", "instruqt-svh5-activity"),
])
def test_field_alone_printed_as_sysdig(utc, field, name):
    path = corpus_capture(name)
    fmt = f"*%evt.num %{field}"
    expected = sysdig_output("-r", path, "-p", fmt)
    assert scaptool_output("-r", path, "-p", fmt) == expected
