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

from scaptool.scap import eventtable, names, sysdig0293
from scaptool.scap.eventtable import EC, EF

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
    # (data, arg) -> bool per event: where the field can have a value at all (by event type)
    present: Callable = None
    # (data, arg, rows) -> Series: the filter value at some rows only, where that is cheaper
    # than computing every event; per_row gives the *printed* value, which may differ
    at_rows: Callable = None

    def series(self, data, arg=None):
        return self.compute(data, arg)

    def series_at(self, data, arg, rows):
        """The field as printed, for the given rows only (cheaper for text rendered event by
        event)."""
        if self.per_row is not None:
            return self.per_row(data, arg, rows)
        return self.compute(data, arg).gather(rows)

    def filter_values_at(self, data, arg, rows):
        """The field as filters compare it, for the given rows only."""
        if self.at_rows is not None:
            return self.at_rows(data, arg, rows)
        return self.compute(data, arg).gather(rows)


def field(name, type_, kind, description, arg="none", per_row=None, present=None,
          at_rows=None):
    """Register a field. at_rows=True: per_row gives the filter value too."""
    def register(compute):
        FIELDS[name] = FieldDef(name, type_, kind, description, compute, arg, per_row, present,
                                per_row if at_rows is True else at_rows)
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


def columns_at(data, names, rows, printed=False):
    """Like columns(), for the given rows only: the values filters compare, or (printed=True)
    the values -p prints."""
    out = []
    for name in dict.fromkeys(names):
        definition, arg = lookup(name)
        series = definition.series_at(data, arg, rows) if printed else \
            definition.filter_values_at(data, arg, rows)
        out.append(series.alias(name))
    return pl.DataFrame(out) if out else pl.DataFrame({"_": np.zeros(len(rows), np.int8)})


def _has_param(name):
    """present= for a field that is one parameter: the event types that have it."""
    def present(data, arg):
        from scaptool.scap.capture import _param_layout
        has = _param_layout(name if name is not None else arg)[0] >= 0
        return has[data.capture.event_types]
    return present


def _param_at(name):
    """per_row= for a field that is one parameter: decoded at those rows only."""
    def per_row(data, arg, rows):
        return data.capture.param(name if name is not None else arg, rows=rows)
    return per_row


def columns(data, names):
    """A DataFrame with one column per field name (all events), named after the field."""
    state = [n for n in names if n in _THREAD_FIELDS]
    if state:
        data.thread_columns(state)  # computed together: they share their lookups
    out = []
    for name in dict.fromkeys(names):
        definition, arg = lookup(name)
        out.append(definition.series(data, arg).alias(name))
    return pl.DataFrame(out) if out else pl.DataFrame({"_": np.zeros(len(data), np.int8)})


def _flag_per_type(flag):
    return sysdig0293.has_flag(flag)


def _column(data, source, name):
    table = getattr(data, source)
    if table is None or name not in table.columns:
        return pl.Series(name, [None] * len(data), dtype=pl.String)
    return table[name]


# -- evt ---------------------------------------------------------------------------------------

def _evt_num_at(data, arg, rows):
    num = data.capture.event_numbers_at(rows)
    return pl.Series("evt.num", num, dtype=pl.UInt64).set(pl.Series(num == 0), None)


@field("evt.num", "UINT64", "uint", "event number (as sysdig 0.29.3 counts them)",
       per_row=_evt_num_at, at_rows=True)
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


def _header_at(name, column):
    """A header field at some rows only (EventHeaders.values_at)."""
    return lambda data, arg, rows: pl.Series(name, data.headers.values_at(column, rows),
                                             dtype=pl.Int64)


@field("evt.cpu", "INT16", "int", "number of the CPU where the event happened",
       per_row=_header_at("evt.cpu", "cpu"), at_rows=True)
def _evt_cpu(data, arg):
    return pl.Series("evt.cpu", data.headers.cpu, dtype=pl.Int64)


def _evt_dir_at(data, arg, rows):
    return pl.Series("evt.dir", [">", "<"], dtype=pl.String).gather(data.headers.type[rows] % 2)


@field("evt.dir", "CHARBUF", "string", "event direction: > enter, < exit", per_row=_evt_dir_at,
       at_rows=True)
def _evt_dir(data, arg):
    return _evt_dir_at(data, arg, slice(None))


@field("evt.type", "CHARBUF", "string", "event name (the syscall name for generic events)",
       per_row=lambda data, arg, rows: data.type_names_at(rows), at_rows=True)
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


def _buffer_at(data, arg, rows):
    out = data.capture.param("data", rows=rows)
    return out if out.dtype != pl.Null else pl.Series("evt.buffer", [None] * len(rows),
                                                      dtype=pl.Binary)


