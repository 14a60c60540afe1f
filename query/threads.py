"""Thread state over time, as sysdig 0.29.3 keeps it, joined to every event.

sysdig keeps a table of threads: seeded from the process-list blocks when a capture (or each
concatenated section) opens, then changed by a few kinds of events. Here the table is kept as
*versions*: (section, tid, row) -> the thread's whole state valid from that event row until the
thread's next version (a version with `alive` false means "not in the table"). One as-of join
per lookup then gives every event the state of its thread after sysdig parsed that event:

- the event's own thread: proc.name, proc.pid, proc.exe, proc.args, user.uid, ...
- the thread's main thread (tid == pid): proc.ppid and proc.cwd (sysdig keeps the cwd per
  process, in the main thread)
- the thread's parent (its ptid): proc.pname

What changes the table (libsinsp parsers of 0.29.3; see the notes on each handler below):

- clone/fork/vfork/clone3 exits, in the child (res 0) and in the caller (res > 0; the child is
  created by whichever of the two exits comes first, unless the caller runs in a container)
- execve/execveat exits with res >= 0 (exe, comm, args, pid, loginuid; env, cgroups,
  tty, process group, fd limit, exe_writable and memory counters when the event has them)
- procexit: the thread is removed when sysdig processes the *next* event (of any thread), and
  not at all while threads of its process still refer to it (main thread with live threads)
- chdir/getcwd exits (cwd, resolved against the current one, always ending with '/');
  fchdir exits (the name of their fd, from query.fds)
- setuid/setgid/setresuid/setresgid exits: the new id comes from the enter event
- setsid exits (the session id); getrlimit/setrlimit/prlimit exits on RLIMIT_NOFILE (the
  process's fd limit)
- any other event of a thread sysdig does not know creates a placeholder thread (comm and exe
  '<NA>', pid = tid, ptid = -1, uid/gid 0xffffffff), except clone exits, the scheduler switch
  and events flagged EF_SKIPPARSERESET, which only look the thread up.

The changes are applied by a Python loop over the state-changing events only (a clone copies
its caller's state as it is at that moment, so each change depends on the ones before it:
awkward to vectorize, and these events are few). Everything per event is vectorized.
fchdir is not applied: its new directory is the name of an fd, which needs the fd table.
"""
import functools

import numpy as np
import polars as pl

from scaptool.scap import eventtable, sysdig0293
from scaptool.scap.capture import per_capture_cache
from scaptool.scap.eventtable import EF

from .pairing import member, stored_enter_rows_at
from scaptool.query import paths

NO_ID = 0xFFFFFFFF          # uid/gid/loginuid of a thread sysdig knows nothing about
# PPM_CL_* thread flags
CLONE_THREAD = 1 << 13
CLONE_INVERTED = 1 << 16
CLOSED = 1 << 18
ACTIVE = 1 << 19

CLONE_NAMES = ("clone", "fork", "vfork", "clone3")
EXECVE_NAMES = ("execve", "execveat")
ID_SETTERS = {"setuid": ("uid", "uid"), "setgid": ("gid", "gid"),
              "setresuid": ("euid", "uid"), "setresgid": ("egid", "gid")}

# The state of one thread, in the order of the version tuples.
FIELDS = ("comm", "exe", "exepath", "args", "pid", "ptid", "cwd", "uid", "gid", "vtid", "vpid",
          "loginuid") + (
    # kept for the fields of query.fields_proc (proc.env, proc.sid, proc.nthreads, ...)
    "env", "sid", "vpgid", "tty", "fdlimit", "cgroups", "exe_writable", "clone_ts", "nchilds",
    # memory counters as the replay last set them, and the row where it did (the scheduler
    # switch and brk/mmap events change them too: query.fields_proc merges those, by row)
    "vmsize", "vmrss", "vmswap", "pfmajor", "pfminor", "mem_row",
    # the row where this thread object was made (per-thread totals start over there)
    "born")
_SCHEMA = {
    "section": pl.Int32, "tid": pl.Int64, "row": pl.Int64, "alive": pl.Boolean,
    "comm": pl.String, "exe": pl.String, "exepath": pl.String, "args": pl.List(pl.String),
    "pid": pl.Int64, "ptid": pl.Int64, "cwd": pl.String, "uid": pl.Int64, "gid": pl.Int64,
    "vtid": pl.Int64, "vpid": pl.Int64, "loginuid": pl.Int64,
    "env": pl.List(pl.String), "sid": pl.Int64, "vpgid": pl.Int64, "tty": pl.Int64,
    "fdlimit": pl.Int64, "cgroups": pl.List(pl.String), "exe_writable": pl.Boolean,
    "clone_ts": pl.Int64, "nchilds": pl.Int64, "vmsize": pl.Int64, "vmrss": pl.Int64,
    "vmswap": pl.Int64, "pfmajor": pl.Int64, "pfminor": pl.Int64, "mem_row": pl.Int64,
    "born": pl.Int64,
}
# What a thread sysdig makes up (or creates with init()) starts with, for the fields above
_DEFAULTS = {"env": (), "sid": -1, "vpgid": -1, "tty": 0, "fdlimit": -1, "cgroups": (),
             "exe_writable": False, "clone_ts": 0, "nchilds": 0, "vmsize": 0, "vmrss": 0,
             "vmswap": 0, "pfmajor": 0, "pfminor": 0, "mem_row": None, "born": None}

COLUMNS = ("proc.name", "proc.pid", "proc.ppid", "proc.exe", "proc.exepath", "proc.args",
           "proc.cmdline", "proc.cwd", "proc.vpid", "thread.vtid", "user.uid", "user.name",
           "group.gid", "group.name", "user.loginuid", "proc.pname")


# ---------------------------------------------------------------------------------------------
# Event kinds, per event id (0.29.3 only processes ids it knows; the others it skips unseen)

