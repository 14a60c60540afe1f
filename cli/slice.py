"""`scaptool slice IN -w OUT ...`: cut a self-contained capture out of a bigger one.

Criteria combine: the events must belong to one of the threads/processes named (when any is
named), fall in the time range (when given), match --filter (when given), and lie within
--window ms of an event matching --around on the same thread (when given). The output keeps
the metadata and the state-changing events outside the slice as state-only events, so that
sysdig and scaptool still resolve every process and fd name in it.
"""
import datetime
import re
import sys

import click
import numpy as np

from scaptool import scap

from . import polars_import

_DURATION = re.compile(r"^\+?(\d+(?:\.\d*)?|\.\d+)(ns|us|ms|s|m|h)?$")
_UNIT_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_time(text, first_ts):
    """A point in time, in ns since the epoch: a count of ns since the epoch (19 digits), an
    offset from the capture's first event ('2.5s', '+500ms', '1m'), or a date and time in
    ISO 8601 ('2026-11-24T10:15:02.5', UTC unless it says otherwise)."""
    text = text.strip()
    if text.isdigit() and len(text) >= 16:
        return int(text)
    m = _DURATION.match(text)
    if m:
        number, unit = m.group(1), m.group(2) or "s"
        whole, _, fraction = number.partition(".")
        scale = _UNIT_NS[unit]
        ns = int(whole or 0) * scale
        if fraction:
            ns += int(fraction) * scale // 10 ** len(fraction)
        return first_ts + ns
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise click.ClickException(f"{text!r} is not a time: use ns since the epoch, an offset "
                                 "like 2.5s or 500ms, or an ISO date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def slice_mask(capture, *, tids=(), pids=(), names=(), start=None, end=None, filter_text=None,
               around=None, window_ms=1000):
    """A bool per event: is it in the slice? (Times in ns since the epoch, bounds included.)"""
    from scaptool.query.select import filter_mask
    keep = np.ones(len(capture), dtype=bool)
    who = [f"thread.tid in ({', '.join(map(str, tids))})" if tids else "",
           f"proc.pid in ({', '.join(map(str, pids))})" if pids else "",
           "proc.name in (" + ", ".join(_quoted(n) for n in names) + ")" if names else ""]
    who = [w for w in who if w]
    if who:
        keep &= filter_mask(capture, " or ".join(who))
    ts = np.asarray(capture.headers.ts)
    if start is not None:
        keep &= ts >= np.uint64(start)
    if end is not None:
        keep &= ts <= np.uint64(end)
    if filter_text:
        keep &= filter_mask(capture, filter_text)
    if around:
        from scaptool.chisels.dump import window_mask
        from scaptool.query.render import visible_rows
        hits = visible_rows(capture, np.flatnonzero(filter_mask(capture, around)))
        tid = np.asarray(capture.headers.tid)
        moments = [(int(ts[r]), int(tid[r])) for r in hits]
        keep &= window_mask(capture, moments, window_ms)
    return keep


def _watch_progress():
    """Standard error on a terminal: a progress bar (cli/progress.py, imported only then)."""
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError):
        terminal = False
    if terminal:
        from . import progress
        return progress.watch()
    return None


def _quoted(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@click.command("slice")
@click.argument("path", metavar="IN")
@click.option("-w", "--write", "out", required=True, metavar="OUT", help="The capture to write.")
@click.option("-z", "--compress", is_flag=True, help="Write it gzip-compressed.")
@click.option("--tid", "tids", multiple=True, type=int, help="Keep this thread (repeatable).")
@click.option("--pid", "pids", multiple=True, type=int, help="Keep this process (repeatable).")
@click.option("--proc", "names", multiple=True, metavar="NAME",
              help="Keep processes with this name (repeatable).")
@click.option("--from", "start", metavar="TIME",
              help="Keep events from this time: ns since the epoch, an offset from the first "
                   "event (2.5s, 500ms), or an ISO date-time (UTC unless stated).")
@click.option("--to", "end", metavar="TIME", help="Keep events up to this time (included).")
@click.option("--filter", "filter_text", metavar="FILTER", help="Keep events matching it.")
@click.option("--around", metavar="FILTER",
              help="Keep the events of each matching event's thread within --window of it.")
@click.option("--window", "window_ms", type=int, default=1000, show_default=True,
              metavar="MS", help="Half-width of the --around windows, in milliseconds.")
def slice_command(path, out, compress, tids, pids, names, start, end, filter_text, around,
                  window_ms):
    """Cut the events of chosen threads, processes, times or moments into a capture that
    sysdig and scaptool read on its own (process and fd state included)."""
    polars_import.load()
    watcher = _watch_progress()
    capture = scap.open(path)
    first = int(capture.headers.ts[0]) if len(capture) else 0
    keep = slice_mask(capture, tids=tids, pids=pids, names=names,
                      start=parse_time(start, first) if start else None,
                      end=parse_time(end, first) if end else None,
                      filter_text=filter_text, around=around, window_ms=window_ms)
    scap.write_capture(out, capture, rows=keep, compress=compress)
    if watcher is not None:
        watcher.close()
    click.echo(f"{out}: {int(np.count_nonzero(keep))} of {len(capture)} events", err=True)
