"""Performance chisels: how long processes lived (proc_exec_time) and which file, network or
any system calls took longer than a threshold (fileslower, netlower, scallslower).

They print as they read, a chunk at a time: the headers with the first chunk, each chunk's
lines, the colour reset after the last chunk. What pairs an exit with its enter (a call's
latency) or a process's end with its start (its clone time) is the engine's state, carried
from one chunk to the next."""
import numpy as np
import polars as pl

from . import Arg, chisel
from .io import chisel_rows, end_with_reset, format_time_interval, lua_tonumber, palette

# proc_exec_time's colour thresholds
YELLOW_NS = 3_000_000_000
RED_NS = 10_000_000_000


def thread_state_at(data, rows, columns):
    """Columns of the thread versions (query.threads) of each row's own thread as of that
    row, null where sysdig has no thread."""
    capture = data.capture
    rows = np.asarray(rows, dtype=np.int64)
    starts = [s.first_event for s in capture.sections] or [0]
    events = pl.DataFrame({
        "section": (np.searchsorted(np.asarray(starts), rows, side="right") - 1)
        .astype(np.int32),
        "tid": np.asarray(capture.headers.tid)[rows].astype(np.int64),
        "row": rows, "_order": np.arange(len(rows))}).sort("row")
    versions = data.thread_versions.select("section", "tid", "row", "alive", *columns) \
        .sort("row", maintain_order=True)
    joined = events.join_asof(versions, on="row", by=["section", "tid"], strategy="backward",
                              check_sortedness=False).sort("_order")
    alive = joined["alive"].fill_null(False)
    return joined.select(pl.when(pl.Series(alive)).then(pl.col(c)).alias(c) for c in columns)


def in_container(pair):
    """Is a (container.id, container.name) of run.containers() a container's (blue lines)?"""
    return pair[0] not in ("host", "nil")


@chisel("proc_exec_time", "Performance", "Show how long each finished process ran",
        args=(Arg("disable_color", "string", "the word disable_colors turns colours off",
                  True),),
        details="One line per process that ends: how long it ran, its name and arguments. "
                "Green (blue in a container) below 3 s, yellow from 3 s, red from 10 s.",
        chunked=True)
def proc_exec_time(run):
    # this chisel's switch is spelled disable_colors (the others' disable_color)
    colors = palette(run, "disable_colors")
    # with -pc, the container's id and name after the duration
    line = "%-13.13s %-20.20s %-20.20s %-12.12s %s" if run.print_container else \
        "%-13.13s %-12.12s %s"
    header = [("proc.duration", "container.id", "container.name", "proc.name", "proc.args"),
              ("-------------", "-" * 20, "-" * 20, "------------", "-" * 20)]
    for titles in header if run.first else ():
        run.line(line % (titles if run.print_container else titles[:1] + titles[3:]))
    rows = chisel_rows(run, "evt.type=procexit")
    state = thread_state_at(run.data, rows, ["clone_ts"])
    texts = run.texts(rows, ["proc.name", "proc.args"])
    ts = np.asarray(run.capture.headers.ts)[rows].astype(np.int64)
    where = run.containers(rows)
    out = []
    for i, clone_ts in enumerate(state["clone_ts"].to_list()):
        if not clone_ts:
            continue  # proc.duration has no value without the thread's start
        duration = int(ts[i]) - int(clone_ts)
        if duration > RED_NS:
            color = colors.red
        elif duration > YELLOW_NS:
            color = colors.yellow
        elif in_container(where[i]):
            color = colors.blue
        else:
            color = colors.green
        values = (format_time_interval(duration), *where[i], texts["proc.name"][i],
                  texts["proc.args"][i])
        out.append(color + line % (values if run.print_container else values[:1] + values[3:]))
    end_with_reset(run, out, colors)


# -- fileslower / netlower / scallslower -------------------------------------------------------

def _min_ms(run):
    """The min_ms argument as sysdig's Lua reads it (any number), or None after printing the
    complaint sysdig prints before it exits (and reading no further)."""
    value = lua_tonumber(run.arg("min_ms"))
    if value is None:
        run.line("Input min_ms must be a number.")
        run.stop()
    return value


def _lua_number(value):
    """A number as Lua's tostring writes it: %.14g."""
    return "%.14g" % value