@functools.cache
def _kinds():
    """Per event id: its kind for the thread table ('' for none), and whether sysdig's reset
    creates a placeholder thread for an unknown tid."""
    table = eventtable.sysdig_0293()
    kind = np.full(65536, "", dtype=object)
    skips_reset = int(EF.SKIPPARSERESET)  # (an int test: IntFlag operators are slow)
    creates = np.zeros(65536, dtype=bool)
    for info in table:
        name = info.name
        exit_ = not info.is_enter
        if exit_ and name in CLONE_NAMES:
            kind[info.id] = "clone"
        elif exit_ and name in EXECVE_NAMES:
            kind[info.id] = "execve"
        elif info.is_enter and name == "procexit":
            kind[info.id] = "procexit"
        elif exit_ and name in ("chdir", "getcwd"):
            kind[info.id] = "chdir"
        elif exit_ and name == "fchdir":
            kind[info.id] = "fchdir"
        elif exit_ and name in ID_SETTERS:
            kind[info.id] = name
        elif exit_ and name == "setsid":
            kind[info.id] = "setsid"
        elif exit_ and name in ("getrlimit", "setrlimit", "prlimit"):
            kind[info.id] = "rlimit"
        lookup_only = (info.flags & skips_reset or name in ("switch", "container")
                       or kind[info.id] == "clone")
        creates[info.id] = not lookup_only
    return kind, creates


_STATE, _CREATES = 1, 2


@functools.cache
def _event_roles():
    """Per event id, for the events 0.29.3 reads (Capture.counted), a bit set: _STATE if it
    changes the thread table, _CREATES if it creates a placeholder thread."""
    kind, creates = _kinds()
    counted = sysdig0293.counted(np.arange(len(kind)))
    return (((kind != "") & counted) * _STATE | (creates & counted) * _CREATES).astype(np.uint8)


# capture -> _replay_rows(capture): the replay and the placeholders both need them
_REPLAY_ROWS = per_capture_cache()  # emptied by Capture.close()


def _replay_rows(capture):
    """(rows of the state-changing events, rows of the events that create a placeholder
    thread for a tid sysdig does not know), from one pass over the event types."""
    found = _REPLAY_ROWS.get(capture)
    if found is None:
        roles = _event_roles()[np.asarray(capture.event_types)]
        rows = np.flatnonzero(roles != 0)  # (a bool array: flatnonzero is 10x faster on it)
        # a chunk's context events were replayed by the chunk before: their effects (and the
        # placeholders they made) are in the state it carried
        rows = rows[rows >= getattr(capture, "context", 0)]
        roles = roles[rows]
        found = rows[(roles & _STATE) != 0], rows[(roles & _CREATES) != 0]
        _REPLAY_ROWS[capture] = found
    return found



# The parameters the replay reads from the state-changing events: read together, on first use.
_REPLAYED_PARAMS = ("res", "flags", "pid", "ptid", "vtid", "vpid", "exe", "comm", "args", "uid",
                    "gid", "cwd", "fdlimit", "pgft_maj", "pgft_min", "vm_size", "vm_rss",
                    "vm_swap", "cgroups", "loginuid", "env", "tty", "vpgid", "pgid", "path",
                    "cur", "newcur")


class _Params:
    """Parameter values at a few rows, as Python values (None where 0.29.3 reads none)."""

    def __init__(self, capture, rows, types):
        self.capture, self.rows, self.types = capture, rows, types
        self._values = {}  # name -> values as libs' table reads them
        self._cache = {}

    def __call__(self, name, old_name=None):
        key = (name, old_name)
        if key not in self._cache:
            if name not in self._values:
                wanted = [name] + [n for n in _REPLAYED_PARAMS
                                   if n != name and n not in self._values]
                self._values.update(self.capture.param_lists(wanted, self.rows))
            ok = sysdig0293.reads_param(name, old_name)[self.types]
            self._cache[key] = [v if k else None for v, k in zip(self._values[name], ok)]
        return self._cache[key]


def _text(value):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _arg_list(value):
    """argv[1..] from a NUL-separated buffer, as sysdig's set_args splits it."""
    if value is None:
        return ()
    return _nul_list(bytes(value))


# (processes of one program repeat the same arguments and environment: each distinct buffer
# is split and decoded once)
@functools.lru_cache(maxsize=4096)
def _nul_list(raw):
    if not raw:
        return ()
    # decoded whole, then split: a NUL is never part of a UTF-8 sequence, so the items come
    # out as if decoded one by one
    items = raw.decode("utf-8", "replace").split("\0")
    if items[-1] == "":
        items.pop()
    return tuple(items)


@functools.lru_cache(maxsize=4096)
def _env_list(value):
    """sysdig's set_env: NUL-separated strings, up to the point where only NULs are left."""
    items = list(_arg_list(value))
    while items and items[-1] == "":
        items.pop()
    return tuple(items)


# set_cgroups renames a few controllers as the kernel names them in cgroup v1 paths
_CGROUP_RENAMES = {"perf": "perf_event", "mem": "memory", "io": "blkio"}


def cgroup_list(items):
    """sysdig's set_cgroups over `subsys=path` strings: split at the last '=', '_cgroup'
    dropped from the controller name and a few names mapped; kept as 'subsys=path' (the path
    never holds a '=', so the last one still separates them). Stops at an item without '='."""
    return _cgroup_tuple(tuple(items))


@functools.lru_cache(maxsize=4096)
def _cgroup_tuple(items):
    out = []
    for item in items:
        subsys, sep, path = item.rpartition("=")
        if not sep:
            break
        subsys = subsys.replace("_cgroup", "", 1)
        out.append(_CGROUP_RENAMES.get(subsys, subsys) + "=" + path)
    return tuple(out)


def join_cwd(base, path):
    """sysdig's set_cwd: `path` resolved against `base` ('.' and '..' folded), ending in '/'."""
    return paths.join_cwd(base, path)


# ---------------------------------------------------------------------------------------------
# The table of one section, advanced event by event

class EligibleRows:
    """The rows of the events that would create a placeholder thread, per tid, in one
    section: sorted by tid on first use (most replays look up a thread that is missing)."""

    def __init__(self, rows, tids):
        self.rows, self.tids = rows, tids
        self._order = self._sorted_tids = None
        self._by_tid = {}

    def of(self, tid):
        """The rows of tid's events, ascending."""
        rows = self._by_tid.get(tid)
        if rows is None:
            if self._order is None:
                # a stable sort by tid keeps each thread's rows in order
                tids = self.tids[self.rows]
                self._order = np.argsort(tids, kind="stable")
                self._sorted_tids = tids[self._order]
            lo = np.searchsorted(self._sorted_tids, tid, side="left")
            hi = np.searchsorted(self._sorted_tids, tid, side="right")
            rows = self._by_tid[tid] = np.asarray(self.rows[self._order[lo:hi]], dtype=np.int64)
        return rows


