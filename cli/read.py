"""`scaptool [read] -r FILE [options] [filter]`: sysdig's reading options."""
import gc
import os
import sys
import time
import warnings

import click

from scaptool import scap

from . import polars_import
from .fleet import options as fleet_options

# A capture is read a chunk at a time (query.chunks): at most CHUNK_EVENTS events, and
# CHUNK_BYTES bytes, the reader's window. Peak memory follows the chunk (about 1.5 KB an
# event while its state, columns and lines are made); at 2^16 events and 8 MiB, a command's
# peak RSS stays under 300 MB on the benchmark's captures, with a small cost in time.
CHUNK_EVENTS = 1 << 16
CHUNK_BYTES = 8 << 20


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
@click.option("-r", "--read", "paths", metavar="FILE", multiple=True,
              help="Read events from this capture (plain or gzip-compressed; -: standard "
                   "input). Without -r, this machine is read live (root). Several -r "
                   "read their captures one after the other, as sysdig does: each numbered "
                   "and with state of its own, -S counting them all; -w writes them all. A "
                   "glob ('captures/*.scap') or folder reads each capture it names so; with "
                   "a table chisel (topprocs_file...) it makes one table of them all, a row "
                   "per capture and key, the captures read in parallel (--jobs, --cluster).")
@click.option("-w", "--write", "out", metavar="OUT",
              help="Write the events to a capture in the current format instead of printing "
                   "(-: to standard output).")
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
              help="Live: the bytes of each I/O buffer to capture (default 80). Reading a "
                   "file it changes nothing (the file's buffers are what they are).")
@click.option("-M", "--seconds", "seconds", type=float, metavar="SECONDS",
              help="Live: stop after this many seconds.")
@click.option("-C", "--file-size", "file_size", type=float, metavar="SIZE_MB",
              help="Live, with -w: a new file once the current one holds SIZE_MB million "
                   "bytes (OUT0, OUT1, ...).")
@click.option("-G", "--seconds-per-file", "file_seconds", type=float, metavar="SECONDS",
              help="Live, with -w: a new file every SECONDS (OUT through strftime when it "
                   "holds a % format, else OUT0, OUT1, ...).")
@click.option("-W", "--limit", "file_limit", type=int, metavar="COUNT",
              help="With -C: at most COUNT files, reused from the first; with -G: stop once "
                   "COUNT files are written.")
@click.option("-F", "--fatfile", is_flag=True,
              help="With -w and a filter: also write the events left out that change state "
                   "(processes, fds), flagged so that readers use them without showing them; "
                   "names then resolve in the file. Always so when reading a file.")
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
@fleet_options
@click.argument("filter_words", nargs=-1, metavar="[FILTER]...")
def read(paths, out, compress, summary, quiet, fmt, as_json, buffers, verbose, timetype,
         numevents, snaplen, seconds, file_size, file_seconds, file_limit, fatfile,
         list_fields, list_events, chisel_name, chisel_info, jobs, cluster, filter_words):
    """Read a capture the way `sysdig -r` does; without -r, read this machine live."""
    if chisel_name == "l":  # sysdig's -cl is -c with the name "l"
        from scaptool import chisels
        click.echo(chisels.listing(), nl=False)
        return
    if chisel_info:
        from scaptool import chisels
        click.echo(chisels.describe(chisels.find(chisel_info)), nl=False)
        return
    if list_fields:
        from scaptool.query.fields import field_listing
        click.echo(field_listing(), nl=False)
        return
    if list_events:
        from scaptool.scap.eventtable import format_event_list, sysdig_0293
        click.echo(format_event_list(sysdig_0293()), nl=False)
        return
    # `-r -` reads standard input (a pipe from `scaptool -w -`, say)
    paths = tuple("/dev/stdin" if path == "-" else path for path in paths)
    paths, many = _expanded(paths)
    if out:
        from scaptool.scap.writer import check_output
        check_output(out, paths)   # before anything is read
    chisel = None
    if chisel_name:
        polars_import.load()
        from scaptool import chisels  # an unknown chisel fails before the capture is read
        chisel = chisels.find(chisel_name)
    # damage is reported once, in one line after the events before it, not as a warning
    warnings.simplefilter("ignore", scap.ScapWarning)
    if many and chisel is not None and not out and _fleet_table(paths, chisel, filter_words,
                                                                jobs, cluster):
        sys.exit(1)
    run = _Run(out, compress, summary, quiet, fmt, as_json, buffers, verbose, timetype,
               numevents, chisel, filter_words)
    if file_size or file_seconds or file_limit:
        if paths or not out or out == "-":
            raise click.UsageError("-C, -G and -W split a live capture written with -w FILE")
        run.rotation = dict(size_mb=file_size, seconds=file_seconds, count=file_limit)
    if not paths:
        from . import live
        live.read_live(run, snaplen=snaplen, seconds=seconds, fatfile=fatfile)
        return
    damage = None
    try:
        for path in paths:
            damage = run.read(path)
            if damage is not None:   # sysdig stops there too: the files after it are not read
                break
            if run.chisel_carry.get("capture_ended"):   # the chisel has seen what it wanted
                break
    except BaseException:
        run.abort()   # a -w output begun is dropped, not left half-written
        raise
    if damage is not None:
        # one line, after every event before the damage and before the -S table, as sysdig
        # prints it; the command then fails, so that scripts can tell
        sys.stdout.flush()
        click.echo(f"scaptool: {scap.error_line(damage)}", err=True)
    run.finish()
    if damage is not None:
        sys.exit(1)


