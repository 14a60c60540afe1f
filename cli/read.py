"""`scaptool [read] -r FILE [options] [filter]`: sysdig's reading options."""
import gc
import os
import sys
import time

import click

from scaptool import scap
from scaptool.query.summary import capture_summary

from . import polars_import

BUFFER_FORMATS = {"ascii": "-A", "hex": "-x", "hexascii": "-X"}


def _write_lines(lines):
    out = sys.stdout
    batch = []
    for line in lines:
        if line is None:
            continue
        batch.append(line)
        if len(batch) >= 4096:
            out.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        out.write("\n".join(batch) + "\n")


@click.command("read")
@click.option("-r", "--read", "path", metavar="FILE",
              help="Read events from this capture (plain or gzip-compressed).")
@click.option("-w", "--write", "out", metavar="OUT",
              help="Write the events to a capture in the current format instead of printing.")
@click.option("-z", "--compress", is_flag=True, help="With -w: write a gzip-compressed capture.")
@click.option("-S", "--summary", is_flag=True,
              help="Print the event summary (counts by event type) when the capture ends.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print events (with -S: the table only).")
@click.option("-p", "--print", "fmt", metavar="FORMAT",
              help="Print events with this format (%field, %Nfield; a leading * prints <NA> "
                   "for missing fields instead of skipping the line). -pc (-pcontainer): the "
                   "default line with the container's name and id; chisels then show "
                   "containers too.")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print events as JSON, one per line.")
@click.option("-A", "--print-ascii", "buffers", flag_value="ascii",
              help="Print only the printable characters of data buffers.")
@click.option("-x", "--print-hex", "buffers", flag_value="hex",
              help="Print data buffers in hex.")
@click.option("-X", "--print-hex-ascii", "buffers", flag_value="hexascii",
              help="Print data buffers in hex and ASCII.")
@click.option("-v", "--verbose", is_flag=True, help="Do not cut data buffers to 80 characters.")
@click.option("-t", "--timetype", type=click.Choice(["h", "a", "r", "d", "D"]), default="h",
              help="Timestamps: h clock time, a absolute, r relative to the first event, "
                   "d the event's latency, D since the previous printed event.")
@click.option("-n", "--numevents", type=int, metavar="N",
              help="Stop after N events (hidden ones count, as in sysdig).")
@click.option("-s", "--snaplen", type=int, metavar="LEN",
              help="Accepted for sysdig compatibility: it sets the capture snaplen, so it "
                   "changes nothing when reading a file.")
@click.option("-l", "--list", "list_fields", is_flag=True,
              help="List the fields filters and formats can use, with types and descriptions.")
@click.option("-L", "--list-events", is_flag=True,
              help="List the events sysdig 0.29.3 knows, with their parameters.")
@click.option("-c", "--chisel", "chisel_name", metavar="NAME",
              help="Run a chisel (a name from -cl, or a Python file defining one); its "
                   "arguments, if any, are the next word. -cl lists the chisels.")
@click.option("-i", "--chisel-info", metavar="NAME", help="Describe a chisel and its arguments.")
@click.option("-P", "--progress", is_flag=True, expose_value=False,
              callback=lambda ctx, _, on: ctx.meta.update({"scaptool.progress_lines": on}),
              help="Print sysdig's progress lines (percent of the file read) on standard "
                   "error, terminal or not. Without -P, a terminal shows a progress bar on "
                   "standard error instead, once a run has taken a second.")
@click.argument("filter_words", nargs=-1)
def read(path, out, compress, summary, quiet, fmt, as_json, buffers, verbose, timetype,
         numevents, snaplen, list_fields, list_events, chisel_name, chisel_info, filter_words):
    """Read a capture the way `sysdig -r` does."""
    if chisel_name == "l":  # sysdig's -cl is -c with the name "l"
        from scaptool import chisels
        click.echo(chisels.listing(), nl=False)
        return
    if chisel_info:
        from scaptool import chisels
        click.echo(chisels.describe(chisels.find(chisel_info)), nl=False)
        return
    if list_fields:
        click.echo(field_listing(), nl=False)
        return
    if list_events:
        from scaptool.scap.eventtable import format_event_list, sysdig_0293
        click.echo(format_event_list(sysdig_0293()), nl=False)
        return
    if path is None:
        raise click.UsageError("no capture to read: give one with -r FILE")
    _watch_progress()
    started = time.perf_counter()
    if chisel_name:
        polars_import.load()
        from scaptool import chisels  # an unknown chisel fails before the capture is read
        chisel = chisels.find(chisel_name)
    capture = scap.open(path)
    if chisel_name:
        from scaptool.chisels.run import run_chisel
        from scaptool.query.events import EventData
        _imports_done()
        data = EventData(capture, bytebuf_limit=None, buffer_format=buffers or "normal")
        data.timetype = timetype
        run_chisel(capture, chisel, filter_words, data=data,
                   print_container=fmt in ("c", "container"))
        return
    data = None
    rows = None
    if filter_words or numevents is not None or not (quiet or out):
        polars_import.load()
        from scaptool.query.events import EventData
        limit = None if (verbose or as_json) else 80
        data = EventData(capture, bytebuf_limit=limit, buffer_format=buffers or "normal")
        data.timetype = timetype
    if filter_words:
        import scaptool.query.select  # noqa: F401 - pyparsing and the grammar, before _imports_done
    _imports_done()
    if filter_words or numevents is not None:
        rows = _select(data, " ".join(filter_words), numevents)
    terminal = _colour_terminal()
    if out:
        scap.write_capture(out, capture, rows=rows, compress=compress)
    elif not quiet:
        _print_events(data, rows, fmt, as_json, terminal)
    _progress_done()
    if terminal and not out and (fmt in (None, "c", "container") or as_json):
        # sysdig resets the terminal's colours once the events are printed (not after a
        # format of the user's own)
        click.echo("\x1b[00m", nl=False)
    if summary:
        click.echo(capture_summary(capture, rows), nl=False)
    if verbose:
        # sysdig -v ends with its capture statistics on stderr; a file has no driver counters
        elapsed = time.perf_counter() - started
        events = int(capture.event_numbers.max()) if len(capture) else 0
        click.echo("Driver Events:0\nDriver Drops:0\nSuppressed by Comm:0\n"
                   f"Elapsed time: {elapsed:.3f}, Captured Events: {events}, "
                   f"{events / elapsed if elapsed else 0:.2f} eps", err=True)