class _Table:
    """sysdig's thread table while the state-changing events of one section are replayed.

    Every change appends a version (row, tid, alive, state...) to `versions`."""

    def __init__(self, section, start, eligible, versions):
        self.section = section
        self.start = start
        self.threads = {}        # tid -> dict of FIELDS plus flags, nchilds
        self.dead_since = {}     # tid -> row from which it was absent
        self.eligible = eligible  # EligibleRows of this section
        self.versions = versions
        self.headers = None      # the event headers (a clone's start time)

    # -- versions ------------------------------------------------------------------------
    def emit(self, tid, row):
        t = self.threads.get(tid)
        if t is None:
            self.versions.append((self.section, tid, row, False) + (None,) * len(FIELDS))
        else:
            if t["mem_row"] is None:
                t["mem_row"] = row  # a new thread's memory counters start here
            if t["born"] is None:
                t["born"] = row
            self.versions.append((self.section, tid, row, True) + tuple(t[f] for f in FIELDS))

    def put(self, tid, thread, row):
        self.threads[tid] = thread
        self.emit(tid, row)

    def remove(self, tid, row):
        """remove_thread: the main thread's count of threads drops when a thread goes."""
        t = self.threads.pop(tid, None)
        if t is None:
            return
        if t["flags"] & CLONE_THREAD:
            main = self.threads.get(t["pid"])
            if main is not None and main["nchilds"] > 0:
                main["nchilds"] -= 1
                self.emit(t["pid"], row)  # proc.nthreads
        self.dead_since[tid] = row
        self.emit(tid, row)

    # -- lookups ---------------------------------------------------------------------------
    @staticmethod
    def placeholder(tid):
        """The thread get_thread_ref makes up for a tid it cannot find (comm/exe '<NA>')."""
        return {"comm": None, "exe": None, "exepath": "", "args": (), "pid": tid, "ptid": -1,
                "cwd": "", "uid": NO_ID, "gid": NO_ID, "vtid": -1, "vpid": -1,
                "loginuid": NO_ID, "flags": 0, **_DEFAULTS}

    def lookup(self, tid, row, including_row=False):
        """The thread as sysdig sees it at `row`: present, or created as a placeholder by an
        earlier event of it (since it was last removed) that looked it up with query_os."""
        t = self.threads.get(tid)
        if t is not None:
            return t
        since = self.dead_since.get(tid, self.start)
        mine = self.eligible.of(tid)
        k = int(np.searchsorted(mine, since))
        if k < len(mine) and (mine[k] < row or (including_row and mine[k] == row)):
            self.put(tid, self.placeholder(tid), int(mine[k]))
            return self.threads[tid]
        return None

    def get(self, tid, row):
        """get_thread(tid, query_os=true): a placeholder is created now if needed."""
        t = self.lookup(tid, row, including_row=True)
        if t is None:
            self.put(tid, self.placeholder(tid), row)
            t = self.threads[tid]
        return t

    def main_thread(self, thread, tid, row):
        if thread["pid"] == tid:
            return thread
        return self.get(thread["pid"], row)

    def set_cwd(self, thread, tid, path, row, nul=True):
        """set_cwd changes the cwd of the thread's main thread (one cwd per process). A chdir
        path counts its NUL in sysdig's length limit, an fd name (fchdir) does not."""
        main_tid = thread["pid"]
        main = thread if main_tid == tid else self.get(main_tid, row)
        main["cwd"] = paths.change_dir(main["cwd"], _text(path) or "", nul)
        if self.threads.get(main_tid) is main:
            self.emit(main_tid, row)

    def add(self, tid, thread, row):
        """add_thread: a new thread counts towards its main thread's threads."""
        self.threads[tid] = thread
        self.dead_since.pop(tid, None)
        if thread["flags"] & CLONE_THREAD:
            main = self.get(thread["pid"], row)
            main["nchilds"] += 1
            self.emit(thread["pid"], row)  # proc.nthreads
        self.emit(tid, row)


# ---------------------------------------------------------------------------------------------
# Handlers: one per kind of state-changing event (parsers.cpp of libsinsp 0.29.3)

def _clone(table, row, tid, p, i):
    """parse_clone_exit."""
    res = p("res")[i]
    if res is None or res < 0:
        return
    flags = p("flags")[i] or 0
    vtid, vpid = p("vtid")[i], p("vpid")[i]
    # inside a container the caller's own tid differs from its vtid
    in_container = vtid is not None and tid != vtid
    if res == 0:
        child_tid = tid
        existing = table.threads.get(tid)
        if existing is None:
            existing = table.lookup(tid, row)
        if existing is not None:
            # the caller's exit already created the child; a child in a container learns
            # its own ids here
            if in_container:
                existing["vtid"], existing["vpid"] = vtid, vpid
                table.emit(tid, row)
            return
        inverted = True
        caller = p("pid")[i] if flags & CLONE_THREAD else p("ptid")[i]
    else:
        if in_container:
            return  # the caller only knows the child's id inside the container
        child_tid, inverted, caller = res, False, tid
    if caller is None:
        return
    parent = table.get(caller, row)
    exe, comm, args = _text(p("exe")[i]), _text(p("comm")[i]), _arg_list(p("args")[i])
    if comm is None:
        comm = exe  # old clone events have no comm
    valid_parent = not (parent["comm"] is None and parent["uid"] == NO_ID)
    if not valid_parent:
        # sysdig gives the caller the child's program too
        parent["comm"], parent["exe"], parent["args"] = comm, exe, args
        table.emit(caller, row)
    existing = table.threads.get(child_tid) or table.lookup(child_tid, row)
    if existing is not None:
        if existing["flags"] & CLONE_INVERTED:
            return
        table.remove(child_tid, row)  # an old thread whose exit we missed: replaced
    pid = p("pid")[i]
    if not flags & CLONE_THREAD:
        pid = child_tid
    # comm, exe and args come from the event even when the parent is known (they agree,
    # unless the caller renamed itself); exepath and loginuid from a known parent
    child = {"comm": comm, "exe": exe, "args": args, "ptid": caller, "pid": pid,
             "exepath": parent["exepath"] if valid_parent else "",
             "loginuid": parent["loginuid"] if valid_parent else 0,
             "cwd": "", "uid": p("uid")[i], "gid": p("gid")[i],
             "flags": flags | (CLONE_INVERTED if inverted else 0), **_DEFAULTS}
    if valid_parent:
        # session, process group, terminal and (for a new process) environment: the caller's
        for key in ("sid", "vpgid", "tty", "exe_writable"):
            child[key] = parent[key]
        if not flags & CLONE_THREAD:
            child["env"] = parent["env"]
    # limits, memory counters and cgroups: the event's own (what it lacks stays at init()'s)
    if p("fdlimit")[i] is not None:
        child["fdlimit"] = p("fdlimit")[i]
    for key, name in _MEMORY_PARAMS:
        if p(name)[i] is not None:
            child[key] = p(name)[i]
    child["mem_row"] = row
    if p("cgroups")[i] is not None:
        child["cgroups"] = cgroup_list(_arg_list(p("cgroups")[i]))
    child["clone_ts"] = int(table.headers.values_at("ts", [row])[0])
    if in_container:
        child["vtid"], child["vpid"] = vtid, vpid
    else:
        child["vtid"], child["vpid"] = child_tid, pid
    if child["uid"] is None:
        child["uid"] = 0
    if child["gid"] is None:
        child["gid"] = 0
    cwd = _text(p("cwd")[i])
    if not cwd and valid_parent:
        # an empty cwd parameter (older drivers): the child has its parent's cwd
        main = table.main_thread(parent, caller, row)
        cwd = main["cwd"] if main is not None else ""
    if pid == child_tid and cwd:
        child["cwd"] = paths.change_dir("", cwd)  # (nothing known: it stays empty)
    # a new thread's set_cwd would reach its process's main thread, but 0.29.3 finds no main
    # thread the first time a thread asks (get_main_thread returns before caching it), so the
    # clone's cwd changes nothing then (the process keeps its cwd: libs-curl-google)
    table.add(child_tid, child, row)


