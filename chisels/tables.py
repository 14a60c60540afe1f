"""Table chisels: group the events that pass a filter by one or more key fields, add up a value
per group and print the largest groups (topfiles_*, topprocs_*, topconns, topports_server,
topscalls*, fd*_by), plus the ones that print a table of their own making (fdcount_by, the
per-interval iobytes*, bottlenecks).

The layout is sysdig's: a header of 20-character columns (value first, then the keys), a rule
of 80 dashes, then one row per group, biggest first. Every key column but the last is cut to
20 characters; the last one is printed whole.

They read the capture a chunk at a time: each chunk adds its groups' sums to those of the
chunks before (in the order the groups first appeared, which decides among equal sums), and
the table is printed after the capture's last chunk. Sums are of whole numbers (bytes, ns,
counts), so adding them chunk by chunk gives the very sums of the whole capture."""
import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import polars as pl

from . import Arg, ChiselError, chisel
from .io import _two_decimals, chisel_rows, format_bytes, format_time_interval

COLUMN = 20
RULE = "-" * 80

# Events that move data on files / on IPv4-IPv6 sockets (either direction, enter or exit:
# only exits carry a result, so only they add bytes).
FILE_IO = "fd.type=file and evt.is_io=true"
NET_IO = "(fd.type=ipv4 or fd.type=ipv6) and evt.is_io=true"


def extend(text, width=COLUMN):
    """A column of exactly `width` bytes (Lua measures strings in bytes): padded, or cut to
    width - 1 plus one space so that a long value never runs into the next column."""
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) < width:
        return text + " " * (width - len(raw))
    return raw[:width - 1].decode("utf-8", "ignore") + " " if width > 0 else ""


