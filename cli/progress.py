"""How far a long read, export or -w got: a bar on a terminal, or sysdig's -P lines anywhere.

Imported only when standard error is a terminal or -P is given (cli/read.py, cli/slice.py):
a run whose standard error goes to a file or a pipe neither imports nor computes anything for
progress. watch() puts one of two watchers on scap.Capture.progress, which the passes over a
capture tell how far they got (Capture.report, after each batch of printed lines and each chunk
a writer writes; and after each chunk of a gzip file inflated, as it is opened):

Bar    standard error is a terminal (and no -P). Once the command has worked for
       SCAPTOOL_PROGRESS_DELAY seconds (default 1; 0 shows it at once), a tqdm bar on standard
       error shows the phase: 'reading FILE' while the capture is opened and its state and
       fields are computed (a time only: nothing there reports how far it got), 'inflating'
       a gzip file, then 'printing' or 'writing' with the bytes of the file gone through (of its
       size on disk), the events, both rates and the time left. A thread of its own draws it
       (tqdm is imported there, and only then), so that it moves while numpy and Polars work;
       the passes themselves only store numbers. The bar never mixes with other output:
       - when standard output is a terminal too, the first thing printed there removes the
         bar for good (lines scrolling by show progress already; a bar redrawn between them
         would garble them);
       - whatever else is written to standard error (a warning, -v's statistics) clears the
         bar first, which comes back on the next line;
       - it is cleared when the command ends, however it ends.
Lines  -P, terminal or not: sysdig 0.29.3's progress lines, byte for byte in their form (see
       Lines). Without -P nothing of the kind is printed, -w included: sysdig turns its lines on
       whenever it writes a file it reads, but on a terminal the bar says more, and off one the
       carriage returns would only clutter a log.
"""
import os
import sys
import threading
import time

_TICK = 0.2            # seconds between two drawings of the bar
_LINES_EVERY = 10000   # sysdig prints a progress line at every 10000th event...
_LINES_STEP = 0.1      # ... when the percentage moved by more than this since the last one


def watch(lines=False, path=None):
    """Report progress for the rest of the command: sysdig's lines (-P) or, standard error
    being a terminal, a bar (naming `path`, the capture about to be read, from the start).
    The watcher is closed when the command's click context closes (errors included), or
    earlier by its close()."""
    import click

    from scaptool.scap import Capture
    watcher = Lines() if lines else Bar(_delay(), path)
    Capture.progress = watcher
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(watcher.close)
    return watcher


def _delay():
    """SCAPTOOL_PROGRESS_DELAY: seconds of work before the bar shows (default 1)."""
    try:
        return max(0.0, float(os.environ.get("SCAPTOOL_PROGRESS_DELAY", "1")))
    except ValueError:
        return 1.0


def _fraction(capture, upto):
    """The part of the capture read (None where its size is not known: a pipe)."""
    done, total, _, _ = capture.progress_point(upto)
    return done / total if total else None


