"""fd state over time, as interval tables, joined to every event (sysdig 0.29.3 semantics).

sysdig keeps one fd table per process (threads share their main thread's; a fork copies its
parent's) and, per thread, the fd of the last event (``m_lastevent_fd``). The ``fd.*`` fields of
an event read the table entry of that fd *after* the event was parsed. Here the same state is
built as tables of versions:

* **fd versions**: one row per (table owner, fd) value, valid for event rows ``[start, end)``.
  Seeded from the fd-list blocks at the first row of each section, then advanced by the events
  that change fd tables (open*, creat, socket, socketpair, bind, connect, accept*, pipe*,
  eventfd, signalfd, timerfd_create, inotify_init, epoll_create, dup*, fcntl(F_DUPFD), close,
  sendto/recvfrom on sockets without a tuple yet, fork/clone copies). A change made by the
  event at row r is visible from row r on; a close removes the fd from row r + 1 on (sysdig
  removes closed fds when it starts the next event, so the close exit still shows the name).
  Most of these events need no state to know what they do: the common ones (open-likes,
  close, socket, pipe, socketpair, eventfd-likes, accept, getsockopt) are decoded for all
  rows at once and applied in batches by query.fds_bulk. A Python loop replays the rest one
  by one (clone/fork, execve, chdir/fchdir, dup*, fcntl F_DUPFD, and bind/connect/sendto/
  recvfrom that patch an existing socket entry, openat relative to a directory fd: well
  under 1% of the events), each after the batch of common events before it when they share
  state. ``FdState(capture, reference=True)`` replays every one of them in that loop: the
  oracle the bulk path is tested against. Every other event gets its values from vectorized
  as-of joins.
* **lastevent_fd per event**: a forward fill per thread of the values set by enter events
  (-1, or their fd parameter when the event uses an fd) and by exits that create an fd.
* **table owner per event**: the pid of the thread (threads with CLONE_FILES share the main
  thread's table), or the tid for threads sysdig knows nothing about.

Rules taken from sysdig 0.29.3's libsinsp (parsers.cpp, filterchecks.cpp ``sinsp_filter_check_fd``)
and checked against its output on the corpus:

* fd fields exist only for events whose 0.29.3 flags have EF_CREATES_FD, EF_USES_FD or
  EF_DESTROYS_FD, and not for EF_SKIPPARSERESET events (no thread info).
* ``fd.num`` is the thread's lastevent_fd (-1 for an enter without an fd, e.g. ``> open``).
* With no table entry: ``fd.typechar`` comes from the syscall (f for open-likes, 4 for socket
  and accept, p pipe, e eventfd, s signalfd, t timerfd, i inotify, o otherwise); ``fd.name``
  is null on enter events, the name from the args on failed open/creat/openat*/accept/connect
  exits, and the empty string on other exits. A failed connect also takes its name from args.
* ``fd.sip``/``fd.cip``/``fd.sport``/``fd.cport`` of a connected socket need a role (client
  after connect, server after accept/bind/fd list...); server sockets always have sip/sport.

Public API: :func:`fd_columns`, :func:`fd_state` (the interval tables), :func:`fd_name_at`
(bulk "resolved ``<typechar l4char>name`` of fd V at row R") and :func:`fd_param_texts`.
"""
import functools
import ipaddress
import struct

import numpy as np
import polars as pl

from scaptool.query import paths
from scaptool.query.pairing import enter_rows, last_row_where, stored_enter_rows_at
from scaptool.scap import eventtable, sysdig0293
from scaptool.scap.capture import per_capture_cache
from scaptool.scap.codecs import PPM_AF_INET, PPM_AF_INET6, PPM_AF_UNIX, codec_for
from scaptool.scap.eventtable import EF, PT

__all__ = [
    "TYPECHAR",
    "TYPENAME",
    "FdState",
    "fd_columns",
    "fd_name_at",
    "fd_param_texts",
    "fd_state",
]

# scap_fd_type
(FILE, DIRECTORY, IPV4_SOCK, IPV6_SOCK, IPV4_SERVSOCK, IPV6_SERVSOCK, FIFO, UNIX_SOCK, EVENT,
 UNSUPPORTED, SIGNALFD, EVENTPOLL, INOTIFY, TIMERFD, NETLINK, FILE_V2, BPF, USERFAULTFD, IOURING,
 MEMFD, PIDFD) = range(1, 22)
UNKNOWN = 0

#: fd.typechar per scap fd type (libsinsp fdinfo.h; b/u/r/m/P are current libs only)
TYPECHAR = {FILE: "f", FILE_V2: "f", DIRECTORY: "d", IPV4_SOCK: "4", IPV4_SERVSOCK: "4",
            IPV6_SOCK: "6", IPV6_SERVSOCK: "6", FIFO: "p", UNIX_SOCK: "u", EVENT: "e",
            SIGNALFD: "s", EVENTPOLL: "l", INOTIFY: "i", TIMERFD: "t", NETLINK: "n",
            UNSUPPORTED: "X", UNKNOWN: "o", BPF: "b", USERFAULTFD: "u", IOURING: "r",
            MEMFD: "m", PIDFD: "P"}
#: fd.type per scap fd type
TYPENAME = {FILE: "file", FILE_V2: "file", DIRECTORY: "directory", IPV4_SOCK: "ipv4",
            IPV4_SERVSOCK: "ipv4", IPV6_SOCK: "ipv6", IPV6_SERVSOCK: "ipv6", FIFO: "pipe",
            UNIX_SOCK: "unix", EVENT: "event", SIGNALFD: "signalfd", EVENTPOLL: "eventpoll",
            INOTIFY: "inotify", TIMERFD: "timerfd", NETLINK: "netlink", UNSUPPORTED: "unsupported",
            UNKNOWN: "unknown", BPF: "bpf", USERFAULTFD: "userfaultfd", IOURING: "io_uring",
            MEMFD: "memfd", PIDFD: "pidfd"}
L4NAME = {2: "tcp", 3: "udp", 4: "icmp", 5: "raw"}
L4CHAR = {2: "t", 3: "u", 4: "i", 5: "r"}
L4_UNKNOWN, L4_TCP, L4_UDP, L4_ICMP, L4_RAW = 0, 2, 3, 4, 5
SOCKETS = (IPV4_SOCK, IPV6_SOCK, IPV4_SERVSOCK, IPV6_SERVSOCK)
CLIENT_SOCKETS = (IPV4_SOCK, IPV6_SOCK)
SERVER_SOCKETS = (IPV4_SERVSOCK, IPV6_SERVSOCK)

ROLE_NONE, ROLE_CLIENT, ROLE_SERVER = 0, 1, 2
AT_FDCWD = -100
PPM_O_DIRECTORY = 1024
PPM_CL_CLONE_FILES = 1
PPM_CL_CLONE_THREAD = 8192
PPM_AF_NETLINK = 16
PPM_FCNTL_F_DUPFD, PPM_FCNTL_F_DUPFD_CLOEXEC = 1, 26
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW = 1, 2, 3
IPPROTO_IP, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_RAW = 0, 1, 6, 17, 255
EINPROGRESS = 115


# --------------------------------------------------------------------------------------------
# Per event id facts

@functools.cache
def _event_facts():
    """Per event id (numpy arrays of 65536): 0.29.3 flags (libs flags for newer ids), the
    handler kind of the fd state machine, and the typechar used when an event has no fd."""
    new = eventtable.libs()
    flags = np.zeros(65536, dtype=np.int64)
    kind = np.zeros(65536, dtype=np.int16)
    nullchar = np.full(65536, "o", dtype="<U1")
    flags[:len(new)] = sysdig0293.per_type("flags")
    for i in range(len(new)):
        # the handler is chosen by the current name (0.29.3's tables name a few ids otherwise)
        name = new[i].name
        key = _KINDS.get((name, new[i].direction))
        if key is not None:
            kind[i] = key
        nullchar[i] = _NULL_TYPECHAR.get(name, "o")
    return flags, kind, nullchar


# handler kinds
(K_OPEN_X, K_OPENAT_OLD_X, K_SOCKET_X, K_SOCKETPAIR_X, K_BIND_X, K_CONNECT_X, K_ACCEPT_X,
 K_PIPE_X, K_SINGLE_X, K_DUP_X, K_FCNTL_X, K_CLOSE_X, K_SENDTO_X, K_RECVFROM_X, K_CLONE_X,
 K_EXECVE_X, K_CHDIR_X, K_FCHDIR_X, K_GETSOCKOPT_X, K_CONNECT_E) = range(1, 21)