_MEMORY_PARAMS = (("pfmajor", "pgft_maj"), ("pfminor", "pgft_min"), ("vmsize", "vm_size"),
                  ("vmrss", "vm_rss"), ("vmswap", "vm_swap"))
PPM_EXE_WRITABLE = 1


def _execve(table, row, tid, p, i, enter_filename=None):
    """parse_execve_exit."""
    res = p("res")[i]
    if res is None or res < 0:
        return
    t = table.lookup(tid, row, including_row=True)
    if t is None:
        return
    t["exe"] = _text(p("exe")[i])
    comm = _text(p("comm")[i])
    t["comm"] = comm if comm is not None else t["exe"]
    t["args"] = _arg_list(p("args")[i])
    if p("pid")[i] is not None:
        t["pid"] = p("pid")[i]
    if t["ptid"] == -1 and p("ptid")[i] is not None:
        # only a thread sysdig made up (its ptid -1) takes the parent from the execve: a
        # known thread keeps the one it had, even if it was reparented since (seen in the
        # sysflow-mpm captures: a container's init keeps the ptid its clone gave it)
        t["ptid"] = p("ptid")[i]
    if p("loginuid")[i] is not None:
        t["loginuid"] = p("loginuid")[i]
    if p("fdlimit")[i] is not None:
        t["fdlimit"] = p("fdlimit")[i]
    if p("pgft_maj")[i] is not None:
        for key, name in _MEMORY_PARAMS:
            t[key] = p(name)[i] or 0
        t["mem_row"] = row
    if p("env")[i] is not None:
        t["env"] = _env_list(p("env")[i])
    if p("cgroups")[i] is not None:
        t["cgroups"] = cgroup_list(_arg_list(p("cgroups")[i]))
    if p("tty")[i] is not None:
        t["tty"] = p("tty")[i]
    if p("vpgid", "pgid")[i] is not None:
        t["vpgid"] = p("vpgid", "pgid")[i]
    if p("flags")[i] is not None:
        t["exe_writable"] = bool(p("flags")[i] & PPM_EXE_WRITABLE)
    t["flags"] = ACTIVE | (t["flags"] & CLONE_INVERTED)
    table.emit(tid, row)
    # the cwd parameter changes nothing: sysdig 0.29.3 shows the cwd the process had (the
    # empty one of a thread it made up: falco-cat-write, libs-curl-google)
    if enter_filename is not None:
        # the program's path: the enter event's filename resolved against the cwd
        name = _text(enter_filename)
        main = table.main_thread(t, tid, row)
        t["exepath"] = name if name.startswith("/") else join_cwd(main["cwd"], name)[:-1]
        table.emit(tid, row)


def _procexit(table, row, tid, next_row):
    t = table.lookup(tid, row, including_row=True)
    if t is None:
        return None
    t["flags"] |= CLOSED
    return (tid, next_row)


def _chdir(table, row, tid, p, i):
    res = p("res")[i]
    if res is None or res < 0:
        return
    t = table.lookup(tid, row, including_row=True)
    if t is not None and p("path")[i] is not None:
        table.set_cwd(t, tid, p("path")[i], row)


def _fchdir(table, row, tid, fd_name):
    """parse_fchdir_exit: a successful fchdir makes its fd's name the cwd, whatever the fd
    is (a file's name too); `fd_name` is None where it failed or the fd is unknown."""
    if fd_name is None:
        return
    t = table.lookup(tid, row, including_row=True)
    if t is not None:
        table.set_cwd(t, tid, fd_name, row, nul=False)


def _set_id(table, row, tid, p, i, value, field):
    """setuid & co: the new id comes from the enter event; -1 keeps the old one."""
    res = p("res")[i]
    if res is None or res < 0 or value is None or value >= NO_ID:
        return
    t = table.lookup(tid, row, including_row=True)
    if t is not None:
        t[field] = value
        table.emit(tid, row)


def _setsid(table, row, tid, p, i):
    """parse_setsid_exit: the new session id is the return value."""
    res = p("res")[i]
    if res is None or res < 0:
        return
    t = table.lookup(tid, row, including_row=True)
    if t is not None:
        t["sid"] = res
        table.emit(tid, row)


RLIMIT_NOFILE = 7   # PPM_RLIMIT_NOFILE


def _rlimit(table, row, tid, p, i, enter):
    """getrlimit/setrlimit/prlimit exits: a successful call on RLIMIT_NOFILE tells the
    process's fd limit (kept in its main thread). prlimit names its process by pid (sysdig
    looks that pid up as a thread id, making it up if missing)."""
    res = p("res")[i]
    if res is None or res < 0 or enter is None or enter.get("resource") != RLIMIT_NOFILE:
        return
    limit = p("cur")[i] if p("cur")[i] is not None else p("newcur")[i]
    if limit is None or limit in (-1, (1 << 64) - 1):
        return
    if limit >= 1 << 63:
        limit -= 1 << 64
    if "pid" in enter:
        target = enter["pid"]
        if target is None:
            return
        t = table.get(target, row)
        owner = target
    else:
        t = table.lookup(tid, row, including_row=True)
        owner = tid
        if t is None:
            return
    main = table.main_thread(t, owner, row)
    main["fdlimit"] = limit
    table.emit(t["pid"], row)