class Lines:
    """sysdig's -P: on standard error, '\\r' and the percentage of the file read with two
    decimals, each new one after '\\r' and spaces over the previous (clean_last_progress_line,
    output_progress), and at the end '\\r', spaces, the final percentage unless it would not
    move, and a newline (handle_end_of_file): a capture of under 10000 events gives exactly
    '\\r\\r\\r100.00\\n', as sysdig does.

    The lines follow the passes that print or write events, as sysdig's follow its one pass:
    a line where a batch of them crosses a 10000th event and the percentage moved by more than
    0.1. sysdig's percentage is its zlib reader's position in the file, which runs ahead of the
    event by up to its buffer; ours is the end of the event's block (for a gzip file, the part
    of the inflated stream), so the numbers differ a little, not the form. A run that stops
    early (-n) ends at the percentage where it stopped, and one that fails at 100.00, as
    sysdig's do (though sysdig writes its error message first)."""

    def __init__(self):
        self._text = ""        # what is on the line now (sysdig's g_prg_line_buf)
        self._last = 0.0       # the last percentage printed (g_last_printed_progress_pct)
        self._events = 0       # events gone through at the last line
        self._end = 100.0
        self._closed = False

    def inflating(self, path, done, total):
        """(Inflating a gzip file is not a pass over events: sysdig's lines do not follow it.)"""

    def passed(self, capture, phase, upto):
        done, total, events, events_total = capture.progress_point(upto)
        if not total:
            return   # a pipe: no percentage to give
        if phase == "end":
            self._end = 100.0 * done / total
            return
        if phase not in ("printing", "writing") or \
                (events_total is not None and events >= events_total) or done >= total:
            # the end of a pass is handle_end_of_file's, when the command is done
            return
        if events // _LINES_EVERY > self._events // _LINES_EVERY:
            self._events = events
            self._show(100.0 * done / total)

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._clean()
        if sys.exc_info()[0] is not None:
            # closed as an error goes by: sysdig's handle_end_of_file without its inspector
            sys.stderr.write("\r100.00")
        else:
            self._show(self._end)
        sys.stderr.write("\n")
        sys.stderr.flush()
        self._forget()

    def _clean(self):
        self._text = " " * len(self._text)
        sys.stderr.write("\r" + self._text)

    def _show(self, percent):
        if percent - self._last > _LINES_STEP:
            self._clean()
            self._text = f"{percent:.2f}"
            sys.stderr.write("\r" + self._text)
            sys.stderr.flush()
            self._last = percent

    def _forget(self):
        from scaptool.scap import Capture
        if Capture.progress is self:
            Capture.progress = None


