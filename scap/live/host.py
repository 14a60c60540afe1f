"""The metadata blocks of a live capture, read from this machine: machine info, interfaces,
users and groups, every thread (process list) and every process's open files (fd lists).

This is what libscap writes at the start of a live capture, and what sysdig needs to name the
processes and files that the events mention before any event has told it.
"""
import ctypes
import ctypes.util
import grp
import os
import pwd
import socket
import stat
import time

from scaptool.scap import blocktypes as bt
from scaptool.scap.schema import FdType, IfType, body_schema

CLONE_FILES, CLONE_THREAD = 1, 8192      # PPM_CL_* flags of non-leader threads
# The longest strings libscap's reader accepts in a process-list entry (it refuses the file
# otherwise) and in an fd-list name (which must stay below MAX_PATH_SIZE)
MAX_PATH_SIZE, MAX_ARGS_SIZE, MAX_ENV_SIZE, MAX_CGROUPS_SIZE = 1024, 4096, 4096, 4096
NAME_LIMIT = MAX_PATH_SIZE - 1
L4 = {"tcp": 2, "udp": 3, "raw": 5}
PPM_OPEN_FLAGS = (  # (Linux O_* bit, PPM_O_* bit), beyond the access mode
    (0o100, 4), (0o2000, 8), (0o10000, 16), (0o200, 32), (0o4000, 64), (0o4010000, 128),
    (0o1000, 256), (0o40000, 512), (0o200000, 1024), (0o100000, 2048), (0o2000000, 4096),
)


def open_flags_to_ppm(flags):
    """Linux open flags (as /proc/PID/fdinfo shows them) in the PPM_O_* encoding."""
    result = {0: 1, 1: 2, 2: 3}.get(flags & 3, 0)
    for linux_bit, ppm in PPM_OPEN_FLAGS:
        if flags & linux_bit == linux_bit:
            result |= ppm
    return result


def _read(path, default=b""):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return default


def _readlink(path, default=""):
    try:
        return os.readlink(path)
    except OSError:
        return default


def boot_time_ns():
    return time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(
        time.CLOCK_BOOTTIME)


def machine_info():
    meminfo = _read("/proc/meminfo").split()
    total_kb = int(meminfo[1]) if len(meminfo) > 1 else 0
    return dict(num_cpus=os.cpu_count() or 1, memory_size_bytes=total_kb * 1024, max_pid=0,
                hostname=socket.gethostname().encode()[:127], boot_ts_epoch=boot_time_ns(),
                flags=0, reserved3=0, reserved4=0)


class _IfAddr(ctypes.Structure):
    pass


_IfAddr._fields_ = [("next", ctypes.POINTER(_IfAddr)), ("name", ctypes.c_char_p),
                    ("flags", ctypes.c_uint), ("addr", ctypes.c_void_p),
                    ("netmask", ctypes.c_void_p), ("bcast", ctypes.c_void_p),
                    ("data", ctypes.c_void_p)]


def _sockaddr_bytes(ptr):
    """(family, raw address bytes) of a struct sockaddr pointer, or (None, b'')."""
    if not ptr:
        return None, b""
    family = ctypes.c_ushort.from_address(ptr).value
    if family == socket.AF_INET:
        return family, ctypes.string_at(ptr + 4, 4)
    if family == socket.AF_INET6:
        return family, ctypes.string_at(ptr + 8, 16)
    return family, b""


