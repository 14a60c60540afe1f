"""The field catalog: every field a filter, a -p format or JSON output can name.

Each field is an entry with its name, sysdig's type name (as `-l` lists it), the kind the
filter compiler works with, a description, and how to compute it: a function from the
capture's EventData (and the field's argument, for fields like `evt.arg.NAME` or
`proc.aname[2]`) to a Polars Series with one value per event, null where sysdig has none.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import polars as pl

from scap import eventtable, names
from scap.eventtable import EF

FIELDS = {}


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str          # sysdig's type name, for -l
    kind: str          # the filter compiler's kind: string bytes int uint bool ip port time list
    description: str
    compute: Callable
    arg: str = "none"  # "none", "optional" or "required": an argument as [N] or .NAME
    per_row: Callable = None  # for text made event by event: (data, arg, rows) -> Series

    def series(self, data, arg=None):
        return self.compute(data, arg)

    def series_at(self, data, arg, rows):
        """The field for the given rows only (cheaper for text rendered event by event)."""
        if self.per_row is not None:
            return self.per_row(data, arg, rows)
        return self.compute(data, arg).gather(rows)


def field(name, type_, kind, description, arg="none", per_row=None):
    def register(compute):
        FIELDS[name] = FieldDef(name, type_, kind, description, compute, arg, per_row)
        return compute
    return register


class UnknownFieldError(KeyError):
    pass


def lookup(text):
    """(FieldDef, argument) for a field reference: `evt.num`, `evt.arg.fd`, `evt.arg[1]`,
    `proc.aname[2]`."""
    name, arg = text, None
    if text.endswith("]") and "[" in text:
        name, arg = text[:-1].split("[", 1)
    if name in FIELDS:
        return FIELDS[name], arg
    # dotted arguments: evt.arg.NAME, evt.rawarg.NAME, thread.cgroup.X ...
    head, _, tail = name.rpartition(".")
    while head:
        if head in FIELDS and FIELDS[head].arg != "none":
            return FIELDS[head], tail
        head, _, more = head.rpartition(".")
        tail = more + "." + tail
    raise UnknownFieldError(text)


def columns(data, names):
    """A DataFrame with one column per field name (all events), named after the field."""
    out = []
    for name in dict.fromkeys(names):
        definition, arg = lookup(name)
        out.append(definition.series(data, arg).alias(name))
    return pl.DataFrame(out) if out else pl.DataFrame({"_": np.zeros(len(data), np.int8)})


def _flag_per_type(flag):
    old, new = eventtable.sysdig_0293(), eventtable.libs()
    out = np.zeros(65536, dtype=bool)
    for i in range(len(new)):
        info = old[i] if i < len(old) else new[i]
        out[i] = bool(info.flags & flag)
    return out


def _column(data, source, name):
    table = getattr(data, source)
    if table is None or name not in table.columns:
        return pl.Series(name, [None] * len(data), dtype=pl.String)
    return table[name]


# -- evt ---------------------------------------------------------------------------------------

@field("evt.num", "UINT64", "uint", "event number (as sysdig 0.29.3 counts them)")
def _evt_num(data, arg):
    num = data.capture.event_numbers
    return pl.Series("evt.num", num, dtype=pl.UInt64).set(pl.Series(num == 0), None)


@field("evt.rawtime", "ABSTIME", "time", "absolute event timestamp, ns since the epoch")
def _evt_rawtime(data, arg):
    return pl.Series("evt.rawtime", data.headers.ts, dtype=pl.UInt64)


@field("evt.rawtime.s", "ABSTIME", "time", "integer part of the event timestamp")
def _evt_rawtime_s(data, arg):
    return pl.Series("evt.rawtime.s", data.headers.ts // 1_000_000_000, dtype=pl.UInt64)


@field("evt.rawtime.ns", "ABSTIME", "time", "fractional part of the event timestamp")
def _evt_rawtime_ns(data, arg):
    return pl.Series("evt.rawtime.ns", data.headers.ts % 1_000_000_000, dtype=pl.UInt64)


@field("evt.time", "CHARBUF", "string", "event time, HH:MM:SS.nnnnnnnnn in local time")
def _evt_time(data, arg):
    r = data.renderer
    return pl.Series("evt.time", [r.outputtime(i) for i in range(len(data))], dtype=pl.String)


@field("evt.cpu", "INT16", "int", "number of the CPU where the event happened")
def _evt_cpu(data, arg):
    return pl.Series("evt.cpu", data.headers.cpu, dtype=pl.Int64)


@field("evt.dir", "CHARBUF", "string", "event direction: > enter, < exit")
def _evt_dir(data, arg):
    return pl.Series("evt.dir", np.where(data.headers.type % 2 == 0, ">", "<"), dtype=pl.String)


@field("evt.type", "CHARBUF", "string", "event name (the syscall name for generic events)")
def _evt_type(data, arg):
    return data.type_names


@field("evt.latency", "RELTIME", "int", "exit time minus enter time, ns (0 for enters)")
def _evt_latency(data, arg):
    return pl.Series("evt.latency", data.latency, dtype=pl.Int64)


def _rawres(data):
    """An exit's return value: its `res` parameter, or the `fd` it created."""
    res = data.param("res")
    if res.dtype == pl.Null:
        res = pl.Series("res", [None] * len(data), dtype=pl.Int64)
    creates = _flag_per_type(EF.CREATES_FD)[data.headers.type]
    fd = data.param("fd")
    if fd.dtype != pl.Null:
        res = pl.select(pl.when(res.is_null() & pl.Series(creates)).then(fd.cast(pl.Int64))
                        .otherwise(res.cast(pl.Int64))).to_series()
    exits = pl.Series(data.headers.type % 2 == 1)
    return pl.select(pl.when(exits).then(res.cast(pl.Int64))).to_series().alias("evt.rawres")