class Bar:
    """The progress bar on a terminal's standard error (see the module's description)."""

    def __init__(self, delay, path=None):
        # (phase, bytes done, bytes in all, events done, events in all, file), as last reported
        self._state = None
        if path is not None:
            self.opening(path)
        self._lock = threading.RLock()  # the drawing thread's, and other writers' to stderr
        self._stop = threading.Event()
        self._bar = None                # the tqdm bar, once shown
        self._phase = None
        self._phase_started = time.monotonic()
        self._phase_events = 0
        self._drawing = False
        self._quiet = False             # standard output (a terminal) has been written to
        self._closed = False
        self._err = sys.stderr
        self._err_write = self._err.write
        self._err.write = self._write_err
        self._out = sys.stdout if _isatty(sys.stdout) else None
        if self._out is not None:
            self._out_write = self._out.write
            self._out.write = self._write_out
        self._thread = threading.Thread(target=self._run, args=(delay,), daemon=True,
                                        name="scaptool-progress")
        self._thread.start()

    # -- what the passes report (on the main thread: they only store numbers) ----------------
    def inflating(self, path, done, total):
        self._state = ("inflating", done, total, 0, 0, path)

    def opening(self, path):
        """A capture is about to be read as a stream (its size on disk, its events unknown)."""
        try:
            size = os.path.getsize(path)
        except (OSError, TypeError):
            size = 0
        self._state = ("reading", 0, size, 0, None,
                       str(path) if isinstance(path, (str, os.PathLike)) else None)

    def passed(self, capture, phase, upto):
        if phase == "end":
            return
        done, total, events, events_total = capture.progress_point(upto)
        if phase == "opened":
            self._state = ("reading", 0, total, 0, events_total, capture.path)
            return
        self._state = (phase, done, total or 0, events, events_total, capture.path)

    def close(self):
        """Stop drawing, clear the bar, give the streams back (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._remove()
        self._restore_out()
        if self._err.__dict__.get("write") == self._write_err:
            del self._err.write
        from scaptool.scap import Capture
        if Capture.progress is self:
            Capture.progress = None

    # -- the streams --------------------------------------------------------------------------
    def _write_err(self, text):
        """Anything written to standard error: the bar's own drawing, or another's text, which
        clears the bar first (it comes back below on the next tick)."""
        with self._lock:
            if self._bar is not None and not self._drawing:
                self._drawing = True
                try:
                    self._bar.clear()
                finally:
                    self._drawing = False
            return self._err_write(text)

    def _write_out(self, text):
        """The first thing written to standard output, a terminal: the bar goes for good."""
        self._restore_out()
        with self._lock:
            self._quiet = True
            self._remove()
            self._err.flush()
        return self._out.write(text)

    def _restore_out(self):
        if self._out is not None and self._out.__dict__.get("write") == self._write_out:
            del self._out.write

    # -- the drawing thread -------------------------------------------------------------------
    def _run(self, delay):
        if self._stop.wait(delay):
            return
        try:
            from tqdm import tqdm
        except ImportError:  # a dependency; without it, no bar rather than a failed command
            return
        while True:
            with self._lock:
                if self._stop.is_set() or self._quiet:
                    return
                self._drawing = True
                try:
                    self._draw(tqdm)
                finally:
                    self._drawing = False
            if self._stop.wait(_TICK):
                return

    def _draw(self, tqdm):
        phase, done, total, events, events_total, name = self._state or (
            "reading", 0, 0, 0, 0, None)
        if phase != self._phase:
            self._phase, self._phase_events = phase, events
            self._phase_started = time.monotonic()
            self._remove()
        steps = phase != "reading" and total > 0   # a pass that tells how far it got
        if steps:
            desc = phase
            form = ("{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}B{postfix} "
                    "[{rate_fmt}, {remaining} left]")
            postfix = f"{_size(events)} events{self._event_rate(events)}" \
                if events_total or events else ""
        else:
            desc = f"{phase} {os.path.basename(name) if name else 'the capture'}"
            if events_total:
                desc += f" ({_size(total)}B, {_size(events_total)} events)"
            elif events:   # read as a stream: how far, without an end to compare with
                desc += f": {_size(events)} events{self._event_rate(events)}"
            elif total:
                desc += f" ({_size(total)}B)"
            form, postfix = "{desc} [{elapsed}]", ""
        columns, lines = self._terminal_size()
        if self._bar is None:
            # a bar for each phase, whose rates count from its start (or, for a pass first
            # heard of after its first batch, from where that batch left it)
            tqdm.monitor_interval = 0  # no monitor thread: this one draws
            tqdm.set_lock(self._lock)  # (its default lock would load multiprocessing)
            self._bar = tqdm(total=total if steps else None, initial=min(done, total),
                             desc=desc, bar_format=form, postfix=postfix or None,
                             ncols=columns, nrows=lines, file=self._err, leave=False,
                             unit="B", unit_scale=True, mininterval=0, miniters=0)
            return
        bar = self._bar
        bar.ncols, bar.nrows = columns, lines
        bar.desc, bar.bar_format, bar.postfix = desc, form, postfix
        if steps:
            bar.n = min(done, total)
        bar.refresh()

    def _event_rate(self, events):
        spent = time.monotonic() - self._phase_started
        counted = events - self._phase_events
        return f" ({_size(counted / spent)}/s)" if spent > 0 and counted > 0 else ""

    def _terminal_size(self):
        """The terminal's columns and lines now (it may have been resized); 80 x 24 where it
        says 0 x 0, as a pseudo-terminal that nobody sized does (tqdm would draw nothing)."""
        try:
            size = os.get_terminal_size(self._err.fileno())
        except (AttributeError, ValueError, OSError):
            return 80, 24
        return size.columns or 80, size.lines or 24

    def _remove(self):
        if self._bar is not None:
            drawing, self._drawing = self._drawing, True
            try:
                self._bar.close()  # leave=False: the line is cleared
            finally:
                self._drawing = drawing
            self._bar = None


def _size(n):
    """1234567 -> '1.23M', as tqdm writes sizes (SI prefixes); under 1000, the number."""
    if n < 1000:
        return str(round(n))
    from tqdm import tqdm
    return tqdm.format_sizeof(n)


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
