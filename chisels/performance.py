"""Performance chisels: how long processes lived (proc_exec_time) and which file, network or
any system calls took longer than a threshold (fileslower, netlower, scallslower)."""
import re

import numpy as np
import polars as pl

from . import Arg, chisel
from .io import chisel_rows, format_time_interval, lua_tonumber, palette

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


# A container id in a cgroup path, as sysdig's runtimes find it: the last path element, with
# docker's/CRI-O's/containerd's systemd prefixes and .scope suffix, is 64 hex digits.
_CONTAINER_CGROUP = re.compile(
    r"/(?:docker-|crio-|cri-containerd-|libpod-)?([0-9a-f]{64})(?:\.scope)?$")


def container_ids(data, rows):
    """Per row, the id (12 digits) of the container its thread runs in, '' on the host: the
    catalog's container.id when there is one, else found in the thread's cgroups."""
    from query.fields import FIELDS
    if "container.id" in FIELDS:
        from query.fields import columns_at
        ids = columns_at(data, ["container.id"], np.asarray(rows, dtype=np.int64))
        # sysdig's container.id reads 'host' for a process on the host
        return ["" if v in (None, "host") else v for v in ids["container.id"].to_list()]
    cgroups = thread_state_at(data, rows, ["cgroups"])["cgroups"].to_list()
    out = []
    for groups in cgroups:
        found = ""
        for entry in groups or ():
            match = _CONTAINER_CGROUP.search(entry.partition("=")[2])
            if match:
                found = match.group(1)[:12]
                break
        out.append(found)
    return out


@chisel("proc_exec_time", "Performance", "Show how long each finished process ran",
        args=(Arg("disable_color", "string", "the word disable_colors turns colours off",
                  True),),
        details="One line per process that ends: how long it ran, its name and arguments. "
                "Green (blue in a container) below 3 s, yellow from 3 s, red from 10 s.")
def proc_exec_time(run):
    # this chisel's switch is spelled disable_colors (the others' disable_color)
    colors = palette(run, "disable_colors")
    run.line("%-13.13s %-12.12s %s" % ("proc.duration", "proc.name", "proc.args"))
    run.line("%-13.13s %-12.12s %s" % ("-------------", "------------", "--------------------"))
    rows = chisel_rows(run, "evt.type=procexit")
    state = thread_state_at(run.data, rows, ["clone_ts"])
    texts = run.texts(rows, ["proc.name", "proc.args"])
    ts = np.asarray(run.capture.headers.ts)[rows].astype(np.int64)
    containers = container_ids(run.data, rows)
    out = []
    for i, clone_ts in enumerate(state["clone_ts"].to_list()):
        if not clone_ts:
            continue  # proc.duration has no value without the thread's start
        duration = int(ts[i]) - int(clone_ts)
        if duration > RED_NS:
            color = colors.red
        elif duration > YELLOW_NS:
            color = colors.yellow
        elif containers[i]:
            color = colors.blue
        else:
            color = colors.green
        out.append(color + "%-13.13s %-12.12s %s" % (
            format_time_interval(duration), texts["proc.name"][i], texts["proc.args"][i]))
    out.append(colors.reset)
    run.write("\n".join(out) + "\n")


# -- fileslower / netlower / scallslower -------------------------------------------------------

def _min_ms(run):
    """The min_ms argument as sysdig's Lua reads it (any number), or None after printing the
    complaint sysdig prints before it exits."""
    value = lua_tonumber(run.arg("min_ms"))
    if value is None:
        run.line("Input min_ms must be a number.")
    return value


def _lua_number(value):
    """A number as Lua's tostring writes it: %.14g."""
    return "%.14g" % value


def _slow_io(run, io_filter, skip_dev):
    colors = palette(run)
    min_ms = _min_ms(run)
    if min_ms is None:
        return
    row_format = "%-23.23s %-12.12s %-8s %12s %s"
    run.line("%-23.23s %-12.12s %-8s %-12s %s" % (
        "evt.datetime", "proc.name", "evt.type", "LATENCY(ms)", "fd.name"))
    run.line("%-23.23s %-12.12s %-8s %-12s %s" % (
        "-----------------------", "------------", "--------", "------------",
        "-----------------------------------------"))
    # only exits can be slow (an enter's latency is 0), so the filter may say so at once
    rows = chisel_rows(run, f"({io_filter}) and evt.dir=<")
    latency = run.fields(rows, ["evt.latency"])["evt.latency"].to_numpy()
    slow = latency / 1e6 > min_ms
    rows = rows[slow]
    latency = latency[slow]
    texts = run.texts(rows, ["evt.datetime", "proc.name", "evt.type", "fd.name"])
    containers = container_ids(run.data, rows)
    out = []
    for i in range(len(rows)):
        name = texts["fd.name"][i]
        if skip_dev and name is not None and name[:5] == "/dev/":
            continue
        color = colors.blue if containers[i] else colors.green
        out.append(color + row_format % (
            texts["evt.datetime"][i], texts["proc.name"][i], texts["evt.type"][i],
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
                "or blue for processes in a container.")
def fileslower(run):
    _slow_io(run, "evt.is_io=true and fd.type=file", skip_dev=True)


@chisel("netlower", "Performance", "Show network I/O slower than a threshold",
        args=_MIN_MS_ARGS,
        details="Every read or write on an IPv4/IPv6 socket that took longer than min_ms (0: "
                "all of them): time, process, system call, latency and connection. Green, or "
                "blue for processes in a container.")
def netlower(run):
    _slow_io(run, "evt.is_io=true and (fd.type=ipv4 or fd.type=ipv6)", skip_dev=False)


@chisel("scallslower", "Performance", "Show system calls slower than a threshold",
        args=_MIN_MS_ARGS,
        details="Every system call that took longer than min_ms: time, process, latency in "
                "ms and system call. Green, or blue for processes in a container.")
def scallslower(run):
    colors = palette(run)
    min_ms = _min_ms(run)
    if min_ms is None:
        return
    run.line("%-23.23s %-23.23s %-20s %s" % ("evt.datetime", "proc.name", "LATENCY(ms)",
                                             "evt.type"))
    run.line("%-23.23s %-23.23s %-20s %s" % ("-----------------------",
                                             "-----------------------",
                                             "--------------------", "--------------------"))
    rows = chisel_rows(run)
    latency = run.fields(rows, ["evt.latency"])["evt.latency"]
    values = latency.fill_null(0).to_numpy()
    slow = (values / 1e6 > min_ms) & ~latency.is_null().to_numpy()
    rows = rows[slow]
    values = values[slow]
    texts = run.texts(rows, ["evt.datetime", "proc.name", "evt.type"])
    containers = container_ids(run.data, rows)
    out = []
    for i in range(len(rows)):
        color = colors.blue if containers[i] else colors.green
        out.append(color + "%-23.23s %-23.23s %-20s %s" % (
            texts["evt.datetime"][i], _or_na(texts["proc.name"][i]),
            _lua_number(values[i] / 1e6), texts["evt.type"][i]))
    if out:
        run.write("\n".join(out) + "\n")


def _or_na(text):
    return "<NA>" if text is None else text