def interface_list():
    """IPv4 and IPv6 addresses of every interface, as getifaddrs(3) reports them."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    head = ctypes.POINTER(_IfAddr)()
    entries = []
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        return dict(entries=entries)
    try:
        node = head
        while node:
            ifa = node.contents
            family, addr = _sockaddr_bytes(ifa.addr)
            if family in (socket.AF_INET, socket.AF_INET6):
                _, mask = _sockaddr_bytes(ifa.netmask)
                _, bcast = _sockaddr_bytes(ifa.bcast)
                size = len(addr)
                entries.append(dict(
                    type=IfType.IPV4 if family == socket.AF_INET else IfType.IPV6,
                    addr=addr, netmask=mask or bytes(size), bcast=bcast or bytes(size),
                    linkspeed=0, name=ifa.name))
            node = ifa.next
    finally:
        libc.freeifaddrs(head)
    return dict(entries=entries)


def user_list():
    users = [dict(kind=0, uid=u.pw_uid, gid=u.pw_gid, name=u.pw_name.encode()[:255],
                  homedir=u.pw_dir.encode()[:255], shell=u.pw_shell.encode()[:255])
             for u in pwd.getpwall()]
    groups = [dict(kind=1, gid=g.gr_gid, name=g.gr_name.encode()[:255]) for g in grp.getgrall()]
    return dict(entries=users + groups)


def cgroups_of(pid):
    """/proc/PID/cgroup as scap lists it: "controller=path\\0" for each v1 controller.

    Whole entries only, up to the 4096 bytes a reader accepts."""
    out = b""
    for line in _read(f"/proc/{pid}/cgroup").decode(errors="replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[1]:
            for controller in parts[1].split(","):
                entry = f"{controller}={parts[2]}\0".encode()
                if len(out) + len(entry) <= MAX_CGROUPS_SIZE:
                    out += entry
    return out


def _status(pid, tid):
    fields = {}
    for line in _read(f"/proc/{pid}/task/{tid}/status").decode(errors="replace").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return fields


def _fdlimit(pid):
    for line in _read(f"/proc/{pid}/limits").decode(errors="replace").splitlines():
        if line.startswith("Max open files"):
            value = line.split()[3]
            return -1 if value == "unlimited" else int(value)
    return 0


def thread_entry(pid, tid):
    """One PL_V9 entry, or None if the thread went away while it was read."""
    stat_raw = _read(f"/proc/{pid}/task/{tid}/stat")
    if not stat_raw:
        return None
    # comm may hold spaces and parentheses: the fields after it start after the last ')'
    after = stat_raw[stat_raw.rfind(b")") + 2:].split()
    ppid, pgrp, session = int(after[1]), int(after[2]), int(after[3])
    minflt, majflt = int(after[7]), int(after[9])
    status = _status(pid, tid)
    # libscap reads at most 4096 bytes of the command line, and a reader refuses longer
    # args (sysdig: "invalid argslen"), so a long command line is cut the same way
    cmdline = _read(f"/proc/{pid}/cmdline")[:MAX_ARGS_SIZE]
    argv0, _, args = cmdline.partition(b"\0")
    comm = _read(f"/proc/{pid}/task/{tid}/comm").rstrip(b"\n")
    # u32 on disk: a process that reserves terabytes of address space is shown at the cap
    kb = lambda key: min(int(status.get(key, ["0"])[0]), 0xFFFFFFFF)
    loginuid = _read(f"/proc/{pid}/loginuid", b"4294967295").strip() or b"4294967295"
    return dict(
        tid=tid, pid=pid, ptid=ppid if tid == pid else pid, sid=session, vpgid=pgrp,
        comm=comm, exe=(argv0 or comm)[:MAX_PATH_SIZE],
        exepath=_readlink(f"/proc/{pid}/exe").encode()[:MAX_PATH_SIZE],
        args=args, cwd=_readlink(f"/proc/{pid}/cwd").encode()[:MAX_PATH_SIZE],
        fdlimit=_fdlimit(pid),
        flags=0 if tid == pid else CLONE_FILES | CLONE_THREAD,
        uid=int(status.get("Uid", ["0"])[0]), gid=int(status.get("Gid", ["0"])[0]),
        vmsize_kb=kb("VmSize"), vmrss_kb=kb("VmRSS"), vmswap_kb=kb("VmSwap"),
        pfmajor=majflt, pfminor=minflt, env=_read(f"/proc/{pid}/environ")[:MAX_ENV_SIZE],
        vtid=int(status.get("NSpid", [str(tid)])[-1]),
        vpid=int(status.get("NStgid", [str(pid)])[-1]),
        cgroups=cgroups_of(pid), root=_readlink(f"/proc/{pid}/root").encode()[:MAX_PATH_SIZE],
        loginuid=int(loginuid), exe_writable=0)   # the 5-byte tail sysdig 0.29.3 writes


def _pids():
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())


def _parent(pid):
    raw = _read(f"/proc/{pid}/stat")
    after = raw[raw.rfind(b")") + 2:].split()
    return int(after[1]) if len(after) > 1 else 0


def descendants(roots):
    """The given pids and every process below them."""
    keep = set(roots)
    pids = _pids()
    parents = {pid: _parent(pid) for pid in pids}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in keep and pid not in keep:
                keep.add(pid)
                changed = True
    return keep


def process_list(skip=(), only=None):
    """Every thread of every process (or of the processes in `only`), less those in `skip`."""
    entries = []
    for pid in _pids():
        if pid in skip or (only is not None and pid not in only):
            continue
        try:
            tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
        for tid in tids:
            entry = thread_entry(pid, tid)
            if entry is not None:
                entries.append(entry)
    return dict(entries=entries)


def _socket_table():
    """{socket inode: fd entry fields} from /proc/net/{tcp,udp,raw}{,6}, unix and netlink."""
    table = {}
    for proto in ("tcp", "udp", "raw"):
        for suffix, size in (("", 4), ("6", 16)):
            lines = _read(f"/proc/net/{proto}{suffix}").decode().splitlines()[1:]
            for line in lines:
                cols = line.split()
                if len(cols) < 10:
                    continue
                local, remote, inode = cols[1], cols[2], int(cols[9])
                lip, lport = _net_addr(local, size)
                rip, rport = _net_addr(remote, size)
                listening = proto == "tcp" and cols[3] == "0A" or \
                    proto != "tcp" and rport == 0
                if listening:
                    kind = FdType.IPV4_SERVSOCK if size == 4 else FdType.IPV6_SERVSOCK
                    table[inode] = dict(type=kind, ip=lip, port=lport, l4proto=L4[proto])
                else:
                    kind = FdType.IPV4_SOCK if size == 4 else FdType.IPV6_SOCK
                    table[inode] = dict(type=kind, sip=lip, dip=rip, sport=lport, dport=rport,
                                        l4proto=L4[proto])
    for line in _read("/proc/net/unix").decode(errors="replace").splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 7:
            path = cols[7] if len(cols) > 7 else ""
            table[int(cols[6])] = dict(type=FdType.UNIX_SOCK, source=int(cols[0].rstrip(":"), 16),
                                       destination=0, name=path.encode()[:NAME_LIMIT])
    for line in _read("/proc/net/netlink").decode().splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 10:
            table[int(cols[9])] = dict(type=FdType.NETLINK, name=b"")
    return table


def _net_addr(text, size):
    """/proc/net's hex 'ADDR:PORT' -> (network-order bytes, port)."""
    addr, port = text.split(":")
    raw = bytes.fromhex(addr)
    # the kernel prints each 32-bit word in host (little-endian) order
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return raw[:size], int(port, 16)