@field("evt.rawres", "INT64", "int", "return value of the event (exits), as a number")
def _evt_rawres(data, arg):
    return _rawres(data)


@field("evt.res", "CHARBUF", "string", "SUCCESS, or the error name of a failed call")
def _evt_res(data, arg):
    raw = _rawres(data)
    values = raw.to_list()
    text = [None if v is None else "SUCCESS" if v >= 0 else
            (names.errno_name(-v) or str(v)) for v in values]
    return pl.Series("evt.res", text, dtype=pl.String)


@field("evt.failed", "BOOL", "bool", "true for exits that returned an error")
def _evt_failed(data, arg):
    return (_rawres(data) < 0).fill_null(False).alias("evt.failed")


for _name, _flags, _desc in (("evt.is_io", EF.READS_FROM_FD | EF.WRITES_TO_FD, "read or write"),
                             ("evt.is_io_read", EF.READS_FROM_FD, "read from an fd"),
                             ("evt.is_io_write", EF.WRITES_TO_FD, "write to an fd"),
                             ("evt.is_wait", EF.WAITS, "wait")):
    def _flagged(data, arg, _flags=_flags, _name=_name):
        return pl.Series(_name, _flag_per_type(_flags)[data.headers.type])
    field(_name, "BOOL", "bool", f"true for events that {_desc}")(_flagged)


@field("evt.buffer", "BYTEBUF", "bytes", "the data of an I/O event (compared as raw bytes)")
def _evt_buffer(data, arg):
    out = data.param("data")
    return out if out.dtype != pl.Null else pl.Series("evt.buffer", [None] * len(data),
                                                      dtype=pl.Binary)


@field("evt.rawarg", "DYNAMIC", "int", "a parameter's raw value: evt.rawarg.NAME", "required")
def _evt_rawarg(data, arg):
    return data.param(arg).alias(f"evt.rawarg.{arg}")


def _rendered_at(what):
    def at(data, arg, rows):
        return data.rendered_at(what, arg, rows)
    return at


@field("evt.arg", "CHARBUF", "string",
       "one parameter as text: evt.arg.NAME or evt.arg[N] (resolved: an fd shows its name)",
       "required", per_row=_rendered_at("evt.arg"))
def _evt_arg(data, arg):
    return data.rendered("evt.arg", arg).alias(f"evt.arg.{arg}")


@field("evt.info", "CHARBUF", "string", "the event's parameters as text (syslog decoded)",
       per_row=_rendered_at("evt.info"))
def _evt_info(data, arg):
    return data.rendered("evt.info")


@field("evt.args", "CHARBUF", "string", "the event's parameters as text",
       per_row=_rendered_at("evt.args"))
def _evt_args(data, arg):
    return data.rendered("evt.args")


@field("evt.count", "UINT32", "uint", "1 for every event (for counting)")
def _evt_count(data, arg):
    return pl.Series("evt.count", np.ones(len(data), dtype=np.uint32))


@field("thread.tid", "INT64", "int", "the thread id (from the event header)")
def _thread_tid(data, arg):
    return pl.Series("thread.tid", data.headers.tid, dtype=pl.Int64)


# -- state: threads, users, fds (columns of query.threads / query.fds) ------------------------