def _watch_progress():
    """-P: sysdig's progress lines; else, standard error on a terminal: a progress bar (see
    cli/progress.py, which nothing else imports: a run without either costs no more)."""
    lines = click.get_current_context().meta.get("scaptool.progress_lines", False)
    if lines or _isatty(sys.stderr):
        from . import progress
        progress.watch(lines=lines)


def _progress_done():
    """Events printed or written: sysdig's last -P line, or the bar cleared, before what
    follows (summaries, statistics)."""
    if scap.Capture.progress is not None:
        scap.Capture.progress.close()


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _imports_done():
    """Take what the imports made out of the cycle collector's sight. Modules, classes and
    functions live as long as the process, yet the collector would go over each of them once
    before learning that: one collection of the ~100,000 objects of numpy, Polars, pyparsing
    and ours took 20 ms of a filter run, which itself makes ~13,000."""
    gc.freeze()


def field_listing():
    """-l: the field catalog by class, as sysdig lays it out."""
    from scaptool.query.fields import FIELDS
    by_class = {}
    for name, definition in sorted(FIELDS.items()):
        by_class.setdefault(name.split(".")[0], []).append(definition)
    out = []
    for cls, definitions in by_class.items():
        out.append(f"----------------------\nField Class: {cls}\n\n")
        for d in definitions:
            shown = d.name + ("[NAME]" if d.arg == "required" else "")
            out.append(f"{shown:<23} ({d.type}) {d.description}\n")
        out.append("\n")
    return "".join(out)


def _select(data, filter_text, numevents):
    import numpy as np
    keep = np.ones(len(data), dtype=bool)
    if numevents is not None:
        keep &= _first_events(data.capture, numevents)
    if filter_text.strip():
        from scaptool.query.select import filter_mask
        keep &= filter_mask(data.capture, filter_text, data)
    return keep


def _first_events(capture, count):
    """-n: the first `count` events sysdig reads. The container events that lead a section
    are consumed while the file is opened: they are numbered, but not counted."""
    import numpy as np

    from scaptool.query.summary import initial_state_mask
    counted = np.asarray(capture.event_numbers) > 0
    counted &= ~initial_state_mask(capture.event_types,
                                   starts=[s.first_event for s in capture.sections])
    first = counted & (np.cumsum(counted) <= count)
    if capture.progress is not None:  # -P ends where sysdig stops reading: after the last
        taken = np.flatnonzero(first)
        if len(taken) == count:
            capture.report("end", int(taken[-1]) + 1)
    return first


def _colour_terminal():
    """Does the output go to a terminal that may have colours (NO_COLOR unset)? sysdig's
    default line is then coloured."""
    try:
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    except (AttributeError, ValueError):
        return False


def _print_events(data, rows, fmt, as_json, terminal=False):
    import numpy as np

    from scaptool.query.format import (CONTAINER_FORMAT, DEFAULT_FORMAT, TERMINAL_FORMAT, format_lines,
                              json_lines)
    limit = data.bytebuf_limit
    selected = np.flatnonzero(data.visible) if rows is None else \
        data.visible_at(np.flatnonzero(rows))
    if fmt in ("c", "container"):
        fmt = CONTAINER_FORMAT
    elif fmt is None:
        # (-j then has the fields of the terminal's line: proc.pid too)
        fmt = TERMINAL_FORMAT if terminal else DEFAULT_FORMAT
    make = json_lines if as_json else format_lines
    for lo in range(0, len(selected), 65536):
        previous = int(selected[lo - 1]) if lo else None
        _write_lines(make(data, fmt, selected[lo:lo + 65536], limit, previous))
        data.capture.report("printing", int(selected[lo + 65535]) + 1
                            if lo + 65536 < len(selected) else len(data))
