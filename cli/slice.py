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

from . import polars_import, read

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
               around=None, window_ms=1000, data=None, moments=None):
    """A bool per event of `capture` (a capture, or a chunk of one read with query.chunks,
    whose EventData is `data`): is it in the slice? (Times in ns since the epoch, bounds
    included.) `moments`: the (ts, tid) of the events matching `around`, found beforehand
    over the whole capture (around_moments); found here when None."""
    from scaptool.query.select import filter_mask
    keep = np.ones(len(capture), dtype=bool)
    who = [f"thread.tid in ({', '.join(map(str, tids))})" if tids else "",
           f"proc.pid in ({', '.join(map(str, pids))})" if pids else "",
           "proc.name in (" + ", ".join(_quoted(n) for n in names) + ")" if names else ""]
    who = [w for w in who if w]
    if who:
        keep &= filter_mask(capture, " or ".join(who), data)
    ts = np.asarray(capture.headers.ts)
    if start is not None:
        keep &= ts >= np.uint64(start)
    if end is not None:
        keep &= ts <= np.uint64(end)
    if filter_text:
        keep &= filter_mask(capture, filter_text, data)
    if around:
        from scaptool.query.windows import window_mask
        if moments is None:
            moments = around_moments(capture, around, data)
        keep &= window_mask(capture, moments, window_ms)
    return keep


def around_moments(capture, around, data=None):
    """(ts, tid) of the events sysdig would show that match the filter `around`."""
    from scaptool.query.render import visible_rows
    from scaptool.query.select import filter_mask
    hits = visible_rows(capture, np.flatnonzero(filter_mask(capture, around, data)))
    ts = np.asarray(capture.headers.ts)
    tid = np.asarray(capture.headers.tid)
    return [(int(ts[r]), int(tid[r])) for r in hits]


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
    from scaptool.query.chunks import Reading, event_data_chunks
    from scaptool.query.select import filter_expr
    from scaptool.scap.rewrite import CaptureWriter
    from scaptool.scap.writer import check_output
    for text in (filter_text, around):
        if text:
            filter_expr(text)   # a bad filter fails before anything is read or written
    for text in (start, end):
        if text:
            parse_time(text, 0)   # and so does a time that is not one
    check_output(out, [path])
    watcher = _watch_progress()
    moments = None
    if around:   # a first reading finds the moments: a window may reach back into a chunk
        reading = Reading()
        moments = []
        for data in event_data_chunks(path, read.CHUNK_EVENTS, window=read.CHUNK_BYTES,
                                      reading=reading):
            moments += around_moments(data.capture, around, data)
        _damaged(reading, path)
    reading = Reading()
    kept = total = 0
    bounds = None
    with CaptureWriter(out, compress=compress) as writer:
        for data in event_data_chunks(path, read.CHUNK_EVENTS, window=read.CHUNK_BYTES,
                                      reading=reading):
            chunk = data.capture
            if bounds is None:   # offsets count from the capture's first event
                first = int(chunk.headers.ts[0]) if len(chunk) else 0
                bounds = (parse_time(start, first) if start else None,
                          parse_time(end, first) if end else None)
            keep = slice_mask(chunk, tids=tids, pids=pids, names=names, start=bounds[0],
                              end=bounds[1], filter_text=filter_text, around=around,
                              window_ms=window_ms, data=data, moments=moments)
            keep[:chunk.context] = False
            writer.add(chunk, keep)
            kept += int(np.count_nonzero(keep))
            total += len(chunk) - chunk.context
        _damaged(reading, path)
    if watcher is not None:
        watcher.close()
    click.echo(f"{out}: {kept} of {total} events", err=True)


def _damaged(reading, path):
    """A capture that is not one fails; a truncated one keeps what came before the damage,
    as scap.open does (with the same warning)."""
    damage = reading.damage
    if damage is None:
        return
    if isinstance(damage, scap.TruncatedError) and reading.reader.events_read:
        import warnings
        warnings.warn(scap.ScapWarning(f"{damage}; keeping everything before it"))
        return
    raise damage
