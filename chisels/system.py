"""System state chisels: the process table (ps), the open fds (lsof) and the network
connections (netstat) as sysdig's tables hold them at one moment of the capture.

That moment is the first event that passes the user's filter (the first event of the capture
without one): sysdig stops reading there and prints its tables as they are once that event has
been parsed. The tables come from query.threads (thread versions) and query.fds (fd versions).
Read a chunk at a time, the chunk that holds that event prints the tables (the state the
chunks before it left is its starting state) and no chunk after it is read.
The chisels' own optional argument is a second filter, over (thread, fd) pairs: a thread is
listed when one of its fds matches, and lsof/netstat list only the matching fds.
"""
import bisect

import numpy as np
import polars as pl

from . import Arg, ChiselError, chisel
from .io import chisel_rows, extend, format_bytes

NO_MATCH = "empty capture or no event matching the filter"
UINT32 = 0xFFFFFFFF
NO_ID = 0xFFFFFFFF


# -- the snapshot ------------------------------------------------------------------------------

def first_row(run):
    """The row of the first event the chisel sees, or None."""
    rows = chisel_rows(run)
    return int(rows[0]) if len(rows) else None


def _section_of(capture, row):
    starts = [s.first_event for s in capture.sections] or [0]
    return bisect.bisect_right(starts, row) - 1


# Events whose memory counters show for their thread in the table at that very event (not
# clone or execve: theirs are in the thread versions already, and a parent's clone exit shows
# none of its own)
_MEMORY_EVENTS = frozenset({"switch", "brk", "mmap", "mmap2", "munmap"})


def thread_table(data, row):
    """sysdig's thread table once the event at `row` is parsed: one row per live thread, with
    its state columns (query.threads versions), sorted by tid. The memory counters are those
    of the versions (process list, clone, execve): the table sysdig's chisels read does not
    keep what switch/brk/mmap events report, though proc.vmsize does..."""
    capture = data.capture
    section = _section_of(capture, row)
    table = (data.thread_versions
             .filter((pl.col("section") == section) & (pl.col("row") <= row))
             .unique("tid", keep="last", maintain_order=True)
             .filter(pl.col("alive"))
             .sort("tid"))
    # ...except for the thread of the event itself, when that event reports them (a
    # scheduler switch, brk, mmap, munmap): its values show, though they do not last
    if "vmsize" not in table.columns or data.type_names_at([row])[0] not in _MEMORY_EVENTS:
        return table
    size = capture.param("vm_size", rows=[row])
    if size.dtype != pl.Null and size[0] is not None:
        rss = capture.param("vm_rss", rows=[row])[0]
        tid = int(capture.headers.tid[row])
        table = table.with_columns(
            pl.when(pl.col("tid") == tid).then(pl.lit(int(size[0]))).otherwise(pl.col("vmsize"))
            .alias("vmsize"),
            pl.when(pl.col("tid") == tid).then(pl.lit(int(rss or 0))).otherwise(pl.col("vmrss"))
            .alias("vmrss"))
    return table


def user_names(capture, section):
    """uid -> user name from the capture's user list (the first entry of a uid wins)."""
    users = capture.users
    if users is None or users.height == 0:
        return {}
    out = {}
    for uid, name in users.filter(pl.col("section") == section).select("uid", "name").iter_rows():
        out.setdefault(int(uid), name)
    return out


def fd_table(data, row, threads):
    """One row per (thread, fd) of the fd tables at `row`: a thread shares the table of its
    process when it was cloned with CLONE_FILES, so its fds are listed under each thread."""
    from scaptool.query.fds import fd_state
    owners, live = fd_state(data.capture).tables_at(row, threads["tid"].to_list())
    live = _mapped_sockets_as_ipv4(data.capture, _section_of(data.capture, row), live)
    return owners.join(live, on="owner", how="inner", maintain_order="left").sort(
        ["tid", "fd"], maintain_order=True)


def _v4_of_mapped(text):
    """The IPv4 address of an IPv4-mapped IPv6 address (::ffff:a.b.c.d or ::a.b.c.d, as
    sinsp_utils::is_ipv4_mapped_ipv6 accepts them), else None."""
    import ipaddress
    try:
        packed = ipaddress.ip_address(text).packed
    except ValueError:
        return None
    if len(packed) != 16 or packed[:10] != bytes(10) or packed[10:12] not in (b"\xff\xff",
                                                                             b"\0\0"):
        return None
    return str(ipaddress.IPv4Address(packed[12:]))


def _ntop(text):
    """An IPv6 address as inet_ntop writes it (Python writes mapped ones differently)."""
    import socket
    if not text:
        return text
    try:
        return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text))
    except OSError:
        return text