# ---------------------------------------------------------------------------------------------

def _as_read_by_0293(r):
    """A process-list entry as 0.29.3's reader sees it. Its V9 tail is loginuid then
    exe_writable, and no tty; libs 0.10 put pidns_init_start_ts (8 bytes) and tty before
    them, so in files of that layout 0.29.3 takes the low half of pidns_init_start_ts for the
    loginuid and its fifth byte for exe_writable. (The process frame shows an absent
    pidns_init_start_ts as 0: a new-layout entry whose value is 0 passes for an old one.)"""
    r = dict(r, tty=0)
    start = r.get("pidns_init_start_ts")
    if start:
        r["loginuid"] = start & 0xFFFFFFFF
        r["exe_writable"] = bool((start >> 32) & 0xFF)
    return r


def _seed(table, processes, section, row):
    """The process list of a section (`processes`: Capture.process_rows): the table before
    its first event."""
    rows = [_as_read_by_0293(r) for r in processes if r["section"] == section]
    for r in rows:
        tid = r["tid"]
        thread = {"comm": r["comm"], "exe": r["exe"], "exepath": r["exepath"] or "",
                  "args": tuple(r["args"] or ()), "pid": r["pid"], "ptid": r["ptid"], "cwd": "",
                  "uid": r["uid"], "gid": r["gid"], "vtid": r["vtid"], "vpid": r["vpid"],
                  "loginuid": r["loginuid"], "flags": (r["flags"] or 0) | ACTIVE, **_DEFAULTS}
        # sinsp_threadinfo::init(scap_threadinfo*): the environment only for main threads
        thread.update(
            env=_env_list_of(r["env"]) if thread["pid"] == tid else (),
            sid=r["sid"], vpgid=r["vpgid"], tty=0, fdlimit=r["fdlimit"],
            cgroups=cgroup_list(r["cgroups"] or ()), exe_writable=bool(r["exe_writable"]),
            vmsize=r["vmsize_kb"] or 0, vmrss=r["vmrss_kb"] or 0, vmswap=r["vmswap_kb"] or 0,
            pfmajor=r["pfmajor"] or 0, pfminor=r["pfminor"] or 0, mem_row=row)
        if thread["pid"] == tid:
            thread["cwd"] = paths.change_dir("", r["cwd"] or "", nul=False)
        table.threads[tid] = thread
    # create_child_dependencies: every thread counts towards its main thread (made up as a
    # placeholder if the list lacks it)
    for tid, thread in list(table.threads.items()):
        if thread["flags"] & CLONE_THREAD:
            main = table.threads.get(thread["pid"])
            if main is None:
                main = table.threads[thread["pid"]] = table.placeholder(thread["pid"])
            main["nchilds"] += 1
    for tid in table.threads:
        table.emit(tid, row)


def thread_versions(capture, tids=None, replayed=None):
    """The table of thread versions: section, tid, row (valid from), alive, state columns.

    With `tids`, the placeholder threads sysdig makes up are worked out for those threads
    only (the others' versions are the replayed ones); `replayed` reuses replay(capture)."""
    if replayed is None:
        replayed = replay(capture)
    rows = _replay_rows(capture)[1]
    row_tids = capture.headers.values_at("tid", rows)
    if tids is not None:
        mine = member(row_tids, tids)
        rows, row_tids = rows[mine], row_tids[mine]
    starts = [s.first_event for s in capture.sections] or [0]
    section_of = np.searchsorted(np.asarray(starts), rows, side="right") - 1
    return _add_placeholders(replayed, rows, section_of, row_tids.astype(np.int64))


def replay(capture):
    """The versions made by replaying the state-changing events (no placeholders yet)."""
    n = len(capture)
    types = np.asarray(capture.event_types)
    tids = np.asarray(capture.headers.tid)
    known = capture.counted
    kind_of, _ = _kinds()
    state_rows = _replay_rows(capture)[0]
    kinds = dict(zip(state_rows.tolist(), kind_of[types[state_rows]].tolist()))
    starts = [s.first_event for s in capture.sections] or [0]

    p = _Params(capture, state_rows, types[state_rows])
    # enter events of setuid & co and of execve (their params, by row)
    setter_rows = [r for r in state_rows if kinds[r] in ID_SETTERS or kinds[r] == "execve"]
    rlimit_rows = [r for r in state_rows if kinds[r] == "rlimit"]
    # one search for every enter these exits need (it may cost a pass over the events)
    enter = dict(zip(setter_rows + rlimit_rows,
                     stored_enter_rows_at(types, tids, setter_rows + rlimit_rows).tolist()))
    enter_values = {}
    if setter_rows:
        wanted = {}
        for r in setter_rows:
            e = int(enter[r])
            if e >= 0:
                name = "filename" if kinds[r] == "execve" else ID_SETTERS[kinds[r]][0]
                wanted.setdefault(name, []).append((r, e))
        for name, pairs in wanted.items():
            at = [e for _, e in pairs]
            values = capture.param_lists([name], at)[name]
            ok = sysdig0293.reads_param(name)[types[at]]
            for (r, _), v, k in zip(pairs, values, ok):
                if k:
                    enter_values[r] = v
    rlimits = _rlimit_enters(capture, types, rlimit_rows, enter)
    # fchdir names its new cwd by an fd: the fd state knows its name (built only if needed)
    fchdir_names = {}
    if "fchdir" in kinds.values():
        from .fds import fd_state
        fchdir_names = fd_state(capture).fchdir_names

    versions = []
    creating = _replay_rows(capture)[1]
    carried = getattr(capture, "carry_in", None)
    continues = getattr(capture, "continues", False)   # the section goes on after it
    for s, start in enumerate(starts):
        end = starts[s + 1] if s + 1 < len(starts) else n
        sel = creating[slice(*np.searchsorted(creating, [start, end]))]
        table = _Table(s, start, EligibleRows(sel, tids), versions)
        table.headers = capture.headers  # clone times (proc.duration)
        pending = None  # (tid, row) of a procexit's delayed removal
        if getattr(capture.sections[s], "continued", False):
            pending = _seed_carried(table, carried.parts["threads"], capture, known)
        else:
            _seed(table, capture.process_rows, s, start)
        lo, hi = np.searchsorted(state_rows, [start, end])
        for i in range(lo, hi):  # only the state-changing events (see the module's notes)
            row = int(state_rows[i])
            if pending is not None and pending[1] <= row:
                _remove_after_exit(table, *pending)
                pending = None
            tid, kind = int(tids[row]), kinds[row]
            if kind == "clone":
                _clone(table, row, tid, p, i)
            elif kind == "execve":
                _execve(table, row, tid, p, i, enter_values.get(row))
            elif kind == "procexit":
                later = np.flatnonzero(known[row + 1:row + 4097])  # the next event sysdig reads
                next_row = row + 1 + int(later[0]) if len(later) else \
                    _next_known(known, row + 4097)
                if next_row < end or (continues and s == len(starts) - 1):
                    # (in a chunk whose section goes on, the next event may be the next
                    # chunk's: the removal is then carried to it)
                    new = _procexit(table, row, tid, next_row)
                    if new is not None:
                        pending = new
                else:
                    _procexit(table, row, tid, next_row)
            elif kind == "chdir":
                _chdir(table, row, tid, p, i)
            elif kind == "fchdir":
                _fchdir(table, row, tid, fchdir_names.get(row))
            elif kind == "setsid":
                _setsid(table, row, tid, p, i)
            elif kind == "rlimit":
                _rlimit(table, row, tid, p, i, rlimits.get(row))
            else:
                _set_id(table, row, tid, p, i, enter_values.get(row), ID_SETTERS[kind][1])
        if continues and s == len(starts) - 1:
            # what the next chunk of this section starts from
            capture.carry_out["threads"] = _carried(table, pending, n, capture)
        elif pending is not None:
            _remove_after_exit(table, *pending)
    return _versions_frame(versions)