_THREAD_FIELDS = {
    "proc.name": ("CHARBUF", "string", "the process name (comm)"),
    "proc.pid": ("INT64", "int", "the id of the process"),
    "proc.ppid": ("INT64", "int", "the pid of the parent process"),
    "proc.exe": ("CHARBUF", "string", "the first command-line argument (argv[0])"),
    "proc.exepath": ("CHARBUF", "string", "the full executable path"),
    "proc.cmdline": ("CHARBUF", "string", "name and arguments of the process"),
    "proc.cwd": ("CHARBUF", "string", "the current working directory"),
    "proc.pname": ("CHARBUF", "string", "the name of the parent process"),
    "proc.vpid": ("INT64", "int", "the process id inside its pid namespace"),
    "thread.vtid": ("INT64", "int", "the thread id inside its pid namespace"),
    "user.uid": ("UINT32", "uint", "user id"),
    "user.name": ("CHARBUF", "string", "user name"),
    "user.loginuid": ("INT64", "int", "audit login user id"),
    "group.gid": ("UINT64", "uint", "group id"),
    "group.name": ("CHARBUF", "string", "group name"),
}
_FD_FIELDS = {
    "fd.num": ("INT64", "int", "the fd number the event uses or creates"),
    "fd.type": ("CHARBUF", "string", "file, directory, ipv4, ipv6, unix, pipe, ..."),
    "fd.typechar": ("CHARBUF", "string", "the fd type as one character"),
    "fd.name": ("CHARBUF", "string", "path, socket tuple or other name of the fd"),
    "fd.directory": ("CHARBUF", "string", "the directory of a file fd"),
    "fd.filename": ("CHARBUF", "string", "the file name of a file fd"),
    "fd.sip": ("IPADDR", "ip", "server address of a socket"),
    "fd.cip": ("IPADDR", "ip", "client address of a socket"),
    "fd.sport": ("PORT", "port", "server port of a socket"),
    "fd.cport": ("PORT", "port", "client port of a socket"),
    "fd.l4proto": ("CHARBUF", "string", "tcp, udp, icmp or raw"),
}
for _name, (_type, _kind, _desc) in _THREAD_FIELDS.items():
    field(_name, _type, _kind, _desc)(lambda data, arg, _n=_name: _column(data, "threads", _n))
for _name, (_type, _kind, _desc) in _FD_FIELDS.items():
    field(_name, _type, _kind, _desc)(lambda data, arg, _n=_name: _column(data, "fds", _n))


# -- fields mixing the event table and fd state ------------------------------------------------

# the fd kinds sysdig 0.29.3 counts as each I/O category (fdinfo's class)
_IO_CATEGORY_OF_FD = {"file": "file", "directory": "file", "ipv4": "net", "ipv6": "net",
                      "unix": "ipc", "pipe": "ipc", "event": "ipc", "signalfd": "ipc",
                      "eventpoll": "ipc", "inotify": "ipc", "timerfd": "ipc"}


@field("evt.category", "CHARBUF", "string",
       "file, net, memory, process, ...; I/O events take the category of their fd")
def _evt_category(data, arg):
    old, new = eventtable.sysdig_0293(), eventtable.libs()
    text = [(old[i] if i < len(old) else new[i]).category_name for i in range(len(new))]
    by_type = pl.Series("evt.category", text, dtype=pl.String).gather(data.headers.type)
    # generic events (types 0/1) take the category of their syscall (PPM_SC id in the ID param),
    # from libscap's syscall info table; its I/O categories again defer to the fd, as above
    sc_text = {}
    while (category := names.syscall_category(len(sc_text))) is not None:
        info = eventtable.EventInfo(0, "", int(eventtable.EC[category]), 0, ())
        sc_text[len(sc_text)] = info.category_name  # None for I/O: from the fd below
    by_sc = data.param("ID").cast(pl.Int64, strict=False) \
        .replace_strict(sc_text, default="unknown", return_dtype=pl.String)
    generic = pl.Series(np.isin(data.headers.type, (0, 1)))
    by_type = pl.select(pl.when(generic).then(by_sc).otherwise(by_type)).to_series()
    io = by_type.is_null()
    fd_kind = _column(data, "fds", "fd.type")
    from_fd = fd_kind.replace_strict(_IO_CATEGORY_OF_FD, default="unknown",
                                     return_dtype=pl.String).fill_null("unknown")
    return pl.select(pl.when(io).then(from_fd).otherwise(by_type)).to_series() \
        .alias("evt.category")


@field("evt.is_syslog", "BOOL", "bool", "true for writes to syslog (an fd named /dev/log...)")
def _evt_is_syslog(data, arg):
    writes = pl.Series(_flag_per_type(EF.WRITES_TO_FD)[data.headers.type])
    name = _column(data, "fds", "fd.name")
    return (writes & name.str.contains("/dev/log", literal=True)).fill_null(False) \
        .alias("evt.is_syslog")