_KINDS = {
    ("open", "<"): K_OPEN_X, ("creat", "<"): K_OPEN_X, ("openat", "<"): K_OPEN_X,
    ("openat2", "<"): K_OPEN_X,
    ("socket", "<"): K_SOCKET_X, ("socketpair", "<"): K_SOCKETPAIR_X, ("bind", "<"): K_BIND_X,
    ("connect", "<"): K_CONNECT_X, ("accept", "<"): K_ACCEPT_X, ("accept4", "<"): K_ACCEPT_X,
    ("pipe", "<"): K_PIPE_X, ("pipe2", "<"): K_PIPE_X,
    ("eventfd", "<"): K_SINGLE_X, ("eventfd2", "<"): K_SINGLE_X, ("signalfd", "<"): K_SINGLE_X,
    ("signalfd4", "<"): K_SINGLE_X, ("timerfd_create", "<"): K_SINGLE_X,
    ("inotify_init", "<"): K_SINGLE_X, ("inotify_init1", "<"): K_SINGLE_X,
    ("epoll_create", "<"): K_SINGLE_X, ("epoll_create1", "<"): K_SINGLE_X,
    ("userfaultfd", "<"): K_SINGLE_X, ("io_uring_setup", "<"): K_SINGLE_X,
    ("memfd_create", "<"): K_SINGLE_X, ("pidfd_open", "<"): K_SINGLE_X,
    ("dup", "<"): K_DUP_X, ("dup2", "<"): K_DUP_X, ("dup3", "<"): K_DUP_X,
    ("fcntl", "<"): K_FCNTL_X, ("close", "<"): K_CLOSE_X,
    ("sendto", "<"): K_SENDTO_X, ("sendmsg", "<"): K_SENDTO_X,
    ("recvfrom", "<"): K_RECVFROM_X, ("recvmsg", "<"): K_RECVFROM_X,
    ("clone", "<"): K_CLONE_X, ("fork", "<"): K_CLONE_X, ("vfork", "<"): K_CLONE_X,
    ("clone3", "<"): K_CLONE_X,
    ("execve", "<"): K_EXECVE_X, ("execveat", "<"): K_EXECVE_X,
    ("chdir", "<"): K_CHDIR_X, ("fchdir", "<"): K_FCHDIR_X,
    ("getsockopt", "<"): K_GETSOCKOPT_X,
    # an enter that changes state: a connect enter with its address names a unix socket
    ("connect", ">"): K_CONNECT_E,
}
# the exits whose parsers read their enter event's parameters (sysdig's retrieve_enter_event)
_READS_ENTER = (K_OPEN_X, K_SOCKET_X, K_FCNTL_X, K_SENDTO_X)
@functools.cache
def _fcntl_enter():
    return next(i for i in eventtable.libs().ids_named("fcntl") if i % 2 == 0)


_SINGLE_TYPE = {"eventfd": EVENT, "eventfd2": EVENT, "signalfd": SIGNALFD, "signalfd4": SIGNALFD,
                "timerfd_create": TIMERFD, "inotify_init": INOTIFY, "inotify_init1": INOTIFY,
                "epoll_create": EVENTPOLL, "epoll_create1": EVENTPOLL,
                "userfaultfd": USERFAULTFD, "io_uring_setup": IOURING, "memfd_create": MEMFD,
                "pidfd_open": PIDFD}
# sinsp_filter_check_fd::extract_from_null_fd, TYPE_FDTYPECHAR (by the enter event's type)
_NULL_TYPECHAR = {"open": "f", "openat": "f", "openat2": "f", "creat": "f",
                  "socket": "4", "accept": "4", "accept4": "4", "pipe": "p", "pipe2": "p",
                  "eventfd": "e", "eventfd2": "e", "signalfd": "s", "signalfd4": "s",
                  "timerfd_create": "t", "inotify_init": "i", "inotify_init1": "i"}


# --------------------------------------------------------------------------------------------
# Small helpers

def _ip_text(raw):
    return str(ipaddress.ip_address(bytes(raw)))


def _mapped_v4(raw16):
    """sinsp_utils::is_ipv4_mapped_ipv6: ten zero bytes, then ff ff or 00 00."""
    return raw16[:10] == bytes(10) and raw16[10:12] in (b"\xff\xff", b"\0\0")


def tuple_text(stype, sip, sport, dip, dport):
    """sockinfo_to_str of a connected socket: ``sip:sport->dip:dport`` (IPv6 without [])."""
    return f"{sip}:{sport}->{dip}:{dport}"


def _text(raw):
    if raw is None:
        return ""
    raw = bytes(raw)
    cut = raw.find(b"\0")
    if cut >= 0:
        raw = raw[:cut]
    return raw.decode("utf-8", "replace")


def sanitize_name(text):
    """sysdig's sanitize_string: keep printable characters (and UTF-8 beyond ASCII)."""
    return "".join(c for c in text if c.isprintable() or ord(c) > 127) if text else text


# --------------------------------------------------------------------------------------------
# Thread model (PRIVATE; to be replaced by query.threads when it lands)

class _Threads:
    """tid -> pid / fd-table owner / cwd as sinsp tracks them, advanced in event order.

    PRIVATE stand-in for query.threads: only what fd state needs (which table a thread uses,
    its working directory). Threads sysdig has never heard of get their own empty table."""

    def __init__(self):
        self.pid = {}       # tid -> pid
        self.flags = {}     # tid -> PPM_CL_* flags
        self.cwd = {}       # tid -> cwd (kept on main threads; ends with '/')
        self.known = set()  # tids with a proper entry (process list, clone)

    def add(self, tid, pid, flags, cwd=None):
        self.known.add(tid)
        self.pid[tid] = pid
        self.flags[tid] = flags
        if cwd is not None:
            self.cwd[tid] = cwd

    def owner(self, tid):
        """The tid whose fd table this thread uses."""
        if tid in self.known and self.flags.get(tid, 0) & PPM_CL_CLONE_FILES:
            return self.pid[tid]
        return tid

    def main(self, tid):
        """The thread holding the cwd (its process's main thread); None if that is gone.
        A thread sysdig never heard of is its own main thread, with an empty cwd."""
        pid = self.pid.get(tid, tid)
        return pid if pid in self.known or pid == tid else None

    def get_cwd(self, tid):
        main = self.main(tid)
        return "./" if main is None else self.cwd.get(main, "")

    def set_cwd(self, tid, path, nul=True):
        """chdir (the path parameter counts its NUL) or fchdir (an fd name: no NUL)."""
        main = self.main(tid)
        if main is None:
            return
        self.cwd[main] = paths.change_dir(self.cwd.get(main, ""), path, nul)


def _with_slash(path):
    if not path:
        return "/"
    return path if path.endswith("/") else path + "/"


def _listed_cwd(path):
    """A cwd from the process list, as sinsp keeps it."""
    return paths.TOO_LONG + "/" if paths.too_long("", path, nul=False) else _with_slash(path)


# --------------------------------------------------------------------------------------------
# The fd state machine

class _Fd:
    """One fd table entry (mutable, like sinsp_fdinfo_t); every change is recorded as a new
    version from the row it happens at."""
    __slots__ = (
        "connected",
        "dev",
        "dip",
        "dport",
        "ino",
        "l4proto",
        "name",
        "openflags",
        "role",
        "sip",
        "sport",
        "type",
        "version",
    )

    def __init__(self, type_, name="", sip=None, sport=0, dip=None, dport=0, l4proto=0,
                 role=ROLE_NONE, ino=0, openflags=0, dev=0, connected=False):
        self.type, self.name = type_, name
        self.sip, self.sport, self.dip, self.dport = sip, sport, dip, dport
        self.l4proto, self.role, self.ino, self.openflags = l4proto, role, ino, openflags
        # fd.dev (the device of a file) and fd.connected (FLAGS_SOCKET_CONNECTED)
        self.dev, self.connected = dev, connected
        self.version = -1

    def copy(self):
        return _Fd(self.type, self.name, self.sip, self.sport, self.dip, self.dport,
                   self.l4proto, self.role, self.ino, self.openflags, self.dev, self.connected)


class _Machine:
    """Replays fd-changing events; records fd versions and lastevent_fd overrides."""

    def __init__(self, n_rows):
        self.n_rows = n_rows
        self.versions = {k: [] for k in ("owner", "fd", "start", "end", "type", "name", "sip",
                                         "sport", "dip", "dport", "l4proto", "role", "dev",
                                         "connected")}
        self.tables = {}       # owner -> {fd: _Fd}
        self.threads = _Threads()
        self.pending = []      # (owner, fd, row) closes waiting for the next event
        self.set_fd = {}       # row -> lastevent_fd set by this exit (add_fd, accept)
        self.births = []       # (tid, row): threads created (lastevent_fd starts at 0)
        self.owner_changes = []  # (tid, row, owner)
        self.section_end = n_rows

    # -- versions
    def _record(self, owner, fd, entry, row):
        v = self.versions
        if entry.version >= 0 and v["start"][entry.version] == row:
            k = entry.version        # changed again within the same event: overwrite
        else:
            if entry.version >= 0:
                v["end"][entry.version] = row
            k = len(v["owner"])
            for key in v:
                v[key].append(None)
            v["owner"][k], v["fd"][k], v["start"][k] = owner, fd, row
            v["end"][k] = self.section_end
        v["type"][k], v["name"][k] = entry.type, entry.name
        v["sip"][k], v["sport"][k], v["dip"][k], v["dport"][k] = (
            entry.sip, entry.sport, entry.dip, entry.dport)
        v["l4proto"][k], v["role"][k] = entry.l4proto, entry.role
        v["dev"][k], v["connected"][k] = entry.dev, entry.connected
        entry.version = k

    def _close_version(self, entry, row):
        if entry.version >= 0:
            self.versions["end"][entry.version] = row
            entry.version = -1

    def add_fd(self, owner, fd, entry, row):
        table = self.tables.setdefault(owner, {})
        old = table.get(fd)
        if old is not None and old is not entry:
            self._close_version(old, row)
        entry.version = -1
        table[fd] = entry
        self._record(owner, fd, entry, row)
        return entry

    def changed(self, owner, fd, entry, row):
        self._record(owner, fd, entry, row)

    def get_fd(self, owner, fd):
        if fd is None or fd < 0:
            return None
        return self.tables.get(owner, {}).get(fd)

    def flush(self, row):
        """sysdig removes the fds closed by the previous event before parsing the next one."""
        for owner, fd, at in self.pending:
            table = self.tables.get(owner, {})
            entry = table.get(fd)
            if entry is not None:
                self._close_version(entry, at + 1)
                del table[fd]
        self.pending = []

    def end_section(self, row):
        self.flush(row)
        for table in self.tables.values():
            for entry in table.values():
                self._close_version(entry, row)
        self.tables = {}
        self.threads = _Threads()