@field("evt.buffer", "BYTEBUF", "bytes", "the data of an I/O event (compared as raw bytes)",
       per_row=_buffer_at, present=_has_param("data"), at_rows=True)
def _evt_buffer(data, arg):
    out = data.param("data")
    return out if out.dtype != pl.Null else pl.Series("evt.buffer", [None] * len(data),
                                                      dtype=pl.Binary)


@field("evt.rawarg", "DYNAMIC", "int", "a parameter's raw value: evt.rawarg.NAME", "required",
       per_row=_param_at(None), present=_has_param(None), at_rows=True)
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


@field("thread.tid", "INT64", "int", "the thread id (from the event header)",
       per_row=_header_at("thread.tid", "tid"), at_rows=True)
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
    field(_name, _type, _kind, _desc,
          per_row=lambda data, arg, rows, _n=_name: data.threads_at(rows, [_n])[_n], at_rows=True)(
        lambda data, arg, _n=_name: data.thread_columns([_n])[_n])
for _name, (_type, _kind, _desc) in _FD_FIELDS.items():
    field(_name, _type, _kind, _desc)(lambda data, arg, _n=_name: _column(data, "fds", _n))


# -- fields mixing the event table and fd state ------------------------------------------------

# the fd kinds sysdig 0.29.3 counts as each I/O category (sinsp_evt::get_category): fifo,
# unix, event, signalfd and inotify are IPC; eventpoll, timerfd, netlink and the newer kinds
# are "other", printed unknown (the corpus has timerfd and netlink reads)
_IO_CATEGORY_OF_FD = {"file": "file", "directory": "file", "ipv4": "net", "ipv6": "net",
                      "unix": "ipc", "pipe": "ipc", "event": "ipc", "signalfd": "ipc",
                      "inotify": "ipc"}


@field("evt.category", "CHARBUF", "string",
       "file, net, memory, process, ...; I/O events take the category of their fd")
def _evt_category(data, arg):
    text = sysdig0293.per_type("category_name")
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


# -- time fields -------------------------------------------------------------------------------
#
# Text rendering: sysdig prints RELTIME values with PF_10_PADDED_DEC (evt.reltime, evt.reltime.ns,
# evt.latency.ns, evt.deltatime.ns) zero-padded to 9 digits. A field's Series stays an integer
# for filters (compute); its per_row hook gives -p / -j the padded text.

def _padded(values):
    return pl.Series([None if v is None else "%09d" % v for v in values], dtype=pl.String)


def _time_field(name, description, padded, compute):
    """A 'time' field: integer ns for filters, printed zero-padded when `padded`."""
    per_row = None
    if padded:
        def per_row(data, arg, rows, _compute=compute):
            return _padded(_compute(data, arg).gather(rows).to_list()).alias(name)
    field(name, "RELTIME", "time", description, per_row=per_row)(compute)


def _first_ts(data):
    from .format import _first_timestamp
    return _first_timestamp(data)


def _reltime(data):
    return data.headers.ts.astype(np.int64) - _first_ts(data)


_time_field("evt.reltime", "ns since the first event of the capture", True,
            lambda data, arg: pl.Series("evt.reltime", _reltime(data), dtype=pl.Int64))
_time_field("evt.reltime.s", "whole seconds since the first event of the capture", False,
            lambda data, arg: pl.Series("evt.reltime.s", _reltime(data) // 10**9,
                                        dtype=pl.Int64))
_time_field("evt.reltime.ns", "fractional part (ns) of the time since the first event", True,
            lambda data, arg: pl.Series("evt.reltime.ns", _reltime(data) % 10**9,
                                        dtype=pl.Int64))


# evt.deltatime: sysdig keeps, per field *instance*, the timestamp of the last event the field
# was evaluated on (0 at first: that event's delta is 0). In -p output that is the previously
# printed line (with '*', or when no field before it in the format is missing; without '*', a
# line dropped because an *earlier* field is missing does not evaluate it in sysdig, while here
# every candidate line counts). In a filter it is the previous event sysdig read (short-circuit
# of and/or in sysdig may skip events; here every read event counts).

def _delta_part(delta, part):
    billion = delta.dtype.type(10**9)
    return delta if part == "" else delta // billion if part == ".s" else delta % billion


def _deltatime_compute(part):
    def compute(data, arg):
        ts = data.headers.ts.astype(np.uint64)
        read = np.flatnonzero(data.capture.counted)
        delta = np.zeros(len(data), dtype=np.uint64)
        if len(read) > 1:  # unsigned: an event older than the one before wraps around
            delta[read[1:]] = ts[read[1:]] - ts[read[:-1]]
        before = data.memory.get("read_ts_before")   # read in chunks: the last one before
        if len(read) and before is not None:
            delta[read[0]] = ts[read[0]] - np.uint64(before)
        return pl.Series("evt.deltatime" + part, _delta_part(delta, part), dtype=pl.UInt64)
    return compute