def _expanded(paths):
    """-r 'captures/*.scap' or -r captures/: the captures a glob or folder names, in order,
    as if each were given with -r (a file of that very name is read as it is); and whether
    a glob or folder was given."""
    from scaptool.query import fleet
    out, many = [], False
    for path in paths:
        if os.path.isfile(path) or path.startswith("/dev/") or not fleet.is_many(path):
            out.append(path)
        else:
            many = True
            try:
                out.extend(fleet.expand([path]))
            except fleet.FleetError as e:
                raise scap.ScapError(str(e)) from None
    return tuple(out), many


def _fleet_table(paths, chisel, words, jobs, cluster):
    """A table chisel over a glob or folder: one table of every capture, each read in
    parallel (chisels/fleet.py). Returns whether a capture failed; None when the chisel is
    no table (then the captures are read one after the other, as several -r)."""
    from scaptool.chisels import fleet as fleet_tables
    if not fleet_tables.is_table(chisel.name):
        return None
    from . import fleet
    report = fleet.Report(len(paths), "reading")
    try:
        failed = fleet_tables.print_fleet_table(paths, chisel.name, words, sys.stdout,
                                                jobs=jobs, cluster=cluster, on_done=report)
    finally:
        report.close()
    return failed > 0


class _Run:
    """One command over one or more captures, read one after the other as sysdig does: each
    capture on its own (numbering, state, -n, a chisel's pass), the -S counters and the -w
    output shared."""

    def __init__(self, out, compress, summary, quiet, fmt, as_json, buffers, verbose, timetype,
                 numevents, chisel, filter_words):
        self.out, self.compress, self.summary, self.quiet = out, compress, summary, quiet
        self.fmt, self.as_json, self.buffers, self.verbose = fmt, as_json, buffers, verbose
        self.timetype, self.numevents = timetype, numevents
        self.chisel, self.filter_words = chisel, filter_words
        self.counts = None
        self.writer = None
        self.keep_state = True   # -w with a filter: the events that change state too
        self.chisel_carry = {}
        self.live = False        # reading this machine: output flushed as it comes
        self.rotation = None     # -C/-G/-W: the RotatingWriter's settings

    def read(self, path):
        """Read one capture; returns the error that ended it early, or None."""
        started = time.perf_counter()
        if not self.live:
            _watch_progress(path)   # sysdig's -P lines end with each capture
        if self.chisel is None and (self.filter_words or self.numevents is not None
                                    or not (self.quiet or self.out)):
            damage, events = self._read_in_chunks(path)
        elif self.chisel is None:
            damage, events = self._count_in_chunks(path)
        else:
            damage = self._run_chisel(path)
            _progress_done()
            return damage
        if self.verbose and not self.live:
            # sysdig -v ends each capture with its statistics on stderr; a file has no
            # driver counters (live, cli/live.py prints the helper's)
            elapsed = time.perf_counter() - started
            click.echo("Driver Events:0\nDriver Drops:0\nSuppressed by Comm:0\n"
                       f"Elapsed time: {elapsed:.3f}, Captured Events: {events}, "
                       f"{events / elapsed if elapsed else 0:.2f} eps", err=True)
        return damage

    def _read_in_chunks(self, path):
        """Events to select, print or write: the file is read a chunk at a time (query.chunks,
        over scap.stream), with sysdig's state carried from one chunk to the next, so that
        memory follows the chunk, not the capture. Returns (the error that ended the capture
        early or None, the number of the last event read)."""
        import numpy as np
        polars_import.load()
        from scaptool.query.chunks import Reading, event_data_chunks
        filter_text = " ".join(self.filter_words)
        if filter_text.strip():
            import scaptool.query.select  # noqa: F401 - pyparsing and the grammar, first
        _imports_done()
        terminal = _colour_terminal()
        limit = None if (self.verbose or self.as_json) else 80
        left = self.numevents
        writer = self._writer() if self.out else None
        reading = Reading()
        numbered = 0
        for data in event_data_chunks(path, CHUNK_EVENTS, window=CHUNK_BYTES,
                                      bytebuf_limit=limit,
                                      buffer_format=self.buffers or "normal",
                                      reading=reading):
            data.timetype = self.timetype
            chunk = data.capture
            if len(chunk) > chunk.context:
                numbered = max(numbered, int(chunk.event_numbers[-1]))
            own = np.zeros(len(data), dtype=bool)
            own[chunk.context:] = True
            rows = None
            if filter_text.strip() or left is not None:
                rows = own.copy()
                if left is not None:
                    first = _first_events(chunk, left)
                    left -= int(np.count_nonzero(first))
                    rows &= first
                if filter_text.strip():
                    from scaptool.query.select import filter_mask
                    rows &= filter_mask(chunk, filter_text, data)
            if writer is not None:
                writer.add(chunk, rows)
                if getattr(writer, "finished", False):
                    break   # -G with -W: the files are all written
            elif not self.quiet:
                _print_events(data, rows, self.fmt, self.as_json, terminal)
                if self.live:
                    sys.stdout.flush()
            if self.summary:
                from scaptool.query.summary import capture_summary_counts
                counts = capture_summary_counts(chunk, own if rows is None else rows)
                self.counts = counts if self.counts is None else self.counts + counts
            # (the lines printed report as they go; this covers chunks with none selected)
            chunk.report("writing" if writer is not None else
                         "filtering" if self.quiet else "printing", len(chunk))
            if left == 0:
                break   # -n: sysdig reads no further
        if reading.damage is not None and numbered == 0 and \
                not isinstance(reading.damage, scap.TruncatedError):
            raise reading.damage   # not a capture at all, no such file...: nothing was read
        if writer is None:   # with -w the pass goes on: the file is finished at the end
            _progress_done()
        if terminal and not self.out and (self.fmt in (None, "c", "container") or self.as_json):
            # sysdig resets the terminal's colours once a capture's events are printed (not
            # after a format of the user's own)
            click.echo("\x1b[00m", nl=False)
        return reading.damage, numbered

    def _count_in_chunks(self, path):
        """Nothing to select or print (-S -q, -q, -w of every event): the events are counted
        (and written) a chunk at a time as the stream reader hands them out, without any
        state, which none of this needs. Returns what _read_in_chunks returns."""
        from scaptool.query.chunks import Carry, ChunkCapture
        from scaptool.scap.stream import EventChunk, StreamReader
        _imports_done()
        writer = self._writer() if self.out else None
        reader = StreamReader(path, max_events=CHUNK_EVENTS, max_bytes=CHUNK_BYTES,
                              read_size=CHUNK_BYTES)
        carry, numbered, damage = None, 0, None
        try:
            for item in reader:
                if not isinstance(item, EventChunk):
                    carry = None   # a section starts
                    continue
                chunk = ChunkCapture(item, carry, False, path=reader.path,
                                     compressed=bool(reader.compressed))
                numbers = chunk.event_numbers
                if len(numbers):
                    numbered = max(numbered, int(numbers.max()))
                if writer is not None:
                    writer.add(chunk)
                    if getattr(writer, "finished", False):
                        break   # -G with -W: the files are all written
                if self.summary:
                    from scaptool.query.summary import capture_summary_counts
                    counts = capture_summary_counts(chunk)
                    self.counts = counts if self.counts is None else self.counts + counts
                chunk.report("writing" if writer is not None else "reading", len(chunk))
                carry = Carry(section=chunk.section_index, numbered=numbered)
                chunk.release()
        except scap.WriteError:
            raise   # the output's failure, not the capture's damage
        except scap.ScapError as e:
            damage = e
        finally:
            reader.close()
        if damage is not None and numbered == 0 and not isinstance(damage, scap.TruncatedError):
            raise damage   # not a capture at all, no such file...: nothing was read
        if writer is None:
            _progress_done()
            if _colour_terminal() and (self.fmt in (None, "c", "container") or self.as_json):
                click.echo("\x1b[00m", nl=False)   # as sysdig resets them, -q or not
        return damage, numbered

    def abort(self):
        if self.writer is not None:
            self.writer.__exit__(RuntimeError, None, None)
            self.writer = None

    def _writer(self):
        """Where -w's events go: one file for every capture read, opened with the first."""
        if self.writer is None and self.rotation is not None:
            from scaptool.scap.live.rotation import RotatingWriter
            self.writer = RotatingWriter(self.out, compress=self.compress,
                                         keep_state=self.keep_state, skip_pids=(os.getpid(),),
                                         **self.rotation)
        elif self.writer is None:
            from scaptool.scap.rewrite import CaptureWriter
            self.writer = CaptureWriter(self.out, compress=self.compress,
                                        keep_state=self.keep_state)
        return self.writer

    def _run_chisel(self, path):
        """A chisel over the capture: a chunked one reads it a chunk at a time, as printing
        does (chisels/run.py). Returns the error that ended the capture early, or None."""
        from scaptool.chisels.run import run_chisel
        _imports_done()
        return run_chisel(path, self.chisel, self.filter_words, chunk_events=CHUNK_EVENTS,
                          window=CHUNK_BYTES,
                          buffer_format=self.buffers or "normal", timetype=self.timetype,
                          print_container=self.fmt in ("c", "container"),
                          carry=self.chisel_carry).damage

    def finish(self):
        """What comes once every capture is read: the -w output, the -S table."""
        if self.out:
            sys.stdout.flush()
            self._writer().__exit__(None, None, None)
            _progress_done()
        if self.summary:
            from scaptool.query.summary import format_summary, summary_counts
            counts = self.counts if self.counts is not None else summary_counts([])
            click.echo(format_summary(counts), nl=False)


def _watch_progress(path=None):
    """-P: sysdig's progress lines; else, standard error on a terminal: a progress bar (see
    cli/progress.py, which nothing else imports: a run without either costs no more).
    `path`: the capture about to be read, for the bar to name."""
    lines = click.get_current_context().meta.get("scaptool.progress_lines", False)
    if scap.Capture.progress is None and (lines or _isatty(sys.stderr)):
        from . import progress
        progress.watch(lines=lines, path=path)


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


def _first_events(capture, count):
    """-n: the first `count` events sysdig reads (query.select.first_events), and -P's last
    line where sysdig stops reading."""
    import numpy as np

    from scaptool.query.select import first_events
    first = first_events(capture, count)
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

    from scaptool.query.outputs import output_for
    output = output_for(fmt, as_json)
    selected = np.flatnonzero(data.visible) if rows is None else \
        data.visible_at(np.flatnonzero(rows))
    for lo in range(0, len(selected), 65536):
        previous = int(selected[lo - 1]) if lo else None
        _write_lines(output.lines(data, selected[lo:lo + 65536], fmt, terminal=terminal,
                                  previous=previous))
        data.capture.report("printing", int(selected[lo + 65535]) + 1
                            if lo + 65536 < len(selected) else len(data))