def _fd_from_list(row, leftover_dev=0):
    """A fd-list block entry as sinsp loads it (threadinfo.cpp add_fd_from_scap).
    leftover_dev: the device an entry of a type that stores none shows (fd.dev)."""
    t = row["type"]
    name = row["name"] or ""
    l4 = row["l4proto"] or 0
    if t == IPV4_SOCK or t == IPV6_SOCK:
        # a connected socket from /proc counts as connected (fd.connected)
        entry = _Fd(t, sip=row["sip"], sport=row["sport"], dip=row["dip"], dport=row["dport"],
                    l4proto=l4, connected=True, dev=leftover_dev)
        entry.name = tuple_text(t, entry.sip, entry.sport, entry.dip, entry.dport)
        return entry
    if t in SERVER_SOCKETS:
        entry = _Fd(t, sip=row["sip"], sport=row["sport"], l4proto=l4, role=ROLE_SERVER,
                    dev=leftover_dev)
        entry.name = f"{entry.sip}:{entry.sport}"
        return entry
    if t == UNIX_SOCK:
        # sysdig 0.29.3 treats /proc unix sockets as having a role (fd.cport reads 0)
        return _Fd(t, name=name, role=ROLE_CLIENT, dev=leftover_dev)
    dev = row.get("dev")
    if t == FILE:
        t = FILE_V2
    return _Fd(t, name=name, ino=row["ino"] or 0, openflags=row.get("open_flags") or 0,
               dev=leftover_dev if dev is None else dev)


def _sock_tuple(raw):
    """(family, sip, sport, dip, dport, extra) of a raw SOCKTUPLE param; None if empty."""
    if raw is None or len(raw) == 0:
        return None
    raw = bytes(raw)
    family = raw[0]
    if family == PPM_AF_INET and len(raw) >= 13:
        sip, sport, dip, dport = raw[1:5], *struct.unpack_from("<H", raw, 5), raw[7:11], \
            *struct.unpack_from("<H", raw, 11)
        return family, sip, sport, dip, dport
    if family == PPM_AF_INET6 and len(raw) >= 37:
        sip, dip = raw[1:17], raw[19:35]
        sport, = struct.unpack_from("<H", raw, 17)
        dport, = struct.unpack_from("<H", raw, 35)
        return family, sip, sport, dip, dport
    if family == PPM_AF_UNIX and len(raw) >= 17:
        src, dst = struct.unpack_from("<QQ", raw, 1)
        return family, src, dst, raw[17:]
    return (family,)


def _param_text(ptype, raw):
    """get_param_as_str's value text of a SOCKADDR/SOCKTUPLE param (no fd resolution)."""
    codec = codec_for(ptype)
    value = codec.decode(bytes(raw)) if raw is not None and len(raw) else None
    return codec.render(value, None)[0]


# --------------------------------------------------------------------------------------------