def _carried(table, pending, n, capture):
    """The thread table as the chunk leaves it, rows made global; a removal still pending
    (its procexit's next event is in the next chunk) is left to the next chunk."""
    to_global = capture.global_row
    if pending is not None and pending[1] < n:
        _remove_after_exit(table, *pending)
        pending = None
    threads = {}
    for tid, thread in table.threads.items():
        thread = dict(thread)
        for key in ("born", "mem_row"):
            if thread[key] is not None:
                thread[key] = to_global(thread[key])
        threads[tid] = thread
    return {"threads": threads, "pending": None if pending is None else pending[0]}


def _seed_carried(table, carried, capture, known):
    """A chunk that continues a section starts from the table the previous one left; a
    removal it left pending happens at the first event sysdig reads here."""
    to_local = capture.local_row
    for tid, thread in carried["threads"].items():
        thread = dict(thread)
        for key in ("born", "mem_row"):
            if thread[key] is not None:
                thread[key] = to_local(thread[key])
        table.threads[tid] = thread
    for tid in table.threads:
        table.emit(tid, 0)
    if carried["pending"] is None:
        return None
    first = np.flatnonzero(known)
    return (carried["pending"], int(first[0]) if len(first) else len(known))


def _versions_frame(versions):
    """The DataFrame of the version tuples, column by column. The list columns (args, env,
    cgroups) repeat the same few lists in most versions: each distinct list is converted
    once and gathered, not converted again for every version."""
    columns = list(zip(*versions)) if versions else [()] * len(_SCHEMA)
    data = []
    for (name, dtype), values in zip(_SCHEMA.items(), columns):
        if isinstance(dtype, pl.List):
            index = {}
            codes = [index.setdefault(v, len(index)) if v is not None else None
                     for v in values]
            distinct = pl.Series(name, [list(v) for v in index], dtype=dtype)
            data.append(distinct.gather(pl.Series(codes, dtype=pl.UInt32)))
        else:
            # (strict=False: a value out of the column's range, which only damage makes,
            # is null)
            data.append(pl.Series(name, values, dtype=dtype, strict=False))
    return pl.DataFrame(data)


def _rlimit_enters(capture, types, rows, enter):
    """{exit row: {'resource': ..., ['pid': ...]}} from the paired enter events of
    getrlimit/setrlimit/prlimit exits (none where the enter is missing); `enter` maps each
    exit row to its enter row."""
    out = {}
    if not rows:
        return out
    pairs = [(r, int(enter[r])) for r in rows if enter[r] >= 0]
    if not pairs:
        return out
    at = [e for _, e in pairs]
    table = eventtable.sysdig_0293()
    params = capture.param_lists(["resource", "pid"], at)
    for (r, e), res, who in zip(pairs, params["resource"], params["pid"]):
        values = {"resource": res}
        if table[int(types[e])].name == "prlimit":
            values["pid"] = who
        out[r] = values
    return out


def _env_list_of(items):
    """set_env over a list already split at the NULs."""
    items = list(items or ())
    while items and items[-1] == "":
        items.pop()
    return tuple(items)


def _next_known(known, start):
    later = np.flatnonzero(known[start:])
    return start + int(later[0]) if len(later) else len(known)


def _remove_after_exit(table, tid, row):
    t = table.threads.get(tid)
    if t is None or t["nchilds"] > 0:
        return  # a main thread stays while its threads do
    table.remove(tid, row)