def _deltatime_per_row(part):
    key = "evt.deltatime" + part

    def per_row(data, arg, rows):
        # the printed rows come in batches (cli.read), and chunks (query.chunks): the last
        # one printed is remembered across them, as its position in the reading and its time
        memory = data.memory.setdefault("evt.deltatime printed", {})
        rows = np.asarray(rows, dtype=np.int64)
        last = memory.get(key)
        ts = data.headers.ts.astype(np.uint64)
        if len(rows) == 0:
            return pl.Series(key, [], dtype=pl.String if part == ".ns" else pl.UInt64)
        from .chunks import reading_rows
        at = reading_rows(data, rows)
        previous = ts[rows].copy()
        previous[1:] = ts[rows[:-1]]
        if last is not None and last[0] < at[0]:
            previous[0] = np.uint64(last[1])
        delta = _delta_part(ts[rows] - previous, part)
        memory[key] = (int(at[-1]), int(ts[rows[-1]]))
        if part == ".ns":
            return _padded(delta.tolist()).alias(key)
        return pl.Series(key, delta, dtype=pl.UInt64)
    return per_row


for _part, _desc in (("", "ns since the previous event (in -p: the previous printed one)"),
                     (".s", "whole seconds of evt.deltatime"),
                     (".ns", "fractional part (ns) of evt.deltatime")):
    field("evt.deltatime" + _part, "RELTIME", "time", _desc,
          per_row=_deltatime_per_row(_part))(_deltatime_compute(_part))