def _mapped_sockets_as_ipv4(capture, section, live):
    """Connected IPv6 sockets of the process list whose two ends are IPv4-mapped: sysdig
    loads them as IPv4 sockets (and, like the IPv4 ones, as the server end when their local
    port is a listening port of the list). query.fds keeps them as IPv6 for now; sockets made
    by events are converted there already."""
    from scaptool.query.fds import (IPV4_SOCK, IPV6_SERVSOCK, IPV6_SOCK, ROLE_CLIENT, ROLE_SERVER,
                           SERVER_SOCKETS)
    if not live.height or not live["type"].is_in([IPV6_SOCK, IPV6_SERVSOCK]).any():
        return live
    rows = live.with_row_index("_i").filter(pl.col("type").is_in([IPV6_SOCK, IPV6_SERVSOCK]))
    fixes = {}
    server_ports = None
    for i, kind, sip, sport, dip, dport, role in rows.select(
            "_i", "type", "sip", "sport", "dip", "dport", "role").iter_rows():
        v4s, v4d = _v4_of_mapped(sip or ""), _v4_of_mapped(dip or "")
        if kind == IPV6_SERVSOCK or v4s is None or v4d is None:
            # an IPv6 socket: its addresses as inet_ntop writes them (::ffff:1.2.3.4)
            nsip, ndip = _ntop(sip), _ntop(dip)
            if (nsip, ndip) != (sip, dip):
                fixes[i] = (kind, nsip, sport, ndip, dport, role)
            continue
        if server_ports is None:
            fdl = capture.fds
            server_ports = set() if fdl is None or not len(fdl) else set(
                fdl.filter((pl.col("section") == section)
                           & pl.col("type").is_in(list(SERVER_SOCKETS)))["sport"].to_list())
        if sport in server_ports:
            fixes[i] = (IPV4_SOCK, v4d, dport, v4s, sport, ROLE_SERVER)
        else:
            fixes[i] = (IPV4_SOCK, v4s, sport, v4d, dport, ROLE_CLIENT)
    if not fixes:
        return live
    columns = {c: live[c].to_list() for c in ("type", "name", "sip", "sport", "dip", "dport",
                                              "role")}
    for i, (kind, sip, sport, dip, dport, role) in fixes.items():
        columns["type"][i] = kind
        columns["sip"][i], columns["sport"][i] = sip, sport
        columns["dip"][i], columns["dport"][i] = dip, dport
        columns["role"][i] = role
        columns["name"][i] = f"{sip}:{sport}" if kind == IPV6_SERVSOCK else \
            f"{sip}:{sport}->{dip}:{dport}"
    return live.with_columns(pl.Series(c, v, dtype=live[c].dtype) for c, v in columns.items())


def _fd_frame(data, row, threads, users):
    """The (thread, fd) pairs with their values under catalog field names, for the chisel's
    filter argument and for printing."""
    from scaptool.query.fds import (CLIENT_SOCKETS, L4NAME, ROLE_NONE, SERVER_SOCKETS, TYPECHAR,
                           effective_l4, sanitize_name)
    fds = fd_table(data, row, threads)
    t = threads.select(
        "tid", pl.col("pid").alias("proc.pid"),
        pl.col("comm").fill_null("<NA>").alias("proc.name"),
        pl.col("uid"), pl.col("ptid").alias("proc.ppid"),
        pl.col("exe").fill_null("<NA>").alias("proc.exe"),
        pl.col("args").alias("proc.args_list"), pl.col("cwd").alias("proc.cwd"))
    out = fds.join(t, on="tid", how="left", maintain_order="left")
    kind = out["type"].cast(pl.Int64).to_numpy() if out.height else np.zeros(0, np.int64)
    l4 = effective_l4(out) if out.height else np.zeros(0, np.int64)
    role = out["role"].to_numpy() if out.height else np.zeros(0, np.int64)
    client = np.isin(kind, CLIENT_SOCKETS)
    server = np.isin(kind, SERVER_SOCKETS)
    connected = client & (role != ROLE_NONE)
    names = [None if n is None else sanitize_name(n) for n in out["name"].to_list()]
    uids = out["uid"].to_list()
    return out.with_columns(
        pl.col("tid").alias("thread.tid"),
        pl.col("fd").alias("fd.num"),
        pl.Series("fd.name", names, dtype=pl.String),
        pl.Series("fd.type", [fd_type_name(k) for k in kind.tolist()], dtype=pl.String),
        pl.Series("fd.typechar", [TYPECHAR.get(k, "?") for k in kind.tolist()],
                  dtype=pl.String),
        pl.Series("fd.l4proto", [L4NAME.get(int(x), "<NA>") for x in l4], dtype=pl.String),
        pl.Series("user.name", [_user(users, u) for u in uids], dtype=pl.String),
        pl.Series("user.uid", uids, dtype=pl.Int64),
        # a connected socket's tuple is stored client first (sip:sport -> dip:dport)
        pl.when(pl.Series(connected)).then(pl.col("dip")).when(pl.Series(server))
        .then(pl.col("sip")).alias("fd.sip"),
        pl.when(pl.Series(connected)).then(pl.col("dport")).when(pl.Series(server))
        .then(pl.col("sport")).alias("fd.sport"),
        pl.when(pl.Series(connected)).then(pl.col("sip")).alias("fd.cip"),
        pl.when(pl.Series(connected)).then(pl.col("sport")).alias("fd.cport"),
        pl.lit("read").alias("evt.type"),
        pl.lit("<").alias("evt.dir"),
    ).with_columns(
        pl.concat_str([pl.col("proc.name"), pl.col("proc.args_list").list.eval(
            pl.lit(" ") + pl.element()).list.join("")]).alias("proc.cmdline"),
        pl.col("proc.args_list").list.join(" ").alias("proc.args"),
        pl.when(pl.col("fd.sip").is_not_null()).then(
            pl.concat_list([pl.col("fd.sip"), pl.col("fd.cip")]).list.drop_nulls())
        .alias("fd.ip"),
        pl.when(pl.col("fd.sport").is_not_null()).then(
            pl.concat_list([pl.col("fd.sport"), pl.col("fd.cport")]).list.drop_nulls())
        .alias("fd.port"),
    )