def _add_placeholders(versions, rows, section_of, tids):
    """Placeholder threads for the events of threads sysdig does not know (the first such
    event since the thread was last absent creates one), vectorized over the eligible events
    (rows, ascending, with their section and tid)."""
    if len(rows) == 0:
        return (versions.unique(["section", "tid", "row"], keep="last", maintain_order=True)
                .sort(["section", "tid", "row"]))
    versions = versions.unique(["section", "tid", "row"], keep="last", maintain_order=True)
    events = pl.DataFrame({"section": section_of.astype(np.int32), "tid": tids,
                           "row": rows.astype(np.int64)}).set_sorted("row")
    seen = events.join_asof(
        versions.select("section", "tid", "row", "alive", pl.col("row").alias("since"))
        .sort("row"), on="row", by=["section", "tid"], strategy="backward", check_sortedness=False)
    missing = seen.filter(~pl.col("alive").fill_null(False))
    new = (missing.group_by("section", "tid", pl.col("since").fill_null(-1))
           .agg(pl.col("row").min())
           .select("section", "tid", "row"))
    if new.height == 0:
        return versions.sort(["section", "tid", "row"])
    placeholder = new.with_columns(
        pl.lit(True).alias("alive"), pl.lit(None, pl.String).alias("comm"),
        pl.lit(None, pl.String).alias("exe"), pl.lit("").alias("exepath"),
        pl.lit([], pl.List(pl.String)).alias("args"), pl.col("tid").alias("pid"),
        pl.lit(-1, pl.Int64).alias("ptid"), pl.lit("").alias("cwd"),
        pl.lit(NO_ID, pl.Int64).alias("uid"), pl.lit(NO_ID, pl.Int64).alias("gid"),
        pl.lit(-1, pl.Int64).alias("vtid"), pl.lit(-1, pl.Int64).alias("vpid"),
        pl.lit(NO_ID, pl.Int64).alias("loginuid"),
        *[pl.lit(list(v) if isinstance(v, tuple) else v, _SCHEMA[k]).alias(k)
          for k, v in _DEFAULTS.items() if k not in ("mem_row", "born")],
        pl.col("row").alias("mem_row"), pl.col("row").alias("born"),
    ).select(list(_SCHEMA)).cast(_SCHEMA)
    # a placeholder made at the row where the thread was removed replaces that removal
    return (pl.concat([versions, placeholder])
            .unique(["section", "tid", "row"], keep="last", maintain_order=True)
            .sort(["section", "tid", "row"]))


def _as_of(events, versions, key, columns, prefix):
    """Each event's version of the thread named by its `key` column, as of its row.

    Only a version number is joined; each wanted column is then gathered from the versions by
    that number: joining the wide version rows (strings, argument lists) onto millions of
    events costs many times more."""
    numbered = versions.with_row_index("_version")
    right = numbered.select("section", pl.col("tid").alias(key), "row", "_version") \
        .sort("row", maintain_order=True)
    joined = events.join_asof(right, on="row", by=["section", key], strategy="backward",
                              check_sortedness=False)
    which = joined["_version"]
    alive = numbered["alive"].gather(which).fill_null(False)
    extra = [pl.Series(prefix + "alive", alive)]
    for c in columns:
        values = numbered[c].gather(which)
        extra.append(values.set(~alive, None).alias(prefix + c) if not alive.all()
                     else values.alias(prefix + c))
    return joined.drop("_version").with_columns(extra)


# What each column needs from the event's own thread (t.), its main thread (m.) and its parent
# (p.): only those are gathered, since each is a column as long as the capture.
_NEEDS = {
    "proc.name": ("t.comm",), "proc.pid": (), "proc.ppid": ("m.ptid",),
    "proc.exe": ("t.comm", "t.exe"), "proc.exepath": ("t.exepath",), "proc.args": ("t.args",),
    "proc.cmdline": ("t.comm", "t.cmdline"), "proc.cwd": ("t.cwd", "m.cwd"),
    "proc.vpid": ("t.vpid",), "thread.vtid": ("t.vtid",), "user.uid": ("t.uid",),
    "user.name": ("t.uid",), "group.gid": ("t.gid",), "group.name": ("t.gid",),
    "user.loginuid": ("t.loginuid",), "proc.pname": ("p.comm",),
}


def _column_exprs():
    """The expression of each column over the t./m./p. lookups."""
    is_main = pl.col("t.pid") == pl.col("tid")
    present = pl.col("t.alive")
    # a placeholder thread's comm and exe are the text "<NA>" in sysdig, a value like any
    # other (JSON shows the string; -p without '*' keeps the line); no thread at all is null
    made_up = present & pl.col("t.comm").is_null()
    return {
        "proc.name": pl.when(made_up).then(pl.lit("<NA>")).otherwise(pl.col("t.comm")),
        "proc.pid": pl.col("t.pid"),
        # a missing main thread is made up by sysdig as a placeholder (ptid -1)
        "proc.ppid": pl.when(~present).then(None)
        .when(is_main).then(pl.col("t.ptid"))
        .when(pl.col("m.alive")).then(pl.col("m.ptid"))
        .otherwise(-1),
        "proc.exe": pl.when(made_up & pl.col("t.exe").is_null()).then(pl.lit("<NA>"))
        .otherwise(pl.col("t.exe")),
        "proc.exepath": pl.col("t.exepath"),
        "proc.args": pl.col("t.args"),
        "proc.cmdline": pl.when(pl.col("t.comm").is_not_null()).then(pl.col("t.cmdline"))
        .when(made_up).then(pl.lit("<NA>")),
        "proc.cwd": pl.when(~present).then(None)
        .when(is_main).then(pl.col("t.cwd"))
        .when(pl.col("m.alive")).then(pl.col("m.cwd"))
        .otherwise(pl.lit("")),
        # -1 is what a thread without namespace ids has: sysdig shows no value then
        "proc.vpid": pl.when(pl.col("t.vpid") != -1).then(pl.col("t.vpid")),
        "thread.vtid": pl.when(pl.col("t.vtid") != -1).then(pl.col("t.vtid")),
        "user.uid": pl.col("t.uid"),
        "group.gid": pl.col("t.gid"),
        # sinsp keeps the auid as a signed 32-bit number: 4294967295 (unset) shows as -1
        "user.loginuid": pl.when(pl.col("t.loginuid") >= 1 << 31)
        .then(pl.col("t.loginuid") - (1 << 32)).otherwise(pl.col("t.loginuid")),
        "proc.pname": pl.col("p.comm"),
    }


def placeholder_tids(capture, rows, replayed):
    """The threads whose placeholders matter at these rows: the events' own threads, and the
    main and parent threads the lookups reach (a placeholder is its own main thread)."""
    return set(capture.headers.values_at("tid", rows).tolist()) \
        | set(replayed["pid"].drop_nulls().to_list()) \
        | set(replayed["ptid"].drop_nulls().to_list())