def _clock_texts(data, with_date, with_ns):
    """evt.time.s / evt.datetime / evt.datetime.s: local time with the zone offset of now (as
    evt.time; query.render.local_offset_seconds)."""
    import datetime
    from .render import local_offset_seconds
    offset = local_offset_seconds()
    epoch = datetime.datetime(1970, 1, 1)
    out = []
    for ts in data.headers.ts.tolist():
        when = epoch + datetime.timedelta(seconds=ts // 10**9 + offset)
        text = when.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
        out.append(text + (".%09d" % (ts % 10**9) if with_ns else ""))
    return out


@field("evt.time.s", "CHARBUF", "string", "event time, HH:MM:SS in local time")
def _evt_time_s(data, arg):
    return pl.Series("evt.time.s", _clock_texts(data, False, False), dtype=pl.String)


@field("evt.datetime", "CHARBUF", "string",
       "event date and time, YYYY-MM-DD HH:MM:SS.nnnnnnnnn in local time")
def _evt_datetime(data, arg):
    return pl.Series("evt.datetime", _clock_texts(data, True, True), dtype=pl.String)


@field("evt.datetime.s", "CHARBUF", "string", "event date and time without the ns")
def _evt_datetime_s(data, arg):
    return pl.Series("evt.datetime.s", _clock_texts(data, True, False), dtype=pl.String)


# evt.latency.s/.ns/.human: from evt.latency (0 when sysdig has no thread for the event, null
# for internal events). evt.latency.human of an event without thread info is the text this
# field instance produced last (sysdig leaves its string buffer untouched): '' at first.

def _no_thread(data):
    """Events whose evt->m_tinfo is NULL in sysdig: no thread after the event, or a clone exit
    in a child that only this event creates (the child's clone exit when the caller's exit did
    not create it: reset() looks clone exits up without creating the thread)."""
    none = data.thread_columns(["proc.pid"])["proc.pid"].is_null().to_numpy()
    from .threads import CLONE_NAMES, _as_of
    ids = [e.id for e in eventtable.sysdig_0293() if e.name in CLONE_NAMES and not e.is_enter]
    rows = np.flatnonzero(np.isin(data.headers.type, ids) & ~none)
    if len(rows):
        events = pl.DataFrame({"section": _sections(data)[rows], "row": rows - 1,
                               "key": data.headers.tid[rows].astype(np.int64)})
        before = _as_of(events, _versions(data), "key", ("pid",), "v.")["v.alive"].to_numpy()
        none[rows[~before]] = True
    return none


_time_field("evt.latency.s", "whole seconds of evt.latency", False,
            lambda data, arg: (_evt_latency(data, arg) // 10**9).alias("evt.latency.s"))
_time_field("evt.latency.ns", "fractional part (ns) of evt.latency", True,
            lambda data, arg: (_evt_latency(data, arg) % 10**9).alias("evt.latency.ns"))


def human_time(ns):
    """A duration as sysdig's tostring_nice prints RELTIME: 653ns, 1.31us, 12us, 1.00ms, 22ms,
    2.16s (truncated, not rounded)."""
    if ns >= 10**9:
        return "%d.%02ds" % (ns // 10**9, ns % 10**9 // 10**7)
    if ns >= 10**7:
        return "%dms" % (ns // 10**6)
    if ns >= 10**6:
        return "%d.%02dms" % (ns // 10**6, ns % 10**6 // 10**4)
    if ns >= 10**4:
        return "%dus" % (ns // 10**3)
    if ns >= 10**3:
        return "%d.%02dus" % (ns // 10**3, ns % 10**3 // 10)
    return "%dns" % ns


def _latency_human(data, rows, last=""):
    """The text of each row, the rows taken in order, `last` the text before them."""
    latency = _evt_latency(data, None).gather(rows).to_list()
    stale = _no_thread(data)[rows]
    out = []
    for value, keep in zip(latency, stale):
        if keep:
            out.append(last)
        elif value is None:
            out.append(None)
        else:
            last = human_time(value)
            out.append(last)
    return pl.Series("evt.latency.human", out, dtype=pl.String), last


def _latency_human_printed(data, arg, rows):
    # the field instance keeps its last text from one printed batch (or chunk) to the next
    from .chunks import printed_end, printed_start
    key = "evt.latency.human printed"
    rows = np.asarray(rows, dtype=np.int64)
    out, last = _latency_human(data, rows, printed_start(data, key, rows, ""))
    printed_end(data, key, rows, last)
    return out


@field("evt.latency.human", "CHARBUF", "string", "evt.latency as text, e.g. 10.3ms",
       per_row=_latency_human_printed)
def _evt_latency_human(data, arg):
    from .chunks import carried_end, carried_start, own_rows
    key = "evt.latency.human read"
    rows = own_rows(data)
    start = carried_start(data, key, "")
    texts, last = _latency_human(data, rows, start)
    carried_end(data, key, start, last)
    out = pl.Series("evt.latency.human", [None] * len(data), dtype=pl.String)
    return out.scatter(rows, texts)


@field("evt.around", "UINT64", "around",
       "filter only: evt.around[T]=D is true for events within D ms of the time T (ns)",
       "required")
def _evt_around(data, arg):
    return pl.Series("evt.around", data.headers.ts, dtype=pl.UInt64)


# -- event-table and parameter fields ----------------------------------------------------------

def _info_per_type(attribute):
    values = sysdig0293.per_type(attribute)
    return np.array(values + [0] * (65536 - len(values)), dtype=np.int64)


@field("syscall.type", "CHARBUF", "string",
       "the syscall name (as evt.type), unset for switch and internal events")
def _syscall_type(data, arg):
    # sysdig 0.29.3 tests the switch event id and, by a slip, EC_INTERNAL (256) against the
    # event *flags*, where 256 is EF_SKIPPARSERESET: the events with that flag are unset
    types = data.headers.type
    flags = _info_per_type("flags")[types]
    unset = (flags & int(EF.SKIPPARSERESET) != 0) | np.isin(types, _switch_ids())
    return data.type_names.set(pl.Series(unset), None).alias("syscall.type")


def _switch_ids():
    return [e.id for e in eventtable.sysdig_0293() if e.name == "switch" and len(e.params) > 1]


@field("evt.io_dir", "CHARBUF", "string", "'read' or 'write' for events that read or write fds")
def _evt_io_dir(data, arg):
    types = data.headers.type
    write = _flag_per_type(EF.WRITES_TO_FD)[types]
    read = _flag_per_type(EF.READS_FROM_FD)[types]
    text = pl.Series("evt.io_dir", np.where(write, "write", "read"), dtype=pl.String)
    return text.set(pl.Series(~(write | read)), None)


def _buflen_printed(data, arg, rows):
    return _buflen(data, printing=True).gather(rows)


@field("evt.buflen", "UINT64", "uint",
       "bytes read or written by a successful I/O exit event on a known fd",
       per_row=_buflen_printed)
def _evt_buflen(data, arg):
    return _buflen(data, printing=False)


def _buflen(data, printing):
    types = data.headers.type
    io = (_info_per_type("category")[types] & int(EC.IO_READ)) != 0  # EC_IO_BASE
    exits = types % 2 == 1
    # sysdig needs the event's own fd info, which an exit only gets from its enter event
    has_fd = _column(data, "fds", "fd.type").is_not_null().to_numpy() & (data.enter_rows >= 0)
    if not printing:
        # sysdig 0.29.3 runs the filter on an exit event before parsing it unless the event
        # modifies state (parsers.cpp process_event): the event has no fd info yet then, so
        # evt.buflen has no value in filters on read, readv, writev, ioctl... exits. Only the
        # write exit looks its fd up early (to spot tracer fds). -p runs after parsing.
        flags = _info_per_type("flags")[types]
        early = ((flags & int(EF.MODIFIES_STATE)) == 0) & (types != 9)  # 9: write exit
        has_fd &= ~early
    res = data.param("res")
    if res.dtype == pl.Null:
        return pl.Series("evt.buflen", [None] * len(data), dtype=pl.UInt64)
    res = res.cast(pl.Int64, strict=False)
    ok = pl.Series(io & exits & has_fd) & (res >= 0).fill_null(False)
    return pl.select(pl.when(ok).then(res)).to_series().cast(pl.UInt64).alias("evt.buflen")


def _failed_mask(data):
    """sysdig's extract_error_count: a `res` parameter < 0, or (no `res`) the `fd` of an exit
    that creates one < 0. Null where there is neither."""
    res = data.param("res")
    res = pl.Series([None] * len(data), dtype=pl.Int64) if res.dtype == pl.Null \
        else res.cast(pl.Int64, strict=False)
    fd = data.param("fd")
    fd = pl.Series([None] * len(data), dtype=pl.Int64) if fd.dtype == pl.Null \
        else fd.cast(pl.Int64, strict=False)
    creates = pl.Series(_flag_per_type(EF.CREATES_FD)[data.headers.type]
                        & (data.headers.type % 2 == 1))
    return pl.select(pl.when(res.is_not_null()).then(res < 0)
                     .when(creates & fd.is_not_null()).then(fd < 0)).to_series()


@field("evt.count.error", "UINT32", "uint", "1 for events that returned an error")
def _evt_count_error(data, arg):
    failed = _failed_mask(data)
    return pl.select(pl.when(failed).then(pl.lit(1, pl.UInt32))).to_series() \
        .alias("evt.count.error")


@field("evt.count.exit", "UINT32", "uint", "1 for exit events")
def _evt_count_exit(data, arg):
    ones = pl.Series("evt.count.exit", np.ones(len(data), dtype=np.uint32))
    return ones.set(pl.Series(data.headers.type % 2 == 0), None)


def _open_flag_field(name, bit, what):
    @field(name, "BOOL", "bool", f"true for open/openat events that open the path for {what}")
    def compute(data, arg):
        # the events sysdig 0.29.3 looks at: open exit, the old openat's *enter*, openat exit
        types = data.headers.type
        table = eventtable.sysdig_0293()
        ids = [3] + [e.id for e in table if e.name == "openat" and
                     ((e.is_enter and len(e.params) == 4 and e.id < 300) or
                      (not e.is_enter and len(e.params) > 1))]
        flags = data.param("flags")
        if flags.dtype == pl.Null:
            return pl.Series(name, np.zeros(len(data), dtype=bool))
        bits = (flags.cast(pl.Int64, strict=False) & bit) != 0
        return (pl.Series(np.isin(types, ids)) & bits.fill_null(False)).alias(name)
    return compute


_open_flag_field("evt.is_open_read", 1, "reading")    # PPM_O_RDONLY
_open_flag_field("evt.is_open_write", 2, "writing")   # PPM_O_WRONLY


# -- process ancestry (the thread versions of query.threads, looked up as of each event) -------

def _versions(data):
    return data.thread_versions


def _sections(data):
    starts = [s.first_event for s in data.capture.sections] or [0]
    return (np.searchsorted(np.asarray(starts), np.arange(len(data)), side="right") - 1) \
        .astype(np.int32)


def _thread_at(data, tids, columns=("comm", "pid", "ptid")):
    """The thread `tids[i]` (null: none) as sysdig's table holds it at event i: a frame with
    'alive' and the state columns (comm '<NA>' for a thread sysdig made up)."""
    from .threads import _as_of
    events = pl.DataFrame({"section": _sections(data), "row": np.arange(len(data)),
                           "key": pl.Series(tids, dtype=pl.Int64)})
    found = _as_of(events, _versions(data), "key", columns, "v.")
    alive = found["v.alive"] & found["key"].is_not_null()
    out = found.select(alive.alias("alive"),
                       *[pl.col("v." + c).alias(c) for c in columns])
    if "comm" in columns:
        out = out.with_columns(pl.when(pl.col("alive")).then(pl.col("comm").fill_null("<NA>"))
                               .alias("comm"))
    return out


def _thread_valid(data):
    """Events with a thread (sysdig's tinfo not NULL)."""
    return data.thread_columns(["proc.pid"])["proc.pid"].is_not_null()


def _fake_container_rows(data):
    from .threads import _container_json_ids
    return np.isin(data.headers.type, _container_json_ids()) & (data.capture.counted)


def _ancestors(data, depth=None):
    """[level 0 (the main thread), level 1 (its parent), ...] as frames of alive/comm/pid/ptid
    per event, walking get_parent_thread (the thread whose tid is the ptid) until no event has
    one, or up to `depth` levels. A main thread sysdig does not know is made up (comm <NA>,
    pid = its tid, ptid -1); the made-up thread of a container event is its own main thread."""
    cache = data.__dict__.setdefault("_field_ancestors", [])
    if not cache:
        tids = pl.Series(data.headers.tid, dtype=pl.Int64)
        own = _thread_at(data, tids)
        valid = _thread_valid(data)
        main_tid = own["pid"]
        main = _thread_at(data, main_tid)
        is_main = own["alive"] & (own["pid"] == tids)
        fake = pl.Series(_fake_container_rows(data))
        names = data.thread_columns(["proc.name"])["proc.name"]
        level0 = pl.DataFrame({
            "alive": valid,
            "comm": pl.select(pl.when(fake).then(names).when(is_main).then(own["comm"])
                              .when(main["alive"]).then(main["comm"])
                              .otherwise(pl.lit("<NA>"))).to_series(),
            "pid": pl.select(pl.when(fake).then(pl.lit(-1, pl.Int64))
                             .when(is_main).then(own["pid"])
                             .when(main["alive"]).then(main["pid"])
                             .otherwise(main_tid)).to_series(),
            "ptid": pl.select(pl.when(fake).then(pl.lit(0, pl.Int64))
                              .when(is_main).then(own["ptid"])
                              .when(main["alive"]).then(main["ptid"])
                              .otherwise(pl.lit(-1, pl.Int64))).to_series(),
            "tid": pl.select(pl.when(fake).then(pl.lit(-1, pl.Int64)).when(is_main).then(tids)
                             .otherwise(main_tid)).to_series(),
        }).with_columns(pl.when(pl.col("alive")).then(pl.col(c)).alias(c)
                        for c in ("comm", "pid", "ptid", "tid"))
        cache.append(level0)
    while (depth is None or len(cache) <= depth) and cache[-1]["alive"].any() \
            and len(cache) < 256:
        last = cache[-1]
        parent_tid = pl.select(pl.when(last["alive"] & (last["ptid"] != -1))
                               .then(last["ptid"])).to_series()
        found = _thread_at(data, parent_tid)
        cache.append(found.with_columns(parent_tid.alias("tid")).with_columns(
            pl.when(pl.col("alive")).then(pl.col(c)).alias(c)
            for c in ("comm", "pid", "ptid", "tid")))
    return cache


def _ancestor_level(data, arg, what):
    n = _index_arg(arg, "proc.aname" if what == "comm" else "proc.apid")
    levels = _ancestors(data, n)
    if n >= len(levels):
        return pl.Series([None] * len(data), dtype=levels[0][what].dtype)
    return levels[n][what]


def _index_arg(arg, name):
    if arg is None:
        return 0
    text = arg.strip()
    if not text.isdigit():
        from .format import FormatError  # a ValueError the command line reports in one line
        raise FormatError(f"{name}[{arg}]: the argument must be a number (0 = the process)")
    return int(text)


def _ancestor_list(data, what):
    """Per event: the values of all the ancestors of its main thread, itself excluded (as
    traverse_parent_state visits them; a loop in the chain stops at the first repeat)."""
    levels = _ancestors(data)
    out = [[] for _ in range(len(data))]
    seen = [set() for _ in range(len(data))]
    for level in levels[1:]:
        alive = level["alive"].to_numpy()
        values = level[what].to_list()
        tids = level["tid"].to_list()
        for i in np.flatnonzero(alive):
            if tids[i] in seen[i]:
                continue
            seen[i].add(tids[i])
            out[i].append(str(values[i]))
    return out


def _ancestor_field(name, what, type_, description):
    def compute(data, arg):
        # kind 'any': the filter compiler matches any element. Without an index: all the
        # ancestors, self excluded (sysdig's compare_full_aname/apid); with [N]: the one
        # ancestor N levels up (0 = the process itself), as a one-element list (none: empty)
        if arg is None:
            values = _ancestor_list(data, what)
        else:
            one = _ancestor_level(data, arg, what).to_list()
            values = [[] if v is None else [str(v)] for v in one]
        return pl.Series(name, values, dtype=pl.List(pl.String))

    def per_row(data, arg, rows):
        # printed: proc.aname[N] the N-th ancestor; without [N] sysdig prints the process
        # itself (N = 0)
        return _ancestor_level(data, arg, what).gather(rows).alias(name)

    field(name, type_, "any", description, "optional", per_row=per_row)(compute)


_ancestor_field("proc.aname", "comm", "CHARBUF",
                "name of an ancestor: proc.aname[N] (0 = the process, 1 = its parent...); "
                "without [N] (filters) any ancestor's name matches")
_ancestor_field("proc.apid", "pid", "INT64",
                "pid of an ancestor: proc.apid[N] (0 = the process, 1 = its parent...); "
                "without [N] (filters) any ancestor's pid matches (compared as text)")


@field("proc.loginshellid", "INT64", "int",
       "pid of the oldest shell (a name ending in 'sh') among the process and its ancestors")
def _proc_loginshellid(data, arg):
    levels = _ancestors(data)
    result = pl.Series("proc.loginshellid", [None] * len(data), dtype=pl.Int64)
    seen = None
    for k, level in enumerate(levels):
        tid = level["tid"]
        if k:  # traverse_parent_state stops at a loop
            repeat = pl.Series([t in s for t, s in zip(tid.to_list(), seen)], dtype=pl.Boolean)
            level = level.with_columns(pl.col("alive") & ~repeat)
        shell = level["alive"] & level["comm"].str.ends_with("sh").fill_null(False)
        result = pl.select(pl.when(shell).then(level["pid"]).otherwise(result)).to_series()
        tids = tid.to_list()
        seen = [{t} for t in tids] if seen is None else \
            [s | {t} for s, t in zip(seen, tids)]
    return result.alias("proc.loginshellid")


@field("proc.pcmdline", "CHARBUF", "string", "the command line (name and args) of the parent")
def _proc_pcmdline(data, arg):
    tids = pl.Series(data.headers.tid, dtype=pl.Int64)
    own = _thread_at(data, tids)
    parent = _thread_at(data, pl.select(pl.when(own["alive"]).then(own["ptid"])).to_series(),
                        ("comm", "args"))
    text = pl.concat_str([parent["comm"], parent["args"].list.eval(
        pl.lit(" ") + pl.element()).list.join("")])
    ok = parent["alive"] & _thread_valid(data) & ~pl.Series(_fake_container_rows(data))
    return pl.select(pl.when(ok).then(text)).to_series().alias("proc.pcmdline")


@field("proc.args", "CHARBUF", "string", "the arguments of the process, joined by spaces")
def _proc_args(data, arg):
    args = data.thread_columns(["proc.args"])["proc.args"]
    if args.dtype == pl.String:
        return args
    return args.list.join(" ").alias("proc.args")


@field("proc.exeline", "CHARBUF", "string", "proc.exe, a space and proc.args")
def _proc_exeline(data, arg):
    exe = data.thread_columns(["proc.exe"])["proc.exe"]
    return pl.select(pl.concat_str([exe, pl.lit(" "), _proc_args(data, None)])).to_series() \
        .alias("proc.exeline")


@field("thread.ismain", "BOOL", "bool", "true for the main thread of a process (tid = pid)")
def _thread_ismain(data, arg):
    pid = data.thread_columns(["proc.pid"])["proc.pid"]
    fake = pl.Series(_fake_container_rows(data))
    return pl.select(pl.when(fake & pid.is_not_null()).then(True)
                     .otherwise(pid == pl.Series(data.headers.tid, dtype=pl.Int64))) \
        .to_series().alias("thread.ismain")


def _user_attribute(data, what):
    uid = data.thread_columns(["user.uid"])["user.uid"].cast(pl.Int64)
    users = data.capture.users
    frame = pl.DataFrame({"section": _sections(data), "uid": uid})
    if users.height == 0:
        return pl.Series([None] * len(data), dtype=pl.String)
    table = (users.select(pl.col("section").cast(pl.Int32), pl.col("uid").cast(pl.Int64),
                          pl.col(what)).unique(["section", "uid"], keep="first",
                                               maintain_order=True))
    return frame.join(table, on=["section", "uid"], how="left", maintain_order="left")[what]


@field("user.homedir", "CHARBUF", "string", "home directory of the user")
def _user_homedir(data, arg):
    return _user_attribute(data, "homedir").alias("user.homedir")


@field("user.shell", "CHARBUF", "string", "the user's shell")
def _user_shell(data, arg):
    return _user_attribute(data, "shell").alias("user.shell")


# -- fd fields ---------------------------------------------------------------------------------

field("fd.sockfamily", "CHARBUF", "string", "'ip' or 'unix' for sockets")(
    lambda data, arg: _column(data, "fds", "fd.sockfamily"))


@field("fd.uid", "CHARBUF", "string", "the thread id and the fd number, chained (13057 + 11)")
def _fd_uid(data, arg):
    num = _column(data, "fds", "fd.num")
    text = pl.select(pl.concat_str([pl.Series(data.headers.tid, dtype=pl.Int64).cast(pl.String),
                                    num.cast(pl.String)])).to_series()
    return text.set(pl.Series(_fake_container_rows(data)), None).alias("fd.uid")


@field("fd.is_server", "BOOL", "bool",
       "true if the process owning the fd is the server end: a listening socket, or a "
       "connected one whose server address is on a local interface")
def _fd_is_server(data, arg):
    # the fd entry each event shows, as query.fds.fd_columns finds it
    from . import fds
    state = fds.fd_state(data.capture)
    kind = _column(data, "fds", "fd.type")
    out = pl.Series("fd.is_server", [None] * len(data), dtype=pl.Boolean)
    rows = np.flatnonzero(kind.is_not_null().to_numpy())
    if not len(rows):
        return out
    shown = state.lastevent_fd[rows].copy()
    if state.info_fd:
        info = {r: f for r, f in state.info_fd.items()}
        shown = np.array([info.get(int(r), f) for r, f in zip(rows, shown)], dtype=np.int64)
    vid = state.lookup(rows, shown)
    found = vid >= 0
    got = state.versions.select("type", "dip")[np.maximum(vid, 0)]
    vtype = np.where(found, got["type"].to_numpy(), -1)
    dip = got["dip"].to_list()
    # sysdig's is_ipv4addr_in_local_machine, for a thread in a container: true when nothing
    # is known of the container yet; for a container with an address, is it that address;
    # for one whose events give none (0.0.0.0), is it any known container's address (so an
    # unset one matches), else the host rule. On the host: has an interface exactly it.
    # is_ipv6addr_in_local_machine: false in a container, else does an interface have the
    # same first 64 bits (so an unset address, ::, matches ::1). Containers are found in the
    # thread's cgroups (docker, CRI-O, containerd, podman), their addresses in the capture's
    # container events.
    import ipaddress
    from .fields_net import _container_ids
    container = _container_ids(data).gather(rows).to_list()
    container_ip, container_ips = _container_ips(data)
    ifaces = data.capture.interfaces
    local4, local6 = set(), set()
    if ifaces is not None and ifaces.height:
        for s, a in zip(ifaces["section"].to_list(), ifaces["addr"].to_list()):
            try:
                address = ipaddress.ip_address(a)
            except ValueError:
                continue
            if address.version == 4:
                local4.add((s, int(address)))
            else:
                local6.add((s, address.packed[:8]))
    section = _sections(data)[rows]
    values = []
    for t, d, s, cid, row in zip(vtype.tolist(), dip, section.tolist(), container,
                                 rows.tolist()):
        if t in fds.SERVER_SOCKETS:
            values.append(True)
        elif t in fds.CLIENT_SOCKETS:
            try:
                address = ipaddress.ip_address(d or ("::" if t == fds.IPV6_SOCK else "0.0.0.0"))
            except ValueError:
                values.append(False)
                continue
            verdict = _container_local(address, cid, row, container_ip, container_ips) \
                if cid else None
            if verdict is not None:
                values.append(verdict)
            elif address.version == 4:
                values.append((s, int(address)) in local4)
            else:
                values.append((s, address.packed[:8]) in local6)
        else:
            values.append(False)
    return out.scatter(rows, pl.Series(values, dtype=pl.Boolean))


def _container_local(address, cid, row, container_ip, container_ips):
    """is_*addr_in_local_machine for a thread in container `cid`: True or False, or None
    where sysdig falls back to the host's interfaces (see _fd_is_server)."""
    if address.version == 6:
        return False
    known = container_ip(cid, row)
    if known is None:
        return True
    if int(known):
        return known == address
    return True if address in container_ips(row) else None


def _container_ips(data):
    """Two lookups: (container id, row) -> the container's IPv4 address as the last container
    event up to that row gave it (0.0.0.0 when the event has none), or None: no event about it
    yet; row -> the addresses of every container known then."""
    import ipaddress

    from .fields_container import container_events
    seen = {}
    for row, cid, described in container_events(data):
        try:
            address = ipaddress.IPv4Address(described["ip"] or "0.0.0.0")
        except (ValueError, TypeError):
            continue
        seen.setdefault(cid, []).append((row, address))

    def lookup(cid, row):
        known = None
        for at, address in seen.get(cid, ()):
            if at > row:
                break
            known = address
        return known

    def every(row):
        return {lookup(cid, row) for cid in seen} - {None}
    return lookup, every


# More of the catalog, by theme (each module registers its fields with @field).
from . import fields_container, fields_net, fields_proc, fields_syslog  # noqa: E402,F401