def fd_type_name(kind):
    """The fd type as sysdig's thread table names it (its types without a name: <NA>)."""
    from scaptool.query.fds import TYPENAME, UNKNOWN, UNSUPPORTED
    if kind in (UNSUPPORTED, UNKNOWN):
        return "<NA>"
    return TYPENAME.get(kind, "<NA>")


def _user(users, uid):
    if uid is None or uid == NO_ID:
        return "<NA>"
    return users.get(int(uid), "<NA>")


def _matching(frame, text):
    """The rows of `frame` the chisel's filter argument selects."""
    if not text:
        return frame
    from scaptool.query.api import filter_expr, filter_fields
    missing = [f for f in filter_fields(text) if f not in frame.columns]
    if missing:
        raise ChiselError(f"the filter argument can only use the fields of a thread and an "
                          f"fd (not {', '.join(missing)})")
    return frame.filter(filter_expr(text))


def _unquoted(text):
    """The filter argument without the quotes that group its words for sysdig's argument
    split ('fd.name contains /etc'), in case they reach the chisel."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'`":
        return text[1:-1]
    return text


class Snapshot:
    """The thread and fd tables as of the first event the chisel sees in this chunk (row:
    None when it sees none)."""

    def __init__(self, run, fd_filter=None):
        self.row = first_row(run)
        if self.row is None:
            return
        run.end_capture()   # the snapshot is taken: sysdig reads no further
        data = run.data
        self.section = _section_of(run.capture, self.row)
        self.threads = thread_table(data, self.row)
        self.users = user_names(run.capture, self.section)
        self.filter = _unquoted((fd_filter or "").strip())
        self._fds = None
        self.data = data

    @property
    def fds(self):
        """(thread, fd) pairs passing the filter argument."""
        if self._fds is None:
            frame = _fd_frame(self.data, self.row, self.threads, self.users)
            self._fds = _matching(frame, self.filter)
        return self._fds

    def listed_threads(self):
        """The threads to list: all, or with a filter those with a matching fd."""
        if not self.filter:
            return self.threads
        keep = set(self.fds["tid"].to_list())
        return self.threads.filter(pl.col("tid").is_in(list(keep)))


_FILTER_ARG = (Arg("filter", "filter", "only list the threads with an fd this filter matches, "
                   "e.g. 'proc.name=nginx and fd.name contains /etc'", True),)


@chisel("lsof", "System State", "List the open fds of every thread at one moment",
        args=_FILTER_ARG,
        details="The fds of every thread, like lsof, as they are when the first event passing "
                "the filter has been read (the start of the capture without a filter). A "
                "thread sharing its process's fd table lists that table too.", at_end=True,
        chunked=True)
def lsof(run):
    snap = Snapshot(run, run.arg("filter"))
    if snap.row is None:
        if run.final:   # no chunk had one
            run.line(NO_MATCH)
        return
    run.line(extend("COMMAND", 20) + extend("PID", 8) + extend("TID", 8) + extend("USER", 8)
             + extend("FD", 8) + extend("TYPE", 12) + "NAME")
    fds = snap.fds
    out = []
    for name, pid, tid, user, fd, kind, fd_name in zip(
            fds["proc.name"].to_list(), fds["proc.pid"].to_list(), fds["tid"].to_list(),
            fds["user.name"].to_list(), fds["fd"].to_list(), fds["fd.type"].to_list(),
            fds["fd.name"].to_list()):
        out.append(extend(name, 20) + extend(str(pid & UINT32), 8) + extend(str(tid & UINT32), 8)
                   + extend(user, 8) + extend(str(fd & UINT32), 8) + extend(kind, 12)
                   + (fd_name or ""))
    if out:
        run.write("\n".join(out) + "\n")


@chisel("ps", "System State", "List the threads of every process at one moment",
        args=(Arg("filter", "filter", "only list the threads with an fd this filter matches, "
                  "e.g. 'fd.name contains /etc'", True),),
        details="Every thread of sysdig's table, like ps, as it is when the first event "
                "passing the filter has been read (the start of the capture without a "
                "filter): virtual and resident memory, fd limit and name.", at_end=True,
        chunked=True)
def ps(run):
    snap = Snapshot(run, run.arg("filter"))
    if snap.row is None:
        if run.final:   # no chunk had one
            run.line(NO_MATCH)
        return
    run.line(extend("TID", 8) + extend("PID", 8) + extend("USER", 12) + extend("VIRT", 11)
             + extend("RES", 11) + extend("FDLIMIT", 10) + extend("CMD", 20))
    threads = snap.listed_threads()
    columns = {c: threads[c].to_list() if c in threads.columns else [None] * threads.height
               for c in ("tid", "pid", "uid", "vmsize", "vmrss", "fdlimit", "comm")}
    out = []
    for tid, pid, uid, vmsize, vmrss, fdlimit, comm in zip(*columns.values()):
        out.append(extend(str(tid & UINT32), 8) + extend(str(pid & UINT32), 8)
                   + extend(_user(snap.users, uid), 12)
                   + extend(format_bytes(((vmsize or 0) & UINT32) * 1024), 11)
                   + extend(format_bytes(((vmrss or 0) & UINT32) * 1024), 11)
                   + extend(str((fdlimit if fdlimit is not None else -1) & UINT32), 10)
                   + (comm if comm is not None else "<NA>"))
    if out:
        run.write("\n".join(out) + "\n")


@chisel("netstat", "System State", "List the network connections at one moment",
        args=(Arg("filter", "filter", "only list the connections this filter matches, e.g. "
                  "'proc.name=nginx and fd.port=80'", True),),
        details="The IPv4 and IPv6 sockets of every thread, like netstat, as they are when "
                "the first event passing the filter has been read (the start of the capture "
                "without a filter).", at_end=True,
        chunked=True)
def netstat(run):
    from scaptool.query.fds import CLIENT_SOCKETS
    extra = _unquoted((run.arg("filter") or "").strip())
    # sysdig glues the argument to its own filter without a space: "(...)and (ARG)"
    text = "(fd.type=ipv4 or fd.type=ipv6)" + (f" and ({extra})" if extra else "")
    snap = Snapshot(run, text)
    if snap.row is None:
        if run.final:   # no chunk had one
            run.line(NO_MATCH)
        return
    run.line(extend("Proto", 6) + extend("Server Address", 25) + extend("Client Address", 25)
             + extend("State", 15) + "TID/PID/Program Name")
    fds = snap.fds
    out = []
    for l4, kind, sip, sport, dip, dport, tid, pid, name in zip(
            fds["fd.l4proto"].to_list(), fds["type"].to_list(), fds["sip"].to_list(),
            fds["sport"].to_list(), fds["dip"].to_list(), fds["dport"].to_list(),
            fds["tid"].to_list(), fds["proc.pid"].to_list(), fds["proc.name"].to_list()):
        if kind in CLIENT_SOCKETS:
            # a socket with two ends is stored client first, whatever its role
            server = f"{_ip(dip)}:{dport or 0}"
            client, state = f"{_ip(sip)}:{sport or 0}", "ESTABLISHED"
        else:
            server = f"{_ip(sip)}:{sport or 0}"
            client, state = "0.0.0.0:*", "LISTEN"
        out.append(extend(l4, 6) + extend(server, 25) + extend(client, 25)
                   + extend(state, 15) + f"{tid & UINT32}/{pid & UINT32}/{name}")
    if out:
        run.write("\n".join(out) + "\n")


def _ip(text):
    return "<NA>" if text is None else text