# Only fd types that sysdig 0.29.3 knows (its reader rejects the whole file on any other, such
# as io_uring's 19): newer kinds of anonymous inode are listed as "unsupported", named.
ANON_TYPES = {"[eventfd]": FdType.EVENT, "[eventpoll]": FdType.EVENTPOLL,
              "inotify": FdType.INOTIFY, "[timerfd]": FdType.TIMERFD,
              "[signalfd]": FdType.SIGNALFD}


def fd_entries(pid, sockets):
    entries = []
    try:
        fds = sorted(int(f) for f in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return entries
    for fd in fds:
        target = _readlink(f"/proc/{pid}/fd/{fd}")
        if not target:
            continue
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        base = dict(fd=fd, ino=st.st_ino)
        if target.startswith("socket:["):
            info = sockets.get(st.st_ino)
            if info is not None:
                entries.append({**base, **info})
            continue
        if target.startswith("pipe:["):
            entries.append(dict(base, type=FdType.FIFO, name=target.encode()[:NAME_LIMIT]))
        elif target.startswith("anon_inode:"):
            kind = ANON_TYPES.get(target[len("anon_inode:"):], FdType.UNSUPPORTED)
            entries.append(dict(base, type=kind, name=target.encode()[:NAME_LIMIT]))
        elif stat.S_ISDIR(st.st_mode):
            entries.append(dict(base, type=FdType.DIRECTORY, name=target.encode()[:NAME_LIMIT]))
        elif target.startswith("/memfd:"):
            entries.append(dict(base, type=FdType.FILE_V2, open_flags=1,
                                name=target.encode()[:NAME_LIMIT], dev=0))
        else:
            flags = 0
            for line in _read(f"/proc/{pid}/fdinfo/{fd}").decode().splitlines():
                if line.startswith("flags:"):
                    flags = int(line.split()[1], 8)
            entries.append(dict(base, type=FdType.FILE_V2, open_flags=open_flags_to_ppm(flags),
                                name=target.encode()[:NAME_LIMIT], dev=st.st_dev & 0xFFFFFFFF))
    return entries


def header_bytes(skip_pids=(), only_pids=None):
    """A section header and the blocks write_header writes after it, as bytes: what a live
    capture starts with (kept in memory for a pipe, or a rotated file's start)."""
    from scaptool.scap.writer import SECTION_HEADER, frame_block
    parts = [SECTION_HEADER]

    class Collected:   # the one Writer method write_header calls
        @staticmethod
        def write_block(block_type, body):
            parts.append(frame_block(block_type, body))
    write_header(Collected, skip_pids, only_pids)
    return b"".join(parts)


def write_header(writer, skip_pids=(), only_pids=None):
    """Machine info, interfaces, users and groups, threads and open files: the blocks a live
    capture starts with, appended to an open scap.writer.Writer after its section header.
    With only_pids, the thread and fd lists hold those processes alone (and the environment
    of no other process ends up in the file)."""
    def block(block_type, value):
        writer.write_block(block_type, body_schema(block_type).build(value))

    block(bt.MI, machine_info())
    block(bt.IL_V2, interface_list())
    block(bt.UL_V2, user_list())
    procs = process_list(skip=skip_pids, only=only_pids)
    block(bt.PL_V9, procs)
    sockets = _socket_table()
    for entry in procs["entries"]:
        if entry["tid"] == entry["pid"]:
            block(bt.FDL_V2, dict(tid=entry["pid"], entries=fd_entries(entry["pid"], sockets)))


