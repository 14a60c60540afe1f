"""Log chisels: every write to a log file or to syslog as one stream, and the export of what
the writing thread did around each message (spy_logs, spy_syslog, around)."""
from scaptool.query.render import ascii_text
from scaptool.scap.writer import check_output

from . import Arg, ChiselError, chisel
from .dump import export

# Which files count as logs (sysdig's rule: pure substring tests on the fd name).
LOG_FILES = ("(fd.name contains .log or fd.name contains _log or fd.name contains /var/log) "
             "and not (fd.name contains .gz or fd.name contains .tgz)")
# A successful write (exit event) of any I/O kind.
SUCCESSFUL_WRITE = "evt.is_io_write=true and evt.dir=< and evt.failed=false"

_DUMP_ARGS = (
    Arg("dump_file_name", "string",
        "write the events of the writing thread around each message to this capture", True),
    Arg("dump_range_ms", "int",
        "how far before and after each message to export, in milliseconds (default 1000)",
        True),
    Arg("disable_color", "string", "the word disable_color turns colours off", True),
)


def _exports(args):
    """Do the arguments ask for an export (which reads the capture again)?"""
    return bool(args.get("dump_file_name"))


def _dump_settings(run):
    """(dump_file_name, dump_range_ms); the output is checked before the first chunk's
    work, not after the last one's."""
    path = run.arg("dump_file_name")
    range_ms = run.arg("dump_range_ms", 1000, int)
    switch = run.arg("disable_color")
    if switch is not None and switch != "disable_color":
        raise ChiselError("set_arg() for chisel failed: the third argument can only be "
                          "disable_color")
    if switch:
        run.color = False
    if path and run.first:
        check_output(path, [run.capture.path])   # before the work, not after it
    return path, range_ms


def _remember(run, path, rows):
    """Count the messages shown, and keep the (ts, tid) of each for the export: what the
    export needs of them once every chunk is read."""
    run.state["shown"] = run.state.get("shown", 0) + len(rows)
    if path:
        h = run.capture.headers
        run.state.setdefault("moments", []).extend(
            (int(h.ts[r]), int(h.tid[r])) for r in rows)


def _export(run, path, range_ms, saying):
    """After the capture's last chunk: say how many messages (saying(count) is the line),
    then write the events around them (a second reading of the capture)."""
    run.line(saying(run.state.get("shown", 0)))
    export(run.read_again(), path, run.state.get("moments", []), range_ms)


def _log_color(line):
    """Yellow for warnings, red for errors, green otherwise (the warn test ignores case, the
    err test does not, as in sysdig)."""
    if "warn" in line.lower():
        return "yellow"
    if "err" in line:
        return "red"
    return "green"


@chisel("spy_logs", "Logs", "Show every write to a log file; optionally export what the "
        "writing thread did around each message", args=_DUMP_ARGS,
        details="A log file is any fd whose name contains .log, _log or /var/log (not .gz or "
                ".tgz archives). Each line written is printed as `process file line`, coloured "
                "on a terminal (yellow: warn, red: err, green: other). With dump_file_name, "
                "the events of each writing thread within dump_range_ms of its write go to "
                "that capture, with the state needed to read them.", resets=True,
        chunked=True,
        rereads=_exports)
def spy_logs(run):
    path, range_ms = _dump_settings(run)
    rows = run.select(f"({LOG_FILES}) and {SUCCESSFUL_WRITE}")
    values = run.texts(rows, ["proc.name", "fd.name"])
    where = run.containers(rows) if run.print_container else None
    buffers = run.fields(rows, ["evt.buffer"])["evt.buffer"].to_list()
    shown = []
    printed = []   # (written at once per chunk: a log storm prints hundreds of thousands)
    for i, row in enumerate(rows):
        raw = buffers[i]
        if raw is None:
            continue
        name = values["proc.name"][i] or "<NA>"
        fd_name = values["fd.name"][i] or "<NA>"
        for line in ascii_text(raw).split("\n"):
            if not line:
                continue
            color = run.paint(_log_color(line))
            text = f"{name} {fd_name} {line}"
            if where is not None:
                # with -pc the container's name comes first: on a terminal in blue, unless
                # it is the host
                container = where[i][1]
                box = run.paint("blue") if container != "host" else color
                text = f"{box} {container} {color} {text}" if run.color else \
                    f"{container} {text}"
            printed.append(f"{color} {text}\n" if run.color else f"{text}\n")
        shown.append(row)
    if printed:
        run.write("".join(printed))
    _remember(run, path, shown)
    if path and run.final:
        run.reset_line()   # as in sysdig: the line is not in the last message's colour
        _export(run, path, range_ms, lambda n: f"Writing events for {n} log entries")


