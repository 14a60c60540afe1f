"""`scaptool capture`: a live capture of this machine with the libbpf helper (scap.live).

    scaptool capture -w out.scap [-s SNAPLEN] [-d 5s] [-n N] [-p PID] [FILTER] [-- COMMAND ...]

Without -w the events are printed as they arrive, in `scaptool -r`'s default format. Words
before `--` are a filter (sysdig's language): only matching events are printed or written
(with -F, the events that change state too, so that names resolve in the file); a command to
run and capture comes only after `--`.
"""
import os
import re
import sys
import tempfile
import time
import warnings

import click

_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "m": 60.0, "h": 3600.0}


def parse_duration(text):
    """'5s', '500ms', '2m', '1h' or plain seconds -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(ms|s|m|h)?\s*", text or "")
    if not m:
        raise click.BadParameter(f"not a duration: {text!r} (say 5s, 500ms, 2m)")
    return float(m.group(1)) * _UNITS[m.group(2) or ""]


class _CommandAfterDashes(click.Command):
    """Words after `--` are the command to run, those before it the filter: click's own
    parsing drops the `--` and would mix the two."""

    def parse_args(self, ctx, args):
        if "--" in args:
            cut = args.index("--")
            ctx.meta["scaptool.command"] = args[cut + 1:]
            args = args[:cut]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx):
        return super().collect_usage_pieces(ctx) + ["[-- COMMAND ARGS...]"]


@click.command("capture", cls=_CommandAfterDashes)
@click.option("-w", "--write", "out", metavar="OUT",
              help="Write the capture to this file; without it, print events as they come.")
@click.option("-s", "--snaplen", type=int, default=80, show_default=True, metavar="LEN",
              help="Bytes of each I/O buffer to keep.")
@click.option("-d", "--duration", metavar="TIME", help="Stop after this long (5s, 500ms, 2m).")
@click.option("-n", "--numevents", type=int, metavar="N", help="Stop after N events.")
@click.option("-p", "--pid", type=int, metavar="PID",
              help="Only this process and the processes it starts; stop when it exits.")
@click.option("-P", "--also-pid", "also", type=int, multiple=True, metavar="PID",
              help="Also capture this process and the processes it starts (repeatable).")
@click.option("-S", "--switch", is_flag=True, help="Also capture context switches.")
@click.option("--only-captured-procs", is_flag=True,
              help="List only the captured processes in the file's process table, not every "
                   "process of the machine (for captures to share).")
@click.option("--ring-kib", type=int, default=8192, show_default=True,
              help="Size of the kernel ring buffer, KiB (a power of two).")
@click.option("-F", "--fatfile", is_flag=True,
              help="With a filter: also keep the events that change state (flagged so that "
                   "readers use them without showing them).")
@click.argument("filter_words", nargs=-1, metavar="[FILTER]...")
def capture(out, snaplen, duration, numevents, pid, also, switch, only_captured_procs,
            ring_kib, fatfile, filter_words):
    """Capture system calls live (root, kernel BTF), the events matching FILTER if one is
    given. With `-- COMMAND ARGS...`, run COMMAND and capture it and its children until it
    exits."""
    from scaptool.scap import live
    command = click.get_current_context().meta.get("scaptool.command") or ()
    if filter_words:
        _filtered(out, snaplen, duration, numevents, pid, also, switch, ring_kib, fatfile,
                  filter_words, command)
        return
    if command and pid:
        raise click.UsageError("give either -p PID or a command, not both")
    options = dict(snaplen=snaplen, duration=parse_duration(duration) if duration else None,
                   max_events=numevents, pid=pid, command=list(command) or None,
                   switch=switch, ring_kib=ring_kib, also_pids=also,
                   list_all_processes=not only_captured_procs)
    try:
        if out:
            stats = capture_to(out, options)
        else:
            stats = _print_live(options)
    except live.LiveCaptureError as e:
        raise click.ClickException(str(e)) from None
    where = f" to {out}" if out else ""
    click.echo(f"scaptool: captured {stats['events']} events{where}, {stats['drops']} drops"
               + (" (interrupted)" if stats.get("interrupted") else ""), err=True)
    if stats["drops"]:
        click.echo("scaptool: the ring buffer overflowed; try a larger --ring-kib", err=True)
    if stats.get("interrupted"):
        sys.exit(130)


def capture_to(out, options, started=None):
    """The helper writes the capture under a temporary name beside `out`, renamed to it once
    complete (dropped on failure): what was at `out` stays until then. `started(capture)`,
    if given, is called once the capture runs."""
    from scaptool.scap import live
    from scaptool.scap.writer import check_output, temporary_beside
    check_output(out)
    fd, tmp = temporary_beside(out)
    os.close(fd)
    try:
        capture = live.LiveCapture(tmp, **options).start()
        if started is not None:
            started(capture)
        stats = capture.wait()
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return stats


def _filtered(out, snaplen, duration, numevents, pid, also, switch, ring_kib, fatfile,
              filter_words, command):
    """A filter: the events go through the reading engine, as `scaptool FILTER` live does."""
    if pid or also or switch or command:
        raise click.UsageError("a filter cannot be combined with -p, -P, -S or a command yet: "
                               "give the process in the filter (proc.pid=N)")
    from scaptool.query.api import filter_expr
    filter_expr(" ".join(filter_words))   # a wrong filter fails before capturing
    from . import live, read
    run = read._Run(out, False, False, False, None, False, None, False, "h", numevents, None,
                    filter_words)
    seconds = parse_duration(duration) if duration else None
    live.read_live(run, snaplen=snaplen, seconds=seconds, fatfile=fatfile, ring_kib=ring_kib)


def _print_live(options):
    """Capture into a temporary file and print each new event as it lands there, rendered with
    the whole capture so far as state (thread names, fd names)."""
    from scaptool.scap import live
    tmp = tempfile.NamedTemporaryFile(prefix="scaptool-live-", suffix=".scap", delete=False)
    tmp.close()
    try:
        session = live.LiveCapture(tmp.name, **options).start()
        printed = 0
        size = 0
        while True:
            running = session.running()
            now = os.path.getsize(tmp.name)
            if now != size:
                size = now
                printed = _print_since(tmp.name, printed)
            if not running:
                break
            try:
                time.sleep(0.25)
            except KeyboardInterrupt:
                session.stop()
        stats = session.wait()
        _print_since(tmp.name, printed)
        return stats
    finally:
        os.unlink(tmp.name)


def _print_since(path, printed):
    """Print the events numbered above `printed`; returns the last number printed."""
    import numpy as np

    from scaptool import scap

    from . import polars_import
    polars_import.load()
    from scaptool.query.events import EventData
    from scaptool.query.outputs import OUTPUTS
    with warnings.catch_warnings():
        # the helper may be writing the last block right now: it is read on the next turn
        warnings.simplefilter("ignore")
        capture = scap.open(path)
        if not len(capture):
            return printed
        data = EventData(capture, bytebuf_limit=80)
        numbers = capture.event_numbers
        rows = np.flatnonzero(data.visible & (numbers > printed))
        if len(rows):
            previous = int(rows[0] - 1) if rows[0] > 0 else None
            lines = [line for line in OUTPUTS["default"].lines(data, rows, previous=previous)
                     if line is not None]
            if lines:
                sys.stdout.write("\n".join(lines) + "\n")
                sys.stdout.flush()
        return max(printed, int(numbers.max()))