def thread_columns(capture, rows=None, replayed=None, columns=COLUMNS, versions=None):
    """One row per event, in capture order (or per row of `rows`, in that order): the event's
    thread (proc.*, thread.vtid, user.*, group.*) after sysdig 0.29.3 parsed the event, for
    the named `columns`. Null where sysdig prints <NA>. `replayed` reuses replay(capture);
    `versions`, thread_versions() for (at least) the placeholder_tids of these rows."""
    if replayed is None:
        replayed = replay(capture)
    asked = [c for c in COLUMNS if c in columns]
    # a name comes from its id (a container event's thread has id 0)
    columns = [c for c in COLUMNS if c in asked or (c == "user.uid" and "user.name" in asked)
               or (c == "group.gid" and "group.name" in asked)]
    all_tids = np.asarray(capture.headers.tid)
    in_order = rows is None
    if rows is None:
        rows = np.arange(len(capture), dtype=np.int64)
        versions = thread_versions(capture, replayed=replayed)
    else:
        rows = np.asarray(rows, dtype=np.int64)
        in_order = bool(np.all(rows[1:] > rows[:-1]))
        if versions is None:
            versions = thread_versions(capture, tids=placeholder_tids(capture, rows, replayed),
                                       replayed=replayed)
    starts = [s.first_event for s in capture.sections] or [0]
    section_of = np.searchsorted(np.asarray(starts), rows, side="right") - 1
    events = pl.DataFrame({"section": section_of.astype(np.int32),
                           "tid": all_tids[rows].astype(np.int64), "row": rows})
    if not in_order:
        events = events.with_columns(pl.Series("_order", np.arange(len(rows)))).sort("row")
    needs = {n for c in columns for n in _NEEDS[c]}
    if "t.cmdline" in needs:
        # strings built per thread version (thousands), not per event (millions)
        versions = versions.with_columns(
            pl.when(pl.col("comm").is_not_null()).then(
                pl.concat_str([pl.col("comm"), pl.col("args").list.eval(
                    pl.lit(" ") + pl.element()).list.join("")])).alias("cmdline"))
    own_columns = ("pid", "ptid") + tuple(n[2:] for n in sorted(needs) if n.startswith("t."))
    frame = _as_of(events, versions, "tid", tuple(dict.fromkeys(own_columns)), "t.")
    # the main thread (proc.ppid, proc.cwd) and the parent thread (proc.pname)
    main_columns = tuple(n[2:] for n in sorted(needs) if n.startswith("m."))
    if main_columns:
        frame = _as_of(frame.with_columns(pl.col("t.pid").alias("main_tid")), versions,
                       "main_tid", main_columns, "m.")
    if "p.comm" in needs:
        frame = _as_of(frame.with_columns(pl.col("t.ptid").alias("ptid_")), versions, "ptid_",
                       ("comm",), "p.")
    exprs = _column_exprs()
    frame = frame.with_columns(exprs[c].alias(c) for c in columns if c in exprs)
    frame = _container_events(capture, frame, rows, columns)
    if "user.name" in columns:
        frame = frame.join(_names(capture.users, "uid"), left_on=["section", "user.uid"],
                           right_on=["section", "id"], how="left", maintain_order="left") \
            .rename({"name": "user.name"})
    if "group.name" in columns:
        frame = frame.join(_names(capture.groups, "gid"), left_on=["section", "group.gid"],
                           right_on=["section", "id"], how="left", maintain_order="left") \
            .rename({"name": "group.name"})
    if not in_order:
        frame = frame.sort("_order")
    return frame.select(asked)


def _names(table, column):
    """(section, id) -> name of the user or group list; the first entry wins."""
    if table.height == 0:
        return pl.DataFrame(schema={"section": pl.Int32, "id": pl.Int64, "name": pl.String})
    return (table.select(pl.col("section").cast(pl.Int32), pl.col(column).cast(pl.Int64)
                         .alias("id"), "name")
            .unique(["section", "id"], keep="first", maintain_order=True))


@functools.cache
def _container_json_ids():
    """Ids of the container events that carry JSON and that sysdig prints."""
    return [e.id for e in eventtable.sysdig_0293() if e.name == "container"
            and any(p.name == "json" for p in e.params)]


def _container_events(capture, frame, rows, wanted):
    """A container event gets a thread of its own, made up for it alone and kept in no
    table: comm 'container:ID', pid -1, ptid 0, uid and gid 0, empty exe."""
    from .container_json import container_info
    types = np.asarray(capture.event_types)[rows]
    rows = rows[np.isin(types, _container_json_ids()) &
                capture.counted[rows]]
    if len(rows) == 0:
        return frame
    names = []
    for raw in capture.param("json", rows=rows).to_list():
        info = container_info(raw) if raw is not None else None
        names.append("container:" + (str(info.get("id", "")) if info is not None else ""))
    # a few events among millions: overwrite their rows in place
    k = len(rows)
    values = {"proc.name": names, "proc.pid": [-1] * k, "proc.ppid": [0] * k,
              "proc.exe": [""] * k, "proc.exepath": [""] * k, "proc.cmdline": names,
              "proc.cwd": [""] * k, "proc.vpid": [-2] * k, "thread.vtid": [-2] * k,
              "user.uid": [0] * k, "group.gid": [0] * k, "user.loginuid": [0] * k,
              "proc.pname": [None] * k}
    values = {name: v for name, v in values.items() if name in wanted}
    order = frame["row"].to_numpy()
    at = np.searchsorted(order, rows) if (np.diff(order) >= 0).all() else \
        np.flatnonzero(np.isin(order, rows))
    columns = {name: frame[name].scatter(at, pl.Series(vals, dtype=frame[name].dtype))
               for name, vals in values.items()}
    if "proc.args" not in wanted:
        return frame.with_columns([s.alias(name) for name, s in columns.items()])
    # list columns cannot be scattered into: a mask of those rows picks an empty list
    args = frame["proc.args"]
    mask = np.zeros(len(args), dtype=bool)
    mask[at] = True
    columns["proc.args"] = pl.select(pl.when(pl.Series(mask)).then(pl.lit([], dtype=args.dtype))
                                     .otherwise(args)).to_series()
    return frame.with_columns([s.alias(name) for name, s in columns.items()])


def with_placeholders(capture, replayed, carried):
    """The thread table a chunk leaves (replay's `carried`), with the placeholder threads
    alive at its end: those are made per event, apart from the replay, and the next chunk
    must find them as sysdig's table holds them."""
    versions = thread_versions(capture, replayed=replayed)
    last = versions.group_by("tid", maintain_order=True).last()
    known = carried["threads"]
    threads = dict(known)
    for v in last.filter(pl.col("alive")).iter_rows(named=True):
        tid = v["tid"]
        if tid in known:
            continue
        thread = {f: v[f] for f in FIELDS}
        for f in ("args", "env", "cgroups"):
            thread[f] = tuple(thread[f] or ())
        for f in ("born", "mem_row"):
            if thread[f] is not None:
                thread[f] = capture.global_row(thread[f])
        thread["flags"] = 0
        threads[tid] = thread
    return dict(carried, threads=threads)