def _slow_io(run, io_filter, skip_dev):
    colors = palette(run)
    min_ms = _min_ms(run)
    if min_ms is None:
        return
    # with -pc, the container's id and name after the time
    box = "%-20.20s %-20.20s " if run.print_container else ""
    row_format = "%-23.23s " + box + "%-12.12s %-8s %12s %s"
    head = "%-23.23s " + box + "%-12.12s %-8s %-12s %s"
    boxes = [("container.id", "container.name"), ("-" * 20, "-" * 20)] \
        if run.print_container else [(), ()]
    if run.first:
        run.line(head % ("evt.datetime", *boxes[0], "proc.name", "evt.type", "LATENCY(ms)",
                         "fd.name"))
        run.line(head % ("-----------------------", *boxes[1], "------------", "--------",
                         "------------", "-----------------------------------------"))
    # only exits can be slow (an enter's latency is 0), so the filter may say so at once
    rows = chisel_rows(run, f"({io_filter}) and evt.dir=<")
    latency = run.fields(rows, ["evt.latency"])["evt.latency"].to_numpy()
    slow = latency / 1e6 > min_ms
    rows = rows[slow]
    latency = latency[slow]
    texts = run.texts(rows, ["evt.datetime", "proc.name", "evt.type", "fd.name"])
    where = run.containers(rows)
    out = []
    for i in range(len(rows)):
        name = texts["fd.name"][i]
        if skip_dev and name is not None and name[:5] == "/dev/":
            continue
        color = colors.blue if in_container(where[i]) else colors.green
        shown = where[i] if run.print_container else ()
        out.append(color + row_format % (
            texts["evt.datetime"][i], *shown, texts["proc.name"][i], texts["evt.type"][i],
            "%d" % int(latency[i] / 1e6), "<NA>" if name is None else name))
    if out:
        run.write("\n".join(out) + "\n")


_MIN_MS_ARGS = (Arg("min_ms", "int", "the threshold, in milliseconds"),
                Arg("disable_color", "string", "the word disable_color turns colours off",
                    True))


@chisel("fileslower", "Performance", "Show file I/O slower than a threshold",
        args=_MIN_MS_ARGS,
        details="Every file read or write that took longer than min_ms (0: all of them), "
                "except on /dev files: time, process, system call, latency and file. Green, "
                "or blue for processes in a container.", chunked=True)
def fileslower(run):
    _slow_io(run, "evt.is_io=true and fd.type=file", skip_dev=True)


@chisel("netlower", "Performance", "Show network I/O slower than a threshold",
        args=_MIN_MS_ARGS,
        details="Every read or write on an IPv4/IPv6 socket that took longer than min_ms (0: "
                "all of them): time, process, system call, latency and connection. Green, or "
                "blue for processes in a container.", chunked=True)
def netlower(run):
    _slow_io(run, "evt.is_io=true and (fd.type=ipv4 or fd.type=ipv6)", skip_dev=False)


@chisel("scallslower", "Performance", "Show system calls slower than a threshold",
        args=_MIN_MS_ARGS,
        details="Every system call that took longer than min_ms: time, process, latency in "
                "ms and system call. Green, or blue for processes in a container.", chunked=True)
def scallslower(run):
    colors = palette(run)
    min_ms = _min_ms(run)
    if min_ms is None:
        return
    if run.first:
        _scallslower_header(run)
    box = "%-20.20s %-20.20s " if run.print_container else ""
    rows = chisel_rows(run)
    latency = run.fields(rows, ["evt.latency"])["evt.latency"]
    values = latency.fill_null(0).to_numpy()
    slow = (values / 1e6 > min_ms) & ~latency.is_null().to_numpy()
    rows = rows[slow]
    values = values[slow]
    texts = run.texts(rows, ["evt.datetime", "proc.name", "evt.type"])
    where = run.containers(rows)
    out = []
    for i in range(len(rows)):
        color = colors.blue if in_container(where[i]) else colors.green
        shown = where[i] if run.print_container else ()
        out.append(color + ("%-23.23s " + box + "%-23.23s %-20s %s") % (
            texts["evt.datetime"][i], *shown, _or_na(texts["proc.name"][i]),
            _lua_number(values[i] / 1e6), texts["evt.type"][i]))
    if out:
        run.write("\n".join(out) + "\n")


def _scallslower_header(run):
    # with -pc, the container's id and name after the time (its title one column wider)
    if run.print_container:
        run.line("%-23.23s %-21.21s %-20.20s %-23.23s %-20s %s" % (
            "evt.datetime", "container.id", "container.name", "proc.name", "LATENCY(ms)",
            "evt.type"))
        run.line("%-23.23s %-20.20s %-20.20s %-23.23s %-20s %s" % (
            "-" * 23, "-" * 20, "-" * 20, "-" * 23, "-" * 20, "-" * 20))
    else:
        run.line("%-23.23s %-23.23s %-20s %s" % ("evt.datetime", "proc.name", "LATENCY(ms)",
                                                 "evt.type"))
        run.line("%-23.23s %-23.23s %-20s %s" % ("-" * 23, "-" * 23, "-" * 20, "-" * 20))


def _or_na(text):
    return "<NA>" if text is None else text