def _syslog_color(severity):
    if severity == 4:
        return "yellow"
    if severity is not None and severity < 4:
        return "red"
    return "green"


@chisel("spy_syslog", "Logs", "Show every message written to syslog; optionally export what "
        "the writing thread did around each message", args=_DUMP_ARGS,
        details="Writes to /dev/log are decoded as syslog messages and printed as "
                "`facility.severity process[tid] message` (red for errors and worse, yellow "
                "for warnings on a terminal). dump_file_name and dump_range_ms export the "
                "events around each message, as spy_logs does.", resets=True, chunked=True,
        rereads=_exports)
def spy_syslog(run):
    path, range_ms = _dump_settings(run)
    rows = run.select(f"fd.name contains /dev/log and {SUCCESSFUL_WRITE}")
    values = run.texts(rows, ["syslog.facility.str", "syslog.severity.str", "proc.name",
                              "thread.tid"])
    where = run.containers(rows) if run.print_container else None
    severities = run.fields(rows, ["syslog.severity"])["syslog.severity"].to_list()
    # the chisel sees the message with every byte after the PRI, NULs included
    from scaptool.query.syslog import decoded
    payloads = dict(zip(*decoded(run.capture).select("row", "payload").to_dict().values()))
    shown = []
    for i, row in enumerate(rows):
        payload = payloads.get(int(row))
        # a /dev/log write that is not syslog: sysdig's chisel prints Lua's nil for each
        message = "nil" if payload is None else payload.decode("utf-8", "replace")
        facility = values["syslog.facility.str"][i] or "nil"
        severity = values["syslog.severity.str"][i] or "nil"
        who = f"{values['proc.name'][i] or '<NA>'}[{values['thread.tid'][i]}] {message}"
        text = f"{facility}.{severity} {who}"
        if where is not None:
            cid, cname = where[i]
            # off a terminal sysdig's chisel passes its values in another order than on one:
            # the facility, the container's id and name, then the severity
            text = f"{cid:<20} {cname:<20} {text}" if run.color else \
                f"{facility:<20} {cid:<20} {cname}.{severity} {who}"
        run.line(run.paint(_syslog_color(severities[i])) + text)
        shown.append(row)
    _remember(run, path, shown)
    if path and run.final:
        run.reset_line()   # as in sysdig: the line is not in the last message's colour
        _export(run, path, range_ms, lambda n: f"Writing events for {n} log entries")


@chisel("around", "Misc", "Export the events of each matching event's thread within a time "
        "window of it", args=(
            Arg("dump_file_name", "string", "the capture to write"),
            Arg("dump_range_ms", "int", "how far before and after, in milliseconds "
                "(default 1000)", True)),
        details="Needs a filter: for every event it matches, prints its time, process and "
                "thread, and exports that thread's events within dump_range_ms of it.",
        chunked=True, rereads=True)
def around(run):
    path = run.arg("dump_file_name")
    range_ms = run.arg("dump_range_ms", 1000, int)
    if not run.user_filter:
        raise ChiselError("around: no filter specified")
    if run.first:
        check_output(path, [run.capture.path])
    rows = run.select()
    values = run.texts(rows, ["evt.time", "proc.name", "thread.tid"])
    for i in range(len(rows)):
        run.line(f"{values['evt.time'][i]} {values['proc.name'][i] or '<NA>'}"
                 f"({values['thread.tid'][i]})")
    _remember(run, path, rows)
    if run.final:
        run.line("")
        _export(run, path, range_ms,
                lambda n: f"Saving events around {n} syslog entries to {path}")