def lua_number(value):
    """A number as Lua's tostring() prints it (sysdig's chisels print sums and numeric keys
    that way): like C's %.14g, except that LuaJIT rounds an exact tie away from zero
    (123456789012345 -> 1.2345678901235e+14 where glibc gives ...234e+14)."""
    value = float(value)
    if not math.isfinite(value):
        return {"inf": "inf", "-inf": "-inf"}.get(str(value), "nan")
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    exact = Decimal(value)
    rounded = exact.quantize(Decimal(1).scaleb(exact.adjusted() - 13), ROUND_HALF_UP)
    exponent = rounded.adjusted()
    if exponent != exact.adjusted():   # 9.99...95 rounded up to the next power of ten
        rounded = exact.quantize(Decimal(1).scaleb(exponent - 13), ROUND_HALF_UP)
    digits = rounded.as_tuple().digits
    sign = "-" if value < 0 else ""
    if -4 <= exponent < 14:
        text = format(abs(rounded), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return sign + text
    mantissa = "".join(map(str, digits[:14])).rstrip("0") or "0"
    if len(mantissa) > 1:
        mantissa = mantissa[0] + "." + mantissa[1:]
    return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"


def format_percent(value, timedelta):
    """The share of the capture's duration, as the CPU% column shows it."""
    if timedelta > 0:
        return _two_decimals(value / timedelta * 100) + "%"
    return "0.00%"


def _key_text(series, kind):
    """The keys as sysdig's Lua chisels hold them: numbers as tostring() prints them,
    everything else (booleans included: true/false) as sysdig renders the field."""
    from scaptool.query.format import field_texts
    if series.dtype.is_numeric() and kind not in ("bool", "ip"):
        values = [None if v is None else lua_number(v) for v in series.to_list()]
    else:
        values = field_texts(series, kind, None)
    return pl.Series(series.name, values, dtype=pl.String)


def key_frame(run, rows, keys, value=None):
    """A frame of the keys at `rows` as text (key_0, key_1...), what sysdig groups them by
    (`group`), and the value field as `v`.

    sysdig's table is keyed by the Lua value: a lone numeric key stays a number (a double),
    so two values that print alike (1.6905572628927e+18) are still two rows; several keys
    are joined into one string, i.e. grouped by their texts. evt.latency has no value on
    procinfo events in sysdig (so they never add time)."""
    from scaptool.query.fields import lookup
    frame = run.fields(rows, list(keys) + ([value] if value else []))
    kinds = [lookup(k)[0].kind for k in keys]
    columns = [_key_text(frame[k], kind).alias(f"key_{i}")
               for i, (k, kind) in enumerate(zip(keys, kinds))]
    raw = frame[keys[0]] if len(keys) == 1 else None
    if raw is not None and raw.dtype.is_numeric() and kinds[0] not in ("bool", "ip"):
        columns.append(raw.cast(pl.Float64).alias("group"))
    else:
        columns.append(pl.DataFrame(columns).select(
            pl.concat_str([pl.col(f"key_{i}") for i in range(len(keys))],
                          separator="\x01\x01").alias("group")).to_series())
    if value:
        # sums are Lua numbers (doubles) in sysdig
        v = frame[value].cast(pl.Float64) if len(rows) else pl.Series([], dtype=pl.Float64)
        if value == "evt.latency" and len(rows):
            v = pl.select(pl.when(pl.Series(_is_procinfo(run, rows))).then(None)
                          .otherwise(v)).to_series()
        columns.append(v.alias("v"))
    return pl.DataFrame(columns)


def _boolean_key(keys):
    """Is one of the keys a boolean field? sysdig's table printing cannot handle one: its
    walk over the sorted keys stops at a false key, and a true one fails to be split into
    columns, ending the output (silently). So such a table has no rows."""
    from scaptool.query.fields import lookup
    return any(lookup(k)[0].kind == "bool" for k in keys)


def _is_procinfo(run, rows):
    """Per row: is it a procinfo event?"""
    from scaptool.scap import eventtable
    table = eventtable.sysdig_0293()
    procinfo = next(i for i in range(len(table)) if table[i].name == "procinfo")
    return np.asarray(run.capture.headers.type)[rows] == procinfo


def _render(units, value, timedelta):
    if units == "bytes":
        return format_bytes(value)
    if units == "time":
        return format_time_interval(int(value))
    if units == "timepct":
        return format_percent(value, timedelta)
    return lua_number(value)


def print_table(run, table, key_descs, value_desc, units, timedelta=0):
    """Print the sorted table (columns key_0..key_n as text, then `value`) as sysdig does."""
    run.line(extend(value_desc) + "".join(extend(d) for d in key_descs))
    run.line(RULE)
    keys = [c for c in table.columns if c != "value"]
    for row in table.iter_rows(named=True):
        parts = [row[k] for k in keys]
        text = "".join(extend(p) for p in parts[:-1]) + parts[-1]
        run.line(extend(_render(units, row["value"], timedelta)) + text)


def group_sum(frame, keys, value, *, positive_only=True):
    """Sum `value` per group (key_frame's `group`), with the keys' texts; rows missing a key
    are left out, and so are rows whose value is missing or, like sysdig's table_generator
    does, not above zero. Biggest sums first."""
    return ranked(partial_sums(frame, keys, value, positive_only=positive_only))


def partial_sums(frame, keys, value, *, positive_only=True, before=None):
    """The sums of group_sum, unsorted: one row per group (`group`, the keys' texts, `value`)
    in the order the groups first appear; `before`, sums of the same kind for the events
    before these, goes first and adds to them."""
    frame = frame.drop_nulls(keys + ["group"])
    frame = frame.filter(pl.col(value).is_not_null())
    if positive_only:
        frame = frame.filter(pl.col(value) > 0)
    sums = (frame.group_by("group", maintain_order=True)
            .agg(*[pl.col(k).first() for k in keys],
                 pl.col(value).cast(pl.Float64).sum().alias("value")))
    if before is None:
        return sums
    return (pl.concat([before, sums], how="vertical_relaxed")
            .group_by("group", maintain_order=True)
            .agg(*[pl.col(k).first() for k in keys], pl.col("value").sum()))


def ranked(sums):
    """partial_sums as a table: biggest sums first, the first seen first among equals."""
    return sums.drop("group").sort("value", descending=True, maintain_order=True)


def table_generator(run, keys, key_descs, value, value_desc, chisel_filter, top, units):
    """sysdig's generic table: filter, group by the key fields, sum the value, print top N
    (all when top is 0) once the capture is read. The sums go on from one chunk to the next
    and, like sysdig's, from one capture to the next (run.carry)."""
    rows = chisel_rows(run, chisel_filter or None)
    texts = key_frame(run, rows, keys, value)
    run.carry["table_sums"] = partial_sums(texts, [f"key_{i}" for i in range(len(keys))], "v",
                                           before=run.carry.get("table_sums"))
    if not run.final:
        return
    table = ranked(run.carry["table_sums"])
    if top:
        table = table.head(top)
    if _boolean_key(keys):
        table = table.clear()
    print_table(run, table, key_descs, value_desc, units)


# With -pc, sysdig's table chisels add the container to their keys: processes by (name, pid
# on the host, thread id in the container, container), the others by their key and the
# container name, before or after it as each chisel has it.
_PROCESS_KEYS = (["proc.name", "proc.pid", "thread.vtid", "container.name"],
                 ["Process", "Host_pid", "Container_pid", "container.name"])
_CONTAINER_FIRST, _CONTAINER_LAST = "first", "last"


def container_keys(keys, key_descs, where):
    """The keys (and their column titles) of a table chisel run with -pc."""
    if where == "process":
        return _PROCESS_KEYS
    if where == _CONTAINER_FIRST:
        return ["container.name", *keys], ["container.name", *key_descs]
    return [*keys, "container.name"], [*key_descs, "container.name"]


# name -> (key_descs, value_desc, top, units) of the chisels that are one table_generator
# call (key_descs None: the key is the chisel's argument), whose sums from many captures add
# up into one table (chisels/fleet.py)
TABLES = {}


def _simple(name, category, description, keys, key_descs, value, value_desc, chisel_filter,
            top, units, details="", container=_CONTAINER_LAST):
    """Register a chisel that is one table_generator call."""
    TABLES[name] = (key_descs, value_desc, top, units)
    @chisel(name, category, description, details=details, at_end=True, chunked=True)
    def run_table(run):
        shown, descs = container_keys(keys, key_descs, container) if run.print_container \
            else (keys, key_descs)
        table_generator(run, shown, descs, value, value_desc, chisel_filter, top, units)
    return run_table


_simple("topfiles_bytes", "I/O", "Top files by R+W bytes",
        ["fd.name"], ["Filename"], "evt.rawarg.res", "Bytes", FILE_IO, 10, "bytes",
        "The 10 files that the most bytes were read from or written to.",
        container=_CONTAINER_FIRST)
_simple("topfiles_time", "I/O", "Top files by time",
        ["fd.name"], ["Filename"], "evt.latency", "Time", FILE_IO, 10, "time",
        "The 10 files on which processes spent the most time reading or writing.")
_simple("topfiles_errors", "Errors", "Top files by number of errors",
        ["fd.name"], ["Filename"], "evt.count", "#Errors",
        "fd.type=file and evt.failed=true", 100, "none",
        "The files with the most failed system calls (up to 100).")
_simple("topprocs_file", "I/O", "Top processes by R+W disk bytes",
        ["proc.name", "proc.pid"], ["Process", "PID"], "evt.rawarg.res", "Bytes", FILE_IO, 10,
        "bytes", "The 10 processes that read or wrote the most bytes to files.",
        container="process")
_simple("topprocs_net", "Net", "Top processes by network I/O",
        ["proc.name", "proc.pid"], ["Process", "PID"], "evt.rawarg.res", "Bytes", NET_IO, 100,
        "bytes", "The processes that sent or received the most bytes on IPv4/IPv6 sockets "
        "(up to 100).", container="process")
_simple("topprocs_errors", "Errors", "top processes by number of errors",
        ["proc.name", "proc.pid"], ["Process", "PID"], "evt.count", "#Errors",
        "evt.failed=true", 100, "none",
        "The processes with the most failed system calls (up to 100).", container="process")
_simple("topconns", "Net", "Top network connections by total bytes",
        ["fd.l4proto", "fd.name"], ["Proto", "Conn"], "evt.rawarg.res", "Bytes", NET_IO, 30,
        "bytes", "The 30 network connections that carried the most bytes, both ways.",
        container=_CONTAINER_FIRST)
_simple("topports_server", "Net", "Top TCP/UDP server ports by R+W bytes",
        ["fd.sport"], ["Srv Port"], "evt.rawarg.res", "Bytes", NET_IO, 100, "bytes",
        "The server ports of the connections that carried the most bytes (up to 100).")
_simple("topscalls", "Performance", "Top system calls by number of calls",
        ["evt.type"], ["Syscall"], "evt.count", "# Calls", "evt.type!=switch", 30, "none",
        "The 30 most frequent event types (enter and exit events count apart); a filter "
        "narrows it to a process, thread or file.")
_simple("topscalls_time", "Performance", "Top system calls by time",
        ["evt.type"], ["Syscall"], "evt.latency", "Time", "", 30, "time",
        "The 30 system calls that took the most time in all; a filter narrows it to a "
        "process, thread or file.")


_KEY_ARG = (Arg("key", "string", "the field whose values make the rows of the table"),)


def key_argument(run):
    """The key field named by the chisel's argument (an error if no such field)."""
    from scaptool.query.fields import UnknownFieldError, lookup
    key = run.arg("key")
    try:
        lookup(key)
    except UnknownFieldError:
        raise ChiselError(f"chisel requesting nonexistent field {key}") from None
    return key


def _keyed(name, description, value, value_desc, chisel_filter, top, units, details):
    TABLES[name] = (None, value_desc, top, units)
    @chisel(name, "I/O", description, args=_KEY_ARG, details=details, at_end=True,
            chunked=True)
    def run_table(run):
        key = key_argument(run)
        table_generator(run, [key], [key], value, value_desc, chisel_filter, top, units)
    return run_table


_keyed("fdbytes_by", "I/O bytes, aggregated by an arbitrary filter field", "evt.rawarg.res",
       "Bytes", "evt.is_io=true and evt.failed=false", 30, "bytes",
       "Groups the bytes read and written by the value of any field (the key), and shows the "
       "30 keys with the most, e.g. the processes or ports with the most traffic.")
_keyed("fdtime_by", "FD time group by", "evt.latency", "Time", "evt.is_io=true", 10, "time",
       "Groups the time spent in I/O calls by the value of any field (the key), and shows the "
       "10 keys with the most, e.g. the processes or files that waited longest on I/O.")


# -- topprocs_cpu ------------------------------------------------------------------------------

def thread_cpu(run, rows, last=None):
    """thread.cpu at the procinfo events `rows`: the ticks of user+system CPU the thread used
    since its previous procinfo event among those rows (0 for its first one, or when the
    previous total was 0), at most 100. `last`: {tid: total} of each thread's last procinfo
    event in the chunks before (updated with these rows')."""
    capture = run.capture
    tids = np.asarray(capture.headers.tid)[rows].astype(np.int64)
    usr = capture.param("cpu_usr", rows=rows).cast(pl.UInt64).fill_null(0)
    sys_ = capture.param("cpu_sys", rows=rows).cast(pl.UInt64).fill_null(0)
    frame = pl.DataFrame({"tid": tids, "order": np.arange(len(rows)),
                          "total": (usr + sys_)})
    frame = frame.with_columns(pl.col("total").shift(1).over("tid").alias("last"))
    if last is not None:
        if last:   # a thread's first procinfo here follows its last one in a chunk before
            before = pl.DataFrame({"tid": list(last), "before": list(last.values())},
                                  schema={"tid": pl.Int64, "before": pl.UInt64})
            frame = frame.join(before, on="tid", how="left").with_columns(
                pl.col("last").fill_null(pl.col("before"))).drop("before")
        latest = frame.sort("order").group_by("tid").agg(pl.col("total").last())
        last.update(latest.iter_rows())
    # the difference is taken on unsigned 64-bit numbers: a total that went down wraps to a
    # huge value, which the cap turns into 100
    delta = (pl.col("total") - pl.col("last")).cast(pl.Float64)
    frame = frame.with_columns(
        pl.when(pl.col("last").is_null() | (pl.col("last") == 0)).then(0.0)
        .otherwise(pl.min_horizontal(delta, pl.lit(100.0))).alias("cpu"))
    return frame.sort("order")["cpu"]


def _capture_bounds(run):
    """(first, last) timestamp of the events sysdig reads in the chunks so far (their
    difference is what its chisels get as the capture's duration at the end); None before
    any."""
    rows = chisel_rows_all(run)
    bounds = run.state.get("bounds")
    if len(rows):
        ts = np.asarray(run.capture.headers.ts)[rows]
        bounds = (bounds[0] if bounds else int(ts[0]), int(ts[-1]))
        run.state["bounds"] = bounds
    return bounds


def chisel_rows_all(run):
    """Every event sysdig reads from the file, whatever the filters."""
    saved = run.user_filter
    run.user_filter = ""
    try:
        return chisel_rows(run)
    finally:
        run.user_filter = saved


@chisel("topprocs_cpu", "CPU Usage", "Top processes by CPU usage",
        details="The 10 processes that used the most CPU, as a share of the capture's "
                "duration, from the CPU counters of the procinfo events.", at_end=True,
        chunked=True)
def topprocs_cpu(run):
    rows = chisel_rows(run, "evt.type=procinfo")
    # (its container pid is the process's, where the other tables show the thread's)
    keys, descs = (["proc.name", "proc.pid", "proc.vpid", "container.name"],
                   _PROCESS_KEYS[1]) if run.print_container else (["proc.name", "proc.pid"],
                                                                  ["Process", "PID"])
    texts = key_frame(run, rows, keys)
    last = run.state.setdefault("cpu_totals", {})
    cpu = thread_cpu(run, rows, last) if len(rows) else pl.Series([], dtype=pl.Float64)
    texts = texts.with_columns((cpu * 10_000_000).alias("v"))
    # unlike the generic table, groups that used no CPU are kept (at 0.00%); the counts are
    # the capture's own (not carried from the captures before)
    run.state["sums"] = partial_sums(texts, [f"key_{i}" for i in range(len(keys))], "v",
                                     positive_only=False, before=run.state.get("sums"))
    span = _capture_bounds(run)
    if run.final:
        print_table(run, ranked(run.state["sums"]).head(10), descs, "CPU%", "timepct",
                    span[1] - span[0] if span else 0)


# -- fdcount_by --------------------------------------------------------------------------------

@chisel("fdcount_by", "I/O", "FD count, aggregated by an arbitrary filter field", args=_KEY_ARG,
        details="Counts the distinct file descriptors (number and name) that the events of "
                "each value of the key field used, e.g. the connections per process or per "
                "IP endpoint. Prints every key, most FDs first, as `key<TAB>count`.", at_end=True,
        chunked=True)
def fdcount_by(run):
    key = key_argument(run)
    rows = chisel_rows(run)
    frame = key_frame(run, rows, [key])
    extra = run.fields(rows, ["fd.num", "fd.name"])
    frame = frame.with_columns(extra["fd.num"].alias("num"),
                               extra["fd.name"].cast(pl.String).alias("name"))
    # fd 0 and fds without a name do not count; sysdig tells FDs apart by the number and the
    # name written one after the other (no separator, so "1"+"2x" is "12"+"x")
    frame = frame.filter(pl.col("key_0").is_not_null() & (pl.col("num") > 0)
                         & pl.col("name").is_not_null() & (pl.col("name") != ""))
    frame = frame.select("group", "key_0",
                         (pl.col("num").cast(pl.String) + pl.col("name")).alias("fd"))
    # each key's distinct fds, kept from one chunk to the next and, like sysdig's, from one
    # capture to the next; in the order they first appeared
    if "key_fds" in run.carry:
        frame = pl.concat([run.carry["key_fds"], frame], how="vertical_relaxed")
    frame = frame.unique(["group", "fd"], keep="first", maintain_order=True)
    run.carry["key_fds"] = frame
    if not run.final:
        return
    counts = (frame
              .group_by("group", maintain_order=True)
              .agg(pl.col("key_0").first(), pl.col("fd").n_unique().alias("count"))
              .sort("count", descending=True, maintain_order=True))
    for _, k, count in counts.iter_rows():
        if k == "false" and _boolean_key([key]):
            break  # sysdig's walk over the sorted keys ends at a key that is false
        run.line(f"{k}\t{count}")


# -- iobytes, iobytes_file, iobytes_net --------------------------------------------------------

SECOND = 1_000_000_000


def per_second_io(run, chisel_filter):
    """sysdig's once-a-second report of the bytes read and written by the events that pass
    `chisel_filter`. Reading a file, the report comes from the first event (passing the user's
    filter) of each new second, before that event counts, stamped with its time; the first
    event only starts the clock, and what follows the last report is never printed. The
    second of the last event and the sums of the second still open go on to the next chunk."""
    every = chisel_rows(run)
    if len(every) == 0:
        return
    ts = np.asarray(run.capture.headers.ts)[every].astype(np.int64)
    second = ts - ts % SECOND
    before = run.state.get("second", int(second[0]))
    report = second != np.r_[before, second[:-1]]
    run.state["second"] = int(second[-1])
    period = np.cumsum(report)    # which report an event's bytes go to (0: the open one)
    counted = np.zeros(len(every), dtype=bool)
    counted[np.searchsorted(every, chisel_rows(run, chisel_filter))] = True
    fields = run.fields(every[counted], ["evt.rawarg.res", "evt.is_io_read"])
    frame = pl.DataFrame({"period": period[counted],
                          "bytes": fields["evt.rawarg.res"].cast(pl.Float64),
                          "read": fields["evt.is_io_read"].fill_null(False)})
    frame = frame.filter(pl.col("bytes") > 0)
    sums = frame.group_by("period").agg(
        pl.col("bytes").filter(pl.col("read")).sum().alias("in"),
        pl.col("bytes").filter(~pl.col("read")).sum().alias("out"),
        pl.col("bytes").sum().alias("tot"))
    sums = {p: (i, o, t) for p, i, o, t in sums.iter_rows()}
    # (whole numbers of bytes: the chunks' sums add up to the whole second's exactly)
    sums[0] = tuple(a + b for a, b in zip(run.state.get("open", (0, 0, 0)),
                                          sums.get(0, (0, 0, 0))))
    at = np.flatnonzero(report)
    run.state["open"] = sums.get(len(at), (0, 0, 0))
    times = run.texts(every[at], ["evt.time.s"])["evt.time.s"]
    for k, time in enumerate(times):
        got, put, total = sums.get(k, (0, 0, 0))
        run.line(f"{time} in:{lua_number(got)} out:{lua_number(put)} tot:{lua_number(total)}")


@chisel("iobytes", "I/O", "Sum of I/O bytes on any type of FD",
        details="Every second, the bytes read and written on any kind of FD (files, sockets, "
                "pipes...).", chunked=True)
def iobytes(run):
    per_second_io(run, "evt.is_io=true")


@chisel("iobytes_file", "I/O", "Sum of file I/O bytes",
        details="Every second, the bytes read from and written to files.", chunked=True)
def iobytes_file(run):
    per_second_io(run, "evt.is_io=true and fd.type=file")


@chisel("iobytes_net", "Net", "Show total network I/O bytes",
        details="Every second, the bytes read from and written to the network.", chunked=True)
def iobytes_net(run):
    per_second_io(run, "evt.is_io=true and (fd.type=ipv4 or fd.type=ipv6)")


# -- bottlenecks -------------------------------------------------------------------------------

SLOWEST = 10


@chisel("bottlenecks", "Performance", "Slowest system calls",
        details=f"The {SLOWEST} system calls that took longest to return, each printed after "
                "the last call start (latency 0) its thread made before it returned.", at_end=True,
        chunked=True)
def bottlenecks(run):
    """The slowest calls so far (their lines, and their start's) and each thread's last start
    (its line, for a slow call of a later chunk) go from one chunk to the next."""
    top = run.state.setdefault("slowest", [])   # (-latency, reading row, start line, line)
    last_start = run.state.setdefault("last_start", {})
    rows = chisel_rows(run)
    if len(rows):
        _slowest_here(run, rows, top, last_start)
    if run.final:
        for _, _, start, line in top:
            run.line(start if start is not None else "nil")   # Lua prints a missing one so
            run.line(line)


def _slowest_here(run, rows, top, last_start):
    fields = run.fields(rows, ["evt.latency", "thread.tid", "evt.type"])
    latency = pl.select(pl.when(pl.Series(_is_procinfo(run, rows))).then(None)
                        .otherwise(fields["evt.latency"])).to_series()
    frame = pl.DataFrame({"pos": np.arange(len(rows)), "lat": latency,
                          "tid": fields["thread.tid"], "type": fields["evt.type"]})
    frame = frame.filter(pl.col("type") != "switch")
    # a zero latency (a call's start, or a return sysdig could not pair) becomes the thread's
    # last start; a positive one competes for the top places, the earlier first among equals
    starts = frame.filter(pl.col("lat") == 0).select(pl.col("pos").alias("start"), "tid")
    slow = (frame.filter(pl.col("lat") > 0).sort("lat", descending=True, maintain_order=True)
            .head(SLOWEST))
    order = run.reading_rows(rows)
    # the calls of this chunk that make it among the slowest of the capture so far
    places = sorted([(-lat, int(order[pos]), pos) for pos, lat in
                     zip(slow["pos"].to_list(), slow["lat"].to_list())] +
                    [(lat, at, None) for lat, at, _, _ in top])[:SLOWEST]
    chosen = [pos for _, _, pos in places if pos is not None]
    found = {}
    if chosen:
        slow = (slow.filter(pl.col("pos").is_in(chosen)).sort("pos")
                .join_asof(starts.with_columns(pl.col("start").alias("at")), left_on="pos",
                           right_on="at", by="tid", strategy="backward",
                           check_sortedness=False))
        start_pos = [p for p in slow["start"].to_list() if p is not None]
        lines = _bottleneck_lines(run, rows[np.r_[slow["pos"].to_numpy(),
                                                  np.asarray(start_pos, dtype=np.int64)]])
        start_line = dict(zip(start_pos, lines[slow.height:]))
        for i, (pos, tid, start) in enumerate(slow.select("pos", "tid", "start").iter_rows()):
            # no start before it here: its thread's last one in the chunks before, if any
            found[pos] = (start_line[start] if start is not None else last_start.get(tid),
                          lines[i])
    old = {at: (start, line) for _, at, start, line in top}
    top[:] = [(lat, at, *(found[pos] if pos is not None else old[at]))
              for lat, at, pos in places]
    # each thread's last start, for the slow calls of the chunks after this one
    if starts.height:
        last = starts.group_by("tid").agg(pl.col("start").max())
        lines = _bottleneck_lines(run, rows[last["start"].to_numpy()])
        last_start.update(zip(last["tid"].to_list(), lines))


def _bottleneck_lines(run, rows):
    """The line of each event: `num) S.NNNNNNNNN proc (tid) DIR type args`."""
    values = run.fields(rows, ["evt.num", "evt.latency", "thread.tid"])
    texts = run.texts(rows, ["proc.name", "evt.type", "evt.args"])
    out = []
    for i in range(len(rows)):
        lat = values["evt.latency"][i] or 0
        direction = "<" if lat > 0 else ">"
        out.append(f"{values['evt.num'][i]}) {lat // SECOND}.{lat % SECOND:09d} "
                   f"{texts['proc.name'][i] or ''} ({values['thread.tid'][i]}) {direction} "
                   f"{texts['evt.type'][i]} {texts['evt.args'][i] or ''}")
    return out