class FdState:
    """fd state of one capture: the versions table and, per event, its fd and table owner."""

    def __init__(self, capture, reference=False):
        self.capture = capture
        # reference=True replays every fd-changing event one by one (the oracle the bulk
        # application of the common ones is tested against)
        self.reference = reference
        h = capture.headers
        self.n = n = len(h)
        self.types = np.asarray(h.type).astype(np.int64)
        self.tids = np.asarray(h.tid).astype(np.int64)
        flags, kind, nullchar = _event_facts()
        self.flags = flags[self.types]
        self.kinds = kind[self.types]
        self.nullchar = nullchar[self.types]
        self.section = np.zeros(n, dtype=np.int64)
        starts = [s.first_event for s in capture.sections]
        for k, s in enumerate(starts):
            self.section[s:] = k
        self.enter = enter_rows(self.types, self.tids)
        self.stored = self._stored_enters()
        self.ipv4_interfaces = _ipv4_interfaces(capture)
        self._version_texts = None
        self._sorted_versions = None
        self._build()

    def _stored_enters(self):
        """Per row (-1 elsewhere): for the exits whose parsers read their enter's parameters,
        the enter whose copy sysdig still holds (pairing.stored_enter_rows_at)."""
        out = np.full(self.n, -1, dtype=np.int64)
        rows = np.flatnonzero(np.isin(self.kinds, _READS_ENTER))
        if len(rows):
            out[rows] = stored_enter_rows_at(self.types, self.tids, rows, stored=self._copied)
        return out

    def _copied(self, rows):
        """Which of these enter rows sysdig copies: fcntl's only for F_DUPFD commands."""
        rows = np.asarray(rows, dtype=np.int64)
        fcntl = self.types[rows] == _fcntl_enter()
        copied = ~fcntl
        if fcntl.any():
            cmds = self.capture.param_lists(["cmd"], rows[fcntl].tolist())["cmd"]
            copied[fcntl] = [c in (PPM_FCNTL_F_DUPFD, PPM_FCNTL_F_DUPFD_CLOEXEC) for c in cmds]
        return copied

    # -- lastevent_fd from enter events (vectorized), then the replay loop
    def _build(self):
        cap, n = self.capture, self.n
        types, tids = self.types, self.tids
        is_enter = (types % 2 == 0) & ~sysdig0293.skips_reset()[types]
        uses_fd = (self.flags & EF.USES_FD) != 0
        fd0 = np.full(n, -1, dtype=np.int64)
        p0 = self.param0 = _int_param(cap, 0)
        fd_is_p0 = is_enter & uses_fd & _param_is_fd(types, 0)
        fd0[fd_is_p0] = p0[fd_is_p0]
        self._enter_value = fd0            # the value an enter event sets
        self._is_enter = is_enter
        # row of each thread's last enter at or before each row (-1: none)
        last_enter = _carry_rows(tids, self.section, is_enter)
        self._last_enter = last_enter

        m = _Machine(n)
        self.machine = m
        self._overrides = {}    # tid -> (row, fd) set by the thread's last fd-creating exit
        self._inverted = set()  # children created by their own clone exit (child ran first)
        self.null_path = {}     # row of an open-like exit -> the name shown if it failed
        self.info_fd = {}       # row -> fd whose entry the event shows (not lastevent_fd)
        self.fchdir_names = {}  # row of a successful fchdir exit -> the name of its fd
        context = getattr(cap, "context", 0)   # a chunk's context events: not replayed
        rows = np.flatnonzero(self.kinds > 0)
        rows = rows[rows >= context]
        common = None
        if not self.reference:
            from scaptool.query.fds_bulk import CommonEvents
            common = CommonEvents(self, rows)
            rows = common.replay
            common.start(m)
        self.replayed = len(rows)
        params = _Params(cap, rows, (self.enter, self.stored))
        sections = cap.sections
        bounds = [s.first_event for s in sections] + [n]
        self._carried_sets = ([], [], [])   # (tid, row, value) of carried lastevent_fd
        for k in range(len(sections)):
            lo, hi = bounds[k], bounds[k + 1]
            m.section_end = hi
            if getattr(sections[k], "continued", False):
                self._seed_carried(m, cap.carry_in.parts["fds"], cap)
            else:
                self._seed(m, k, lo, cap.processes, cap.fds)
            sel = rows[(rows >= lo) & (rows < hi)]
            done = max(lo, context)
            for r in sel.tolist():
                if common is not None and common.must_apply_before(m, r, params):
                    common.apply(m, done, r)   # the common events since the last batch
                    common.applied(r)
                    done = r
                m.flush(r)
                self._apply(m, r, params)
            if common is not None:
                common.apply(m, done, hi)
                common.applied(hi)
            if getattr(cap, "continues", False) and k == len(sections) - 1:
                m.flush(hi)
                self._carried_machine = m
            else:
                m.end_section(hi)
        self._finish(m, common)
        if getattr(cap, "continues", False):
            cap.carry_out["fds"] = self._carry(m)

    def _seed_carried(self, m, carried, cap):
        """A chunk that continues a section starts from the tables the previous one left:
        its threads, every table's entries (recorded anew from the chunk's first row), and
        each thread's lastevent_fd (set before the chunk's first row; an exit's setting
        after the thread's last enter, at that exit's context row)."""
        th = m.threads
        th.pid, th.flags = dict(carried["pid"]), dict(carried["flags"])
        th.cwd, th.known = dict(carried["cwd"]), set(carried["known"])
        for tid in th.known:
            m.owner_changes.append((tid, 0, th.owner(tid)))
        for owner, table in carried["tables"].items():
            for fd, entry in table.items():
                m.add_fd(owner, fd, entry.copy(), 0)
        self._inverted = set(carried["inverted"])
        tids, rows, values = self._carried_sets
        for tid, value in carried["lastevent"].items():
            tids.append(tid)
            rows.append(-1)
            values.append(value)
        for tid, (row, value) in carried["overrides"].items():
            local = cap.local_row(row)
            if 0 <= local < cap.context:    # set by an exit of the thread's context
                self._overrides[tid] = (local, value)
                tids.append(tid)
                rows.append(local)
                values.append(value)

    def _carry(self, m):
        """What the next chunk of the section starts from (rows made global)."""
        cap = self.capture
        th = m.threads
        lastevent = dict(cap.carry_in.parts["fds"]["lastevent"]) if cap.carry_in is not None \
            and "fds" in cap.carry_in.parts else {}
        if self.n:
            order = np.lexsort((np.arange(self.n), self.tids))
            last = order[np.r_[self.tids[order][1:] != self.tids[order][:-1], True]]
            lastevent.update(zip(self.tids[last].tolist(), self.lastevent_fd[last].tolist()))
        return {"pid": dict(th.pid), "flags": dict(th.flags), "cwd": dict(th.cwd),
                "known": set(th.known), "inverted": set(self._inverted),
                "tables": {owner: {fd: entry.copy() for fd, entry in table.items()}
                           for owner, table in m.tables.items()},
                "lastevent": lastevent,
                "overrides": {tid: (cap.global_row(row), value)
                              for tid, (row, value) in self._overrides.items()}}

    def _seed(self, m, section, row, procs, fdl):
        th = m.threads
        if procs is not None and len(procs):
            for p in procs.filter(pl.col("section") == section).iter_rows(named=True):
                th.add(p["tid"], p["pid"], p["flags"] or 0,
                       _listed_cwd(p["cwd"] or "") if p["tid"] == p["pid"] else None)
                m.owner_changes.append((p["tid"], row, th.owner(p["tid"])))
        if fdl is not None and len(fdl):
            rows = list(fdl.filter(pl.col("section") == section).iter_rows(named=True))
            # sinsp's fix_sockets_coming_from_proc: a socket from /proc whose local port is a
            # listening port of any process is the server end (shown client->server), any
            # other is a client
            server_ports = {f["sport"] for f in rows if f["type"] in SERVER_SOCKETS}
            # sysdig reads the list into one reused record: an entry that stores no device
            # (anything but a file) keeps the one of the last file read before it (fd.dev)
            leftover_dev = 0
            for f in rows:
                owner = th.owner(f["tid"])
                entry = _fd_from_list(f, leftover_dev)
                if f.get("dev") is not None:
                    leftover_dev = f["dev"]
                if entry.type == IPV4_SOCK:
                    if entry.sport in server_ports:
                        _swap(entry)
                        entry.role = ROLE_SERVER
                        entry.name = tuple_text(entry.type, entry.sip, entry.sport, entry.dip,
                                                entry.dport)
                    else:
                        entry.role = ROLE_CLIENT
                m.add_fd(owner, f["fd"], entry, row)

    def _lastevent_fd(self, m, r):
        """The thread's lastevent_fd when the exit at row r is parsed."""
        tid = self.tids[r]
        le = self._last_enter[r]
        best, best_row = (self._enter_value[le], le) if le >= 0 else (0, -1)
        over = self._overrides.get(tid)
        if over is not None and over[0] > best_row:
            best = over[1]
        return int(best)

    def _set_lastevent(self, tid, r, fd):
        self._overrides[tid] = (r, fd)
        self.machine.set_fd[r] = fd

    def _apply(self, m, r, P):
        kind = int(self.kinds[r])
        tid = int(self.tids[r])
        th = m.threads
        owner = th.owner(tid)
        paired = self.enter[r] >= 0
        name = eventtable.libs()[int(self.types[r])].name
        if kind == K_OPEN_X:
            fd = P.int("fd", r)
            etype = int(self.types[r])
            if etype == 103:   # old openat: everything is in the enter event
                e = self.stored[r]
                if e < 0:
                    return
                path, flags, dirfd = P.text("name", e), P.int("flags", e), P.int("dirfd", e)
            else:
                path, flags = P.text("name", r), P.int("flags", r) or 0
                dirfd = P.int("dirfd", r) if name in ("openat", "openat2") else AT_FDCWD
                e = self.stored[r]
                if e >= 0:
                    epath = P.text("name", e)
                    if epath and epath != "(NULL)":
                        path = epath
                        flags = P.int("flags", e) if name != "creat" else 0
                        if name in ("openat", "openat2"):
                            dirfd = P.int("dirfd", e)
                if name == "creat":
                    flags = 0
            full = self._resolve_path(m, tid, owner, path, dirfd,
                                      at=name in ("openat", "openat2") or etype == 103)
            # the name a failed call shows (extract_fdname_from_creator): open and creat
            # render their FSPATH arg (resolved only when relative), openat* the full path
            self.null_path[r] = path if name in ("open", "creat") and path.startswith("/") \
                else full
            if (fd is None or fd < 0) and not path.startswith("/") and dirfd != AT_FDCWD \
                    and m.get_fd(owner, dirfd) is not None:
                # parse_dirfd leaves the dirfd's entry as the event's fd: a failed openat
                # relative to a directory fd shows that fd's name, type and tuple
                self.info_fd[r] = dirfd
            if fd is not None and fd >= 0:
                entry = _Fd(DIRECTORY if (flags or 0) & PPM_O_DIRECTORY else FILE_V2,
                            name=full, openflags=flags or 0,
                            dev=(P.int("dev", r) or 0) & 0xFFFFFFFF)
                m.add_fd(owner, fd, entry, r)
                self._set_lastevent(tid, r, fd)
        elif kind == K_SOCKET_X:
            fd = P.int("fd", r)
            e = self.stored[r]
            if fd is None or fd < 0 or e < 0:
                return
            entry = _socket_entry(P.int("domain", e), P.int("type", e), P.int("proto", e))
            if entry is not None:
                m.add_fd(owner, fd, entry, r)
                self._set_lastevent(tid, r, fd)
        elif kind == K_SOCKETPAIR_X:
            res = P.int("res", r)
            if res is None or res < 0:
                return
            fd1, fd2 = P.int("fd1", r), P.int("fd2", r)
            m.add_fd(owner, fd1, _Fd(UNIX_SOCK), r)
            m.add_fd(owner, fd2, _Fd(UNIX_SOCK), r)
            self._set_lastevent(tid, r, fd2)
        elif kind == K_PIPE_X:
            res = P.int("res", r)
            if res is None or res < 0:
                return
            fd1, fd2, ino = P.int("fd1", r), P.int("fd2", r), P.int("ino", r) or 0
            m.add_fd(owner, fd1, _Fd(FIFO, ino=ino), r)
            m.add_fd(owner, fd2, _Fd(FIFO, ino=ino), r)
            self._set_lastevent(tid, r, fd2)
        elif kind == K_SINGLE_X:
            fd = P.int0(r)
            if fd is None or fd < 0:
                return
            m.add_fd(owner, fd, _Fd(_SINGLE_TYPE[name]), r)
            self._set_lastevent(tid, r, fd)
        elif kind == K_ACCEPT_X:
            fd = P.int("fd", r)
            if fd is None or fd < 0:
                return
            self._set_lastevent(tid, r, fd)
            tup = _sock_tuple(P.raw("tuple", r))
            if tup is None:
                return
            entry = _accepted(tup, P.raw("tuple", r))
            if entry is not None:
                m.add_fd(owner, fd, entry, r)
        elif kind == K_CLOSE_X:
            res = P.int("res", r)
            if res is None or res < 0 or not paired:
                return
            fd = self._lastevent_fd(m, r)
            if m.get_fd(owner, fd) is not None:
                m.pending.append((owner, fd, r))
        elif kind in (K_DUP_X, K_FCNTL_X):
            res = P.int("res", r)
            if not paired or res is None or res < 0:
                return
            if kind == K_FCNTL_X:
                cmd = P.int("cmd", self.stored[r])
                if cmd not in (PPM_FCNTL_F_DUPFD, PPM_FCNTL_F_DUPFD_CLOEXEC):
                    return
            old = m.get_fd(owner, self._lastevent_fd(m, r))
            if old is None:
                return
            m.add_fd(owner, res, old.copy(), r)
            self._set_lastevent(tid, r, res)
        elif kind == K_BIND_X:
            entry = m.get_fd(owner, self._lastevent_fd(m, r)) if paired else None
            res = P.int("res", r)
            if entry is None or res is None or res < 0:
                return
            raw = P.raw("addr", r)
            if raw is None or len(raw) == 0:
                return
            _bind(entry, bytes(raw))
            entry.name = _param_text(PT.SOCKADDR, raw)
            m.changed(owner, self._lastevent_fd(m, r), entry, r)
        elif kind == K_CONNECT_X:
            fd = self._lastevent_fd(m, r)
            entry = m.get_fd(owner, fd) if paired else None
            res = P.int("res", r)
            if entry is None or res is None or (res < 0 and res != -EINPROGRESS):
                return
            raw = P.raw("tuple", r)
            if raw is None or len(raw) == 0:
                return
            _connected(entry, bytes(raw))
            entry.connected = True  # also while in progress (EINPROGRESS)
            m.changed(owner, fd, entry, r)
        elif kind == K_CONNECT_E:
            # parse_connect_enter: a connect enter that carries the address (drivers since
            # 2022) names a unix socket after it at once, before the exit; the IPv4/IPv6
            # ends are the exit's to set (a tuple)
            fd = P.int("fd", r)
            entry = m.get_fd(owner, fd) if fd is not None else None
            raw = P.raw("addr", r)
            if entry is None or raw is None or len(raw) == 0:
                return
            raw = bytes(raw)
            if raw[0] in (PPM_AF_INET, PPM_AF_INET6):
                return
            entry.name = _param_text(PT.SOCKADDR, raw)
            m.changed(owner, fd, entry, r)
        elif kind in (K_SENDTO_X, K_RECVFROM_X):
            fd = self._lastevent_fd(m, r)
            entry = m.get_fd(owner, fd) if paired else None
            res = P.int("res", r)
            if entry is None or res is None or res < 0:
                return
            if entry.name and entry.l4proto == L4_TCP and entry.type in CLIENT_SOCKETS:
                return
            if kind == K_SENDTO_X:
                raw = P.raw("tuple", self.stored[r])
            else:
                raw = P.raw("tuple", r)
            if raw is None or len(raw) == 0:
                return
            if _update_fd(entry, bytes(raw), incoming=kind == K_RECVFROM_X,
                          interfaces=self.ipv4_interfaces):
                m.changed(owner, fd, entry, r)
        elif kind == K_CLONE_X:
            self._clone(m, r, P)
        elif kind == K_EXECVE_X:
            res = P.int("res", r)
            if res is None or res < 0:
                return
            # execve drops the thread's clone flags: from now on it uses its own table
            if tid in th.known:
                th.flags[tid] = 0
                th.pid[tid] = P.int("pid", r)
                if th.owner(tid) != owner:
                    m.owner_changes.append((tid, r, th.owner(tid)))
        elif kind == K_CHDIR_X:
            res = P.int("res", r)
            if res is not None and res >= 0:
                th.set_cwd(tid, P.text("path", r))
        elif kind == K_FCHDIR_X:
            res = P.int("res", r)
            entry = m.get_fd(owner, self._lastevent_fd(m, r)) if paired else None
            if res is not None and res >= 0 and entry is not None:
                th.set_cwd(tid, entry.name, nul=False)
                self.fchdir_names[r] = entry.name
        elif kind == K_GETSOCKOPT_X:
            # parse_getsockopt_exit: the exit names its fd (param 1); it becomes the event's
            fd = P.int("fd", r)
            if fd is not None:
                self._set_lastevent(tid, r, fd)

    def _resolve_path(self, m, tid, owner, path, dirfd, at=True):
        """parse_dirfd + concatenate_paths. openat* join an absolute path to "."; open and
        creat join every path to the cwd (which then counts towards the length limit)."""
        if path.startswith("/") and at:
            return paths.open_path(".", path)
        if dirfd == AT_FDCWD or dirfd is None:
            base = m.threads.get_cwd(tid)
        else:
            entry = m.get_fd(owner, dirfd)
            base = "<UNKNOWN>" if entry is None else entry.name + "/"
        return paths.open_path(base, path)

    def _clone(self, m, r, P):
        """parse_clone_exit: a new thread or process. A process gets a copy of its parent's
        fd table (sysdig copies it whatever CLONE_FILES says) and cwd; a thread shares them.
        The first of the two clone exits (parent's, or child's when the child runs first)
        creates the child; the other one changes nothing."""
        th = m.threads
        tid = int(self.tids[r])
        res = P.int("res", r)
        if res is None or res < 0:
            return
        flags = P.int("flags", r) or 0
        thread = bool(flags & PPM_CL_CLONE_THREAD)
        if res == 0:
            if tid in th.known:
                return
            child, parent = tid, P.int("pid" if thread else "ptid", r)
            self._inverted.add(child)
        else:
            child, parent = res, tid
            if child in self._inverted:
                self._inverted.discard(child)
                return
        pid = P.int("pid", r) if thread else child
        if not thread:
            # a stale table under the same number (tid reuse) goes away
            for entry in (m.tables.pop(child, None) or {}).values():
                m._close_version(entry, r)
        th.add(child, pid, flags)
        m.births.append((child, r))
        if not thread:
            th.cwd[child] = th.get_cwd(parent)
            for fd, entry in m.tables.get(th.owner(parent), {}).items():
                m.add_fd(child, fd, entry.copy(), r)
        m.owner_changes.append((child, r, th.owner(child)))

    # -- per-event columns
    def _finish(self, m, common=None):
        v = m.versions
        # (strict=False: a type, protocol or role byte out of range, which only damage
        # makes, is null)
        self.versions = pl.DataFrame({
            "owner": pl.Series(v["owner"], dtype=pl.Int64, strict=False),
            "fd": pl.Series(v["fd"], dtype=pl.Int64, strict=False),
            "start": pl.Series(v["start"], dtype=pl.Int64, strict=False),
            "end": pl.Series(v["end"], dtype=pl.Int64, strict=False),
            "type": pl.Series(v["type"], dtype=pl.Int8, strict=False),
            "name": pl.Series(v["name"], dtype=pl.String, strict=False),
            "sip": pl.Series(v["sip"], dtype=pl.String, strict=False),
            "sport": pl.Series(v["sport"], dtype=pl.Int64, strict=False),
            "dip": pl.Series(v["dip"], dtype=pl.String, strict=False),
            "dport": pl.Series(v["dport"], dtype=pl.Int64, strict=False),
            "l4proto": pl.Series(v["l4proto"], dtype=pl.Int8, strict=False),
            "role": pl.Series(v["role"], dtype=pl.Int8, strict=False),
            "dev": pl.Series(v["dev"], dtype=pl.UInt32, strict=False),
            "connected": pl.Series(v["connected"], dtype=pl.Boolean, strict=False),
        })
        if common is not None:
            from scaptool.query.fds_bulk import closed_versions
            bulk = closed_versions(common)
            if bulk is not None:
                # versions the batches closed, then those recorded one by one
                self.versions = pl.concat([bulk, self.versions])
        self.versions = self.versions.filter(pl.col("end") > pl.col("start"))
        # lastevent_fd: forward fill per thread of enter values, exit sets and thread births
        set_rows = np.flatnonzero(self._is_enter)
        set_vals = self._enter_value[set_rows]
        ex_rows = np.fromiter(m.set_fd.keys(), dtype=np.int64, count=len(m.set_fd))
        ex_vals = np.fromiter(m.set_fd.values(), dtype=np.int64, count=len(m.set_fd))
        births = np.array(m.births, dtype=np.int64).reshape(-1, 2)
        carried = [np.asarray(c, dtype=np.int64) for c in self._carried_sets]
        # threads sysdig has not seen start with lastevent_fd 0 (and after a clone)
        sets = self._per_thread(
            np.concatenate([self.tids[set_rows], self.tids[ex_rows], births[:, 0], carried[0]]),
            np.concatenate([set_rows, ex_rows, births[:, 1], carried[1]]),
            np.concatenate([set_vals, ex_vals, np.zeros(len(births), np.int64), carried[2]]))
        self.lastevent_fd = np.where(sets == _MISSING, 0, sets)
        # table owner per event: its own tid where sysdig has no thread entry
        oc = np.array(m.owner_changes, dtype=np.int64).reshape(-1, 3)
        owners = self._per_thread(oc[:, 0], oc[:, 1], oc[:, 2])
        self.owner = np.where(owners == _MISSING, self.tids, owners)

    def _per_thread(self, tids, rows, values):
        """As-of join: per event, the last value set for its thread (same section) at or
        before its row; _MISSING where none."""
        n = self.n
        sets = pl.DataFrame({"tid": np.asarray(tids, dtype=np.int64),
                             "row": np.asarray(rows, dtype=np.int64),
                             "value": np.asarray(values, dtype=np.int64)}).sort("row")
        sets = sets.with_columns(pl.Series(
            "section", self.section[np.clip(sets["row"].to_numpy(), 0, max(n - 1, 0))]
            if n else np.zeros(len(sets), dtype=np.int64)))
        events = pl.DataFrame({"row": np.arange(n, dtype=np.int64), "tid": self.tids,
                               "section": self.section})
        joined = events.join_asof(sets, on="row", by=["tid", "section"], strategy="backward",
                                  check_sortedness=False)
        return joined["value"].fill_null(_MISSING).to_numpy().astype(np.int64)

    def lookup(self, rows, fds):
        """Per (row, fd) query: the index into self.versions of the table entry visible at
        that row in the row's thread table, or -1."""
        rows = np.asarray(rows, dtype=np.int64)
        fds = np.asarray(fds, dtype=np.int64)
        if not len(rows) or not len(self.versions):
            return np.full(len(rows), -1, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        q = pl.DataFrame({"row": rows[order], "owner": self.owner[rows[order]],
                          "fd": fds[order]})
        j = q.join_asof(self._versions_by_start(), on="row", by=["owner", "fd"],
                        strategy="backward", check_sortedness=False)
        vid = j.select(pl.when(pl.col("row") < pl.col("end")).then(pl.col("vid"))
                       .fill_null(-1)).to_series().to_numpy()
        out = np.empty(len(rows), dtype=np.int64)
        out[order] = vid
        return out

    def _versions_by_start(self):
        """The version table sorted by start row, with each version's index: made once, for
        every lookup (the table does not change once built)."""
        if self._sorted_versions is None:
            self._sorted_versions = self.versions.with_row_index("vid").select(
                pl.col("vid").cast(pl.Int64), pl.col("owner"), pl.col("fd"),
                pl.col("start").alias("row"), pl.col("end")).sort("row")
        return self._sorted_versions

    def tables_at(self, row, tids):
        """The fd tables as they are after event `row`: (a frame of each of `tids` and the
        owner of the table it uses, the fd versions live at that row with their owner). A
        thread cloned with CLONE_FILES uses its process's table."""
        live = self.versions.filter((pl.col("start") <= row) & (pl.col("end") > row))
        changes = np.array(self.machine.owner_changes, dtype=np.int64).reshape(-1, 3)
        changes = changes[changes[:, 1] <= row]
        owner_of = {}
        for tid, _, owner in changes[np.argsort(changes[:, 1], kind="stable")].tolist():
            owner_of[tid] = owner
        owners = pl.DataFrame({"tid": list(tids), "owner": [owner_of.get(t, t) for t in tids]},
                              schema={"tid": pl.Int64, "owner": pl.Int64})
        return owners, live

    def resolved_text(self, rows, fds):
        """evt.info's resolution of fd values: ``<typechar l4char>name`` of fd V as the
        thread's table has it at row R (after R was parsed); null where the table lacks it."""
        vid = self.lookup(rows, fds)
        if self._version_texts is None:
            self._version_texts = _version_texts(self.versions)
        return _render_versions(self._version_texts, vid)


def _render_versions(texts, vid):
    """``<typechar l4char>name`` of versions `vid` (null where -1), gathered from every
    version's text (_version_texts: made once, by column expressions)."""
    vid = np.asarray(vid, dtype=np.int64)
    if not len(texts):
        return pl.Series("fd.text", [None] * len(vid), dtype=pl.String)
    got = texts.gather(np.maximum(vid, 0))
    return pl.select(pl.when(pl.Series(vid >= 0)).then(got)).to_series().alias("fd.text")


def _version_texts(versions):
    l4 = pl.Series("l4", effective_l4(versions), dtype=pl.Int64)
    texts = pl.DataFrame({"type": versions["type"], "l4": l4, "name": versions["name"]}).select(
        pl.concat_str(
            pl.lit("<"),
            pl.col("type").replace_strict(list(TYPECHAR), list(TYPECHAR.values()),
                                          default="?", return_dtype=pl.String),
            pl.col("l4").replace_strict(list(L4CHAR), list(L4CHAR.values()), default="",
                                        return_dtype=pl.String),
            pl.lit(">"),
            sanitized(pl.col("name").fill_null("")))).to_series()
    return texts


def sanitized(expr):
    """sanitize_name as an expression: ASCII control characters go, everything else stays."""
    return expr.str.replace_all(r"[\x00-\x1f\x7f]", "")


def effective_l4(versions):
    """sinsp_fdinfo_t::get_l4proto: a connected-socket type without a role yet (a fresh
    socket()) reports no protocol unless it is raw; non-sockets have none."""
    # (a damaged fd list can leave a value missing: none is 0, unknown)
    t = versions["type"].fill_null(0).to_numpy().astype(np.int64)
    l4 = versions["l4proto"].fill_null(0).to_numpy().astype(np.int64)
    role = versions["role"].fill_null(0).to_numpy().astype(np.int64)
    sock = np.isin(t, CLIENT_SOCKETS)
    out = np.where(np.isin(t, SOCKETS), l4, 1)
    return np.where(sock & (role == ROLE_NONE) & (l4 != L4_RAW), 1, out)


# --------------------------------------------------------------------------------------------
# Socket helpers (parsers.cpp add_socket, parse_accept_exit, fill_client_socket_info ...)

def _socket_entry(domain, stype, proto):
    domain, stype, proto = domain or 0, stype or 0, proto or 0
    if domain == PPM_AF_UNIX:
        return _Fd(UNIX_SOCK)
    if domain in (PPM_AF_INET, PPM_AF_INET6):
        l4 = L4_UNKNOWN
        if proto == IPPROTO_TCP:
            l4 = L4_RAW if stype == SOCK_RAW else L4_TCP
        elif proto == IPPROTO_UDP:
            l4 = L4_RAW if stype == SOCK_RAW else L4_UDP
        elif proto == IPPROTO_IP:
            if stype & 0xff == SOCK_STREAM:
                l4 = L4_TCP
            elif stype & 0xff == SOCK_DGRAM:
                l4 = L4_UDP
        elif proto == IPPROTO_ICMP:
            l4 = L4_RAW if stype == SOCK_RAW else L4_ICMP
        elif proto == IPPROTO_RAW:
            l4 = L4_RAW
        return _Fd(IPV4_SOCK if domain == PPM_AF_INET else IPV6_SOCK, l4proto=l4)
    if domain == PPM_AF_NETLINK:
        return _Fd(NETLINK)
    return None


def _tuple_ips(tup):
    """(type, sip, sport, dip, dport) with IPv4-mapped IPv6 tuples turned into IPv4."""
    family, sip, sport, dip, dport = tup
    if family == PPM_AF_INET6:
        if _mapped_v4(sip) and _mapped_v4(dip):
            return IPV4_SOCK, _ip_text(sip[12:]), sport, _ip_text(dip[12:]), dport
        return IPV6_SOCK, _ip_text(sip), sport, _ip_text(dip), dport
    return IPV4_SOCK, _ip_text(sip), sport, _ip_text(dip), dport


def _accepted(tup, raw):
    family = tup[0]
    if family in (PPM_AF_INET, PPM_AF_INET6) and len(tup) == 5:
        stype, sip, sport, dip, dport = _tuple_ips(tup)
        entry = _Fd(stype, sip=sip, sport=sport, dip=dip, dport=dport, l4proto=L4_TCP,
                    role=ROLE_SERVER, connected=True)
    elif family == PPM_AF_UNIX and len(tup) == 4:
        entry = _Fd(UNIX_SOCK, role=ROLE_SERVER, connected=True)
    else:
        return None
    entry.name = _param_text(PT.SOCKTUPLE, raw)
    return entry


def _set_addresses(entry, stype, sip, sport, dip, dport):
    """update_ipv4_addresses_and_ports: False when the tuple is already there (either way)."""
    if entry.type == stype and ((sip, sport, dip, dport) ==
                                (entry.sip, entry.sport, entry.dip, entry.dport) or
                                (dip, dport, sip, sport) ==
                                (entry.sip, entry.sport, entry.dip, entry.dport)):
        return False
    changed = False
    if entry.sip != sip:
        entry.sip, changed = sip, True
    if entry.sport != sport:
        entry.sport, changed = sport, True
    if entry.dip in (None, "0.0.0.0", "::"):
        entry.dip, changed = dip, True
    if not entry.dport:
        entry.dport, changed = dport, True
    return changed


def _swap(entry):
    entry.sip, entry.dip = entry.dip, entry.sip
    entry.sport, entry.dport = entry.dport, entry.sport


def _connected(entry, raw):
    tup = _sock_tuple(raw)
    if tup is None:
        return
    if tup[0] in (PPM_AF_INET, PPM_AF_INET6) and len(tup) == 5:
        stype, sip, sport, dip, dport = _tuple_ips(tup)
        if entry.type in SERVER_SOCKETS:
            entry.sip = entry.dip = None
            entry.sport = entry.dport = 0
        entry.type = stype
        changed = _set_addresses(entry, stype, sip, sport, dip, dport)
        if changed and entry.role == ROLE_SERVER and entry.l4proto == L4_UDP:
            _swap(entry)
        entry.name = tuple_text(stype, entry.sip, entry.sport, entry.dip, entry.dport)
    else:
        entry.name = _param_text(PT.SOCKTUPLE, raw)
    if entry.role == ROLE_NONE:
        entry.role = ROLE_CLIENT


def _bind(entry, raw):
    family = raw[0]
    if family == PPM_AF_INET and len(raw) >= 7:
        port, = struct.unpack_from("<H", raw, 5)
        if port > 0:
            entry.type = IPV4_SERVSOCK
            entry.sip, entry.sport = _ip_text(raw[1:5]), port
            entry.role = ROLE_SERVER
    elif family == PPM_AF_INET6 and len(raw) >= 19:
        port, = struct.unpack_from("<H", raw, 17)
        if port > 0:
            ip = raw[1:17]
            if _mapped_v4(ip):
                entry.type, entry.sip = IPV4_SERVSOCK, _ip_text(ip[12:])
            else:
                entry.type, entry.sip = IPV6_SERVSOCK, _ip_text(ip)
            entry.sport = port
            entry.role = ROLE_SERVER


def _ipv4_interfaces(capture):
    """[(address, netmask)] of the capture's IPv4 interfaces, as integers, in list order."""
    import ipaddress
    table = capture.interfaces
    out = []
    for row in table.filter(table["type"] == 1).iter_rows(named=True):
        try:
            out.append((int(ipaddress.IPv4Address(row["addr"])),
                        int(ipaddress.IPv4Address(row["netmask"]))))
        except (ValueError, TypeError):
            continue
    return out


_LOOPBACK = 0x7F000001


def _infer_ipv4(interfaces, destination):
    """The local address a packet to `destination` left from, as sysdig guesses it for a
    tuple with a zero end: the interface with that very address, else one on the same
    subnet, else the first that is not loopback; 0 when none."""
    for addr, _ in interfaces:
        if addr == destination:
            return addr
    for addr, mask in interfaces:
        if addr & mask == destination & mask:
            return addr
    for addr, _ in interfaces:
        if addr != _LOOPBACK:
            return addr
    return 0


def _complete_ipv4(entry, interfaces):
    """sysdig patches an IPv4 socket tuple with one zero address from the interface list."""
    import ipaddress
    if entry.type != IPV4_SOCK or not entry.sip or not entry.dip:
        return
    sip, dip = int(ipaddress.IPv4Address(entry.sip)), int(ipaddress.IPv4Address(entry.dip))
    if sip and dip:
        return
    if not sip:
        new = _infer_ipv4(interfaces, dip)
        if new == dip and entry.sport == entry.dport:
            return
        entry.sip = str(ipaddress.IPv4Address(new))
    else:
        new = _infer_ipv4(interfaces, sip)
        if new == sip and entry.sport == entry.dport:
            return
        entry.dip = str(ipaddress.IPv4Address(new))


def _update_fd(entry, raw, incoming, interfaces=()):
    """parse_rw_exit's tuple update of a socket fd from sendto/recvfrom; True if changed."""
    tup = _sock_tuple(raw)
    if tup is None:
        return False
    family = tup[0]
    if family == PPM_AF_UNIX:
        if len(tup) != 4:
            return False
        entry.type = UNIX_SOCK
        entry.name = _text(tup[3])
        return True
    if family not in (PPM_AF_INET, PPM_AF_INET6) or len(tup) != 5:
        return False
    stype, sip, sport, dip, dport = _tuple_ips(tup)
    if entry.type in SERVER_SOCKETS:
        entry.sip = entry.dip = None
        entry.sport = entry.dport = 0
    entry.type = stype
    if not _set_addresses(entry, stype, sip, sport, dip, dport):
        return False
    if entry.l4proto == L4_UNKNOWN:
        entry.l4proto = L4_UDP
    _complete_ipv4(entry, interfaces)
    if entry.role == ROLE_NONE:
        # set_net_role_by_guessing: the socket itself matches both of its own ports, so
        # the guess falls back to the direction (a server reads first)
        entry.role = ROLE_SERVER if incoming else ROLE_CLIENT
    if incoming and entry.role == ROLE_CLIENT or not incoming and entry.role == ROLE_SERVER:
        _swap(entry)
    entry.name = tuple_text(entry.type, entry.sip, entry.sport, entry.dip, entry.dport)
    return True


# --------------------------------------------------------------------------------------------
# Params for the replay loop

class _Params:
    """Named params of the rows the loop visits (and their enter rows), decoded lazily."""

    def __init__(self, capture, rows, enters):
        self.capture = capture
        need = np.unique(np.concatenate([rows] + [e[rows][e[rows] >= 0] for e in enters]))
        self.pos = {int(r): k for k, r in enumerate(need.tolist())}
        self.rows = need
        self._cache = {}
        self._p0 = None

    def _col(self, name):
        """Raw bytes of the param called `name` at each needed row (None where absent):
        decoded here by position, as capture.param() would merge same-named params of
        different types into one dtype."""
        col = self._cache.get(name)
        if col is None:
            offsets, lengths, present = param_slices_at(self.capture, name, self.rows)
            buf = self.capture.buffer
            col = [bytes(buf[o:o + n]) if ok else None for o, n, ok in
                   zip(offsets.tolist(), lengths.tolist(), present.tolist())]
            self._cache[name] = col
        return col

    def int(self, name, row):
        if row is None or row < 0:
            return None
        v = self._col(name)[self.pos[int(row)]]
        if v is None or len(v) not in (1, 2, 4, 8):
            return None
        return int.from_bytes(v, "little", signed=True)

    def int0(self, row):
        if self._p0 is None:
            self._p0 = int_param_at(self.capture, 0, self.rows).tolist()
        return self._p0[self.pos[int(row)]]

    def raw(self, name, row):
        if row is None or row < 0:
            return None
        return self._col(name)[self.pos[int(row)]]

    def text(self, name, row):
        return _text(self.raw(name, row))


def param_slices_at(capture, name, rows):
    """(offsets, lengths, present) of the param called `name` at `rows` only (the capture's
    param_slices works out every event's, too slow for a few thousand rows)."""
    from scaptool.scap.capture import _param_layout
    from scaptool.scap.events import param_slices
    rows = np.asarray(rows, dtype=np.int64)
    index = _param_layout(name)[0][capture.event_types[rows]]
    return param_slices(capture.buffer, capture.headers.take(rows), index)


def _param_is_fd(types, k):
    return _fd_params()[k][types] if k < len(_fd_params()) else np.zeros(len(types), bool)


@functools.cache
def _fd_params():
    """Per parameter position k, per event id: is the k-th parameter an FD?"""
    table = eventtable.libs()
    top = max((len(table[i].params) for i in range(len(table))), default=0)
    is_fd = np.zeros((top, 65536), dtype=bool)
    for i in range(len(table)):
        for k, p in enumerate(table[i].params):
            is_fd[k, i] = p.type in (PT.FD, PT.FD32)
    return is_fd


def _int_param(capture, k):
    """Parameter number k of every event as a signed integer (8, 4, 2 or 1 bytes), else 0."""
    return decode_ints(capture, *capture.param_slices(k))[0]


def int_param_at(capture, k, rows):
    """_int_param at `rows` only."""
    from scaptool.scap.events import param_slices
    rows = np.asarray(rows, dtype=np.int64)
    return decode_ints(capture, *param_slices(capture.buffer, capture.headers.take(rows), k))[0]


def decode_ints(capture, offsets, lengths, present):
    """(values, ok): params as little-endian signed integers where they have 1, 2, 4 or 8
    bytes (ok), else 0."""
    buf = np.asarray(capture.buffer)
    out = np.zeros(len(offsets), dtype=np.int64)
    ok = np.zeros(len(offsets), dtype=bool)
    for size, dt in ((8, "<i8"), (4, "<i4"), (2, "<i2"), (1, "<i1")):
        sel = present & (lengths == size)
        if sel.any():
            idx = offsets[sel][:, None] + np.arange(size)
            out[sel] = buf[idx].copy().view(dt).reshape(-1).astype(np.int64)
            ok[sel] = True
    return out, ok


def _carry_rows(tids, section, mask):
    """Per row: the last row <= it of the same thread (and section) where mask holds, or -1."""
    return last_row_where(mask, tids, section)


# --------------------------------------------------------------------------------------------
# Public API

_STATES = per_capture_cache()  # emptied by Capture.close()
_MISSING = np.iinfo(np.int64).min


def fd_state(capture):
    """The FdState of a capture (built once per Capture object)."""
    try:
        return _STATES[capture]
    except (KeyError, TypeError):
        pass
    state = FdState(capture)
    try:
        _STATES[capture] = state
    except TypeError:
        pass
    return state


def fd_name_at(capture):
    """A function (rows, fds) -> Series of evt.info's resolved fd text (``<f>/etc/passwd``,
    ``<4t>10.0.0.99:51000->10.0.0.5:80``), null where the thread's table lacks the fd."""
    return fd_state(capture).resolved_text


def fd_param_texts(capture):
    """{param position k: Series}: per event, the resolved text of its k-th parameter when
    that parameter is an FD (null otherwise or when unresolved), for every k that has one."""
    from scaptool.scap.events import param_slices
    state = fd_state(capture)
    types = state.types
    out = {}
    for k in range(len(_fd_params())):
        sel = np.flatnonzero(_param_is_fd(types, k))
        if not len(sel):
            continue
        values, _, present = _decoded(capture, param_slices(capture.buffer,
                                                            capture.headers.take(sel), k))
        rows = sel[present]
        text = state.resolved_text(rows, values[present])
        col = pl.Series(f"fdtext.{k}", [None] * state.n, dtype=pl.String)
        out[k] = col.scatter(rows, text) if len(rows) else col
    return out


def _fd_column_parts(capture):
    """(frame of the events that have an fd, {fd field: its expression over that frame},
    their rows, the number of events): what fd_columns and FdColumns compute from."""
    state = fd_state(capture)
    n = state.n
    has = ((state.flags & (EF.CREATES_FD | EF.USES_FD | EF.DESTROYS_FD)) != 0) & \
        ~sysdig0293.skips_reset()[state.types]
    rows = np.flatnonzero(has)
    fdnum = state.lastevent_fd[rows]
    shown = fdnum.copy()
    if state.info_fd:
        at = np.searchsorted(rows, np.fromiter(state.info_fd, dtype=np.int64))
        shown[at] = np.fromiter(state.info_fd.values(), dtype=np.int64)
    vid = state.lookup(rows, shown)
    v = state.versions
    found = vid >= 0
    safe = np.maximum(vid, 0)

    if not len(v):
        v = pl.DataFrame({"type": [0], "name": [None], "sip": [None], "sport": [None],
                          "dip": [None], "dport": [None], "l4proto": [0], "role": [0]},
                         schema_overrides={"type": pl.Int8, "name": pl.String, "sip": pl.String,
                                           "sport": pl.Int64, "dip": pl.String,
                                           "dport": pl.Int64, "l4proto": pl.Int8,
                                           "role": pl.Int8})
    v = v.with_columns(pl.Series("l4proto", effective_l4(v), dtype=pl.Int8))
    got = v.select("type", "name", "sip", "sport", "dip", "dport", "l4proto", "role")[safe]
    frame = pl.DataFrame({
        "row": rows,
        "num": fdnum,
        "vtype": np.where(found, got["type"].to_numpy(), -1).astype(np.int64),
        "name": got["name"],
        "vsip": got["sip"],
        "vsport": got["sport"],
        "vdip": got["dip"],
        "vdport": got["dport"],
        "l4": got["l4proto"].cast(pl.Int64),
        "role": got["role"].cast(pl.Int64),
        "found": found,
        "nullchar": state.nullchar[rows],
        "null_name": _null_names(state, rows),
        "failed_connect": _failed_connect(state, rows),
    })
    t = pl.col("vtype")
    sock = t.is_in(list(CLIENT_SOCKETS))
    serv = t.is_in(list(SERVER_SOCKETS))
    is_file = t.is_in([FILE, FILE_V2])
    has_role = pl.col("role") != ROLE_NONE
    name_from_table = sanitized(pl.col("name"))
    fd_name = (pl.when(pl.col("found") & ~pl.col("failed_connect")).then(name_from_table)
               .otherwise(pl.col("null_name")))
    exprs = [
        pl.col("num").alias("fd.num"),
        pl.when(pl.col("found")).then(
            t.replace_strict(list(TYPENAME), list(TYPENAME.values()), default="<NA>",
                             return_dtype=pl.String)).alias("fd.type"),
        pl.when(pl.col("found")).then(
            t.replace_strict(list(TYPECHAR), list(TYPECHAR.values()), default="?",
                             return_dtype=pl.String))
        .otherwise(pl.col("nullchar")).alias("fd.typechar"),
        fd_name.alias("fd.name"),
        pl.when(pl.col("found") & is_file)
        .then(dirname(pl.col("name")))
        .when(pl.col("found") & (t == DIRECTORY)).then(name_from_table)
        .when(~pl.col("found")).then(
            dirname(pl.col("null_name")))
        .alias("fd.directory"),
        pl.when(pl.col("found") & is_file)
        .then(basename(pl.col("name")))
        .alias("fd.filename"),
        pl.when(sock & has_role).then(pl.col("vdip")).when(serv).then(pl.col("vsip"))
        .alias("fd.sip"),
        pl.when(sock & has_role).then(pl.col("vdport")).when(serv).then(pl.col("vsport"))
        .alias("fd.sport"),
        pl.when(sock & has_role).then(pl.col("vsip")).alias("fd.cip"),
        # 0.29.3 reads a client port from any fd with a role: 0 where it has none
        pl.when(sock & has_role).then(pl.col("vsport"))
        .when(pl.col("found") & has_role).then(pl.lit(0, dtype=pl.Int64)).alias("fd.cport"),
        pl.when(pl.col("found")).then(
            pl.col("l4").replace_strict(list(L4NAME), list(L4NAME.values()), default="<NA>",
                                        return_dtype=pl.String)).alias("fd.l4proto"),
        pl.when(sock | serv).then(pl.lit("ip")).when(t == UNIX_SOCK).then(pl.lit("unix"))
        .alias("fd.sockfamily"),
    
    ]
    return frame, {e.meta.output_name(): e for e in exprs}, rows, n


def fd_columns(capture):
    """One row per event, aligned with the capture's events: fd.num, fd.type, fd.typechar,
    fd.name, fd.directory, fd.filename, fd.sip, fd.sport, fd.cip, fd.cport, fd.l4proto,
    fd.sockfamily; null where sysdig 0.29.3 has no value (events without an fd, or no table
    entry). fd.is_server is left out: it needs the interface list (sip of a connected socket
    on a local interface), which this module does not read yet."""
    table = FdColumns(capture)
    return pl.DataFrame([table[name] for name in table.columns])


class FdColumns:
    """fd_columns, each column computed when first asked for (table[name]): a filter on
    fd.name needs neither the addresses nor the directories of every event."""

    def __init__(self, capture):
        self._frame, self._exprs, self._rows, self._n = _fd_column_parts(capture)
        self._done = {}

    @property
    def columns(self):
        return list(self._exprs)

    def __getitem__(self, name):
        if name not in self._done:
            part = self._frame.select(self._exprs[name]).to_series()
            column = pl.Series(name, [None] * self._n, dtype=part.dtype)
            self._done[name] = column.scatter(self._rows, part) if len(self._rows) else column
        return self._done[name]

    def select(self, names):
        return pl.DataFrame([self[name] for name in names])


def dirname(expr):
    """_dirname as an expression: all before the last '/', or '/' when that is nothing; a
    path ending in '/' (longer than "/") stays whole."""
    before = expr.str.extract(r"(?s)^(.*)/[^/]*$", 1)
    whole = expr.str.ends_with("/") & (expr.str.len_chars() > 1)
    return (pl.when(expr.is_null()).then(None).when(whole).then(expr)
            .when(before.is_null() | (before == "")).then(pl.lit("/")).otherwise(before))


def basename(expr):
    """_basename as an expression: all after the last '/'; '/' without one; a path ending
    in '/' stays whole."""
    after = expr.str.extract(r"(?s)/([^/]*)$", 1)
    return (pl.when(expr.is_null()).then(None).when(~expr.str.contains("/", literal=True))
            .then(pl.lit("/")).when(expr.str.ends_with("/")).then(expr).otherwise(after))


def _dirname(path):
    if path is None:
        return None
    pos = path.rfind("/")
    if pos > 0:
        return path[:pos] if pos < len(path) - 1 else path
    return "/"


def _basename(path):
    if path is None:
        return None
    pos = path.rfind("/")
    if pos >= 0:
        return path[pos + 1:] if pos < len(path) - 1 else path
    return "/"


def _decoded(capture, slices):
    """(values, ok, present) of param slices."""
    values, ok = decode_ints(capture, *slices)
    return values, ok, slices[2]


@functools.cache
def _creators():
    """Per event id: 1 for open-likes, 2 for accept and connect, whose exits name their fd
    from their own parameters when the table has no entry; 0 otherwise."""
    table = eventtable.libs()
    out = np.zeros(65536, dtype=np.int8)
    for i in range(len(table)):
        name = table[i].name
        if name in ("open", "creat", "openat", "openat2"):
            out[i] = 1
        elif name in ("accept", "accept4", "connect"):
            out[i] = 2
    return out


def _failed_connect(state, rows):
    types = state.types[rows]
    is_cx = _connects()[types] & (types % 2 == 1)
    return is_cx & (state.param0[rows] < 0)


@functools.cache
def _connects():
    table = eventtable.libs()
    out = np.zeros(65536, dtype=bool)
    out[list(table.ids_named("connect"))] = True
    return out


def _null_names(state, rows):
    """extract_fdname_from_creator: the fd name of exits without a table entry."""
    cap = state.capture
    types = state.types[rows]
    out = np.full(len(rows), None, dtype=object)
    is_exit = types % 2 == 1
    out[is_exit] = ""
    creator = np.where(is_exit, _creators()[types], 0)
    opens = np.flatnonzero(creator == 1)
    if len(opens) and state.null_path:
        keys = np.fromiter(state.null_path.keys(), dtype=np.int64, count=len(state.null_path))
        values = np.array(list(state.null_path.values()), dtype=object)
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
        pos = np.minimum(np.searchsorted(keys, rows[opens]), len(keys) - 1)
        found = keys[pos] == rows[opens]
        out[opens] = np.where(found, values[pos], None)
    elif len(opens):
        out[opens] = None
    socks = np.flatnonzero(creator == 2)
    if len(socks):
        sub = rows[socks]
        params = _Params(cap, sub, ())
        out[socks] = [_param_text(PT.SOCKTUPLE, params.raw("tuple", r)) for r in sub.tolist()]
    return pl.Series(out.tolist(), dtype=pl.String)
