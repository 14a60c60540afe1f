"""Running a chisel: sysdig's rules for its arguments, and what the chisel function gets.

A chisel registered with chunked=True is called once per chunk of the capture (query.chunks),
with one ChiselRun that holds each chunk in turn (see chisels/__init__.py); any other is
called once, with the whole capture. SCAPTOOL_CHUNK_EVENTS, an internal setting for tests,
overrides the number of events per chunk (small chunks put their bounds everywhere)."""
import os
import re
import sys

import numpy as np

from . import ChiselError

# A chisel's own escape sequences start with OWN_ESC, a private-use character no capture's
# text is let through with: ChiselRun.write shows the control characters a terminal acts on
# (ACTIVE) as '.', so that names, paths and buffers from a capture cannot drive the terminal,
# and only then makes OWN_ESC the real ESC.
OWN_ESC = "\ue01b"
COLORS = {"red": OWN_ESC + "[31m", "green": OWN_ESC + "[32m", "yellow": OWN_ESC + "[33m",
          "blue": OWN_ESC + "[34m", "cyan": OWN_ESC + "[36m", "reset": OWN_ESC + "[0m"}
# The characters a terminal acts on rather than shows (ECMA-48, as xterm does): ENQ (makes it
# answer, as if typed), BEL, BS, VT, FF, CR (overwrite what was shown), SO and SI (switch its
# character set), ESC (starts the sequences that retitle, clear, move, remap) and the C1
# controls (U+009B is a one-character CSI for some). They are shown as '.'; the other C0
# controls and DEL, which a terminal ignores, stay as sysdig prints them; so does OWN_ESC
# when it is ours (_DEFUSE_OWN).
ACTIVE = [0x05, 0x07, 0x08, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x1B, *range(0x80, 0xA0)]
_DEFUSE = {c: "." for c in [*ACTIVE, ord(OWN_ESC)]}
_DEFUSE_OWN = {**_DEFUSE, ord(OWN_ESC): "\x1b"}
# the same for raw bytes written as they are, but for the colour sequences (SGR: ESC [ ... m)
# of the program whose output they are, as the stdout chisel shows a coloured log; C1
# controls are two bytes in UTF-8 and are left alone here
_RAW_CONTROLS = re.compile(rb"\x1b(?!\[[0-9;]*m)|[\x05\x07\x08\x0b-\x0f]")


def defused(text):
    """What a chisel writes, the control characters a terminal acts on as '.' and its own
    escapes made real."""
    return text.translate(_DEFUSE_OWN)


def defused_bytes(data):
    """Raw bytes a chisel writes as they are (echo_fds, stdout...), on a terminal: their
    active control bytes (ACTIVE) as '.', but for colour sequences."""
    return _RAW_CONTROLS.sub(b".", data)


def split_words(text):
    """sysdig's split of a chisel's argument string: spaces separate, '...' or `...` group."""
    words, current, quote, started = [], [], None, False
    for ch in text.strip():
        if quote:
            if ch == quote:
                quote = None
            else:
                current.append(ch)
        elif ch in "'`":
            quote, started = ch, True
        elif ch == " ":
            if current or started:
                words.append("".join(current))
            current, started = [], False
        else:
            current.append(ch)
    if quote:
        raise ChiselError("corrupted parameters")
    if current or started:
        words.append("".join(current))
    return words


def take_arguments(chisel, words):
    """(argument values by name, the filter text) from the words after `-c NAME`, as sysdig
    decides: a chisel with a required argument always takes the next word; one with only
    optional arguments takes it unless it starts with '-' or the words read as a filter."""
    words = list(words)
    if not chisel.args:
        return {}, " ".join(words)
    required = [a for a in chisel.args if not a.optional]
    consume = bool(words)
    if consume and not required:
        only_filter = len(chisel.args) == 1 and chisel.args[0].type == "filter"
        if not only_filter and (words[0].startswith("-") or _is_filter(" ".join(words))):
            consume = False
    if not consume:
        if required:
            raise ChiselError(f"chisel {chisel.name}: wrong number of parameters")
        return {}, " ".join(words)
    values = split_words(words[0]) if chisel.args[0].type != "filter" or len(chisel.args) > 1 \
        else [words[0]]
    if len(values) < len(required):
        raise ChiselError(f"chisel {chisel.name}: wrong number of parameters")
    if len(values) > len(chisel.args):
        raise ChiselError(f"chisel {chisel.name}: too many parameters")
    return dict(zip((a.name for a in chisel.args), values)), " ".join(words[1:])


def _is_filter(text):
    """Does the text compile as a filter (known fields, no bare words)?"""
    from scaptool.query.api import filter_expr
    try:
        filter_expr(text)
        return True
    except (ValueError, KeyError):
        return False


class ChiselRun:
    """What a chisel gets: the capture and its event data, the user's filter and arguments,
    and helpers to select events, compute fields and write (coloured) output."""

    def __init__(self, capture, data, user_filter, args, out=None, color=None, carry=None):
        self.capture = capture
        self.data = data
        self.user_filter = user_filter.strip()
        self.args = args
        self.out = out or sys.stdout
        if color is None:
            color = _isatty(self.out) and not os.environ.get("NO_COLOR")
        self.color = color
        self.terminal = color
        self.print_container = False  # sysdig -pc: show each event's container
        self._events_over = False
        self._reset_line = False
        # where this piece of the capture is in its reading (a whole capture: first and final)
        self.first = True
        self.final = True
        # what a chunked chisel keeps from one chunk of this capture to the next
        self.state = {}
        self.stopped = False
        # how the capture is read: events per chunk, EventData options (read_again)
        self.chunk_events = None
        self.options = {"bytebuf_limit": None}
        # what a chunked reading reads (read_again reads it again); None for a whole capture
        self.source = None
        self.damage = None
        # What a chisel keeps from one capture to the next when several are read one after
        # the other (sysdig keeps its chisels' Lua state: the table printed after the second
        # capture counts the first one's events too). Empty for the first capture.
        self.carry = {} if carry is None else carry

    def arg(self, name, default=None, kind=str):
        value = self.args.get(name)
        if value is None:
            return default
        try:
            return kind(value)
        except ValueError:
            raise ChiselError(f"invalid value {value!r} for argument {name}") from None

    def mask(self, chisel_filter=None, *, visible=True, user=True):
        """A bool per event: the user's filter and the chisel's own both match (only events
        sysdig shows, unless visible=False). A chunk's context events (the chunk before's,
        there to be read) never match."""
        from scaptool.query.select import filter_mask
        keep = self.data.visible.copy() if visible else np.ones(len(self.data), dtype=bool)
        keep[:getattr(self.capture, "context", 0)] = False
        texts = [t for t in (self.user_filter if user else "", chisel_filter) if t]
        if texts:
            keep &= filter_mask(self.capture, " and ".join(f"({t})" for t in texts), self.data)
        return keep

    def select(self, chisel_filter=None, **kwargs):
        """The rows of mask(...)."""
        return np.flatnonzero(self.mask(chisel_filter, **kwargs))

    def fields(self, rows, names):
        """A DataFrame of the named fields at the given rows (one column per name)."""
        from scaptool.query.fields import columns_at
        return columns_at(self.data, names, np.asarray(rows, dtype=np.int64), printed=True)

    def texts(self, rows, names):
        """The fields as sysdig prints them (text, None where <NA>), one list per name."""
        from scaptool.query.fields import lookup
        from scaptool.query.format import field_texts
        frame = self.fields(rows, names)
        return {n: field_texts(frame[n], lookup(n)[0].kind, None) for n in names}

    def containers(self, rows):
        """Per row, (container.id, container.name) as sysdig's chisels print them with -pc:
        'host' on the host, Lua's nil where the value is missing."""
        texts = self.texts(rows, ["container.id", "container.name"])
        return [(cid or "nil", name or "nil")
                for cid, name in zip(texts["container.id"], texts["container.name"])]

    def reading_rows(self, rows):
        """Where rows of this piece are in the whole reading of the capture (a chunk's rows
        come after those of the chunks before it): positions that can be compared, kept and
        ordered from one chunk to the next."""
        from scaptool.query.chunks import reading_rows
        return reading_rows(self.data, rows)

    def read_again(self):
        """The whole capture read again from its start, a chunk at a time as a reading of
        the chisel's own (an EventData per chunk, the file opened again): for what needs
        events of chunks given up already, e.g. those before a moment found later. A chisel
        that calls it registers with rereads=True; it holds the whole capture (one piece)
        when its source cannot be read twice."""
        if self.source is None:   # the whole capture is at hand
            return iter([self.data])
        if not _rereadable(self.source):
            raise ChiselError("a chisel that reads its capture again says so (rereads)")
        from scaptool.query.chunks import event_data_chunks
        source = self.source
        if getattr(source, "spooled", False):   # a live stream, copied as it was read
            source = source.path
        return event_data_chunks(source, chunk_size(self.chunk_events),
                                 window=getattr(self, "window", None), **self.options)

    def stop(self):
        """Read no further of this capture: the chisel is not called again for it."""
        self.stopped = True

    def end_capture(self):
        """Read no further: of several captures read one after the other, the ones after
        this one are not read either (sysdig's end_capture)."""
        self.carry["capture_ended"] = True
        self.stop()

    def _hold(self, data, first, final):
        """Hold the next piece of the capture."""
        self.capture = data.capture
        self.data = data
        self.first, self.final = first, final

    def write(self, text):
        self.out.write(defused(text))

    def line(self, text=""):
        self.out.write(defused(text) + "\n")

    def events_over(self):
        """Mark the end of what the chisel prints while the events are read: on a terminal,
        sysdig resets the colours there (once)."""
        if self.terminal and not self._events_over:
            self.write(OWN_ESC + "[00m")
        self._events_over = True

    def reset_line(self):
        """The line of a chisel that resets the colours itself once the events are read
        (Chisel.resets), after sysdig's own reset; printed once, on a terminal."""
        self.events_over()
        if self.color and not self._reset_line:
            self.line(COLORS["reset"])
        self._reset_line = True

    def paint(self, color):
        """The escape sequence for a colour, or '' when not colouring."""
        return COLORS[color] if self.color else ""


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run_chisel(capture, name, words, *, data=None, out=None, disable_color=False,
               print_container=False, carry=None, chunk_events=None, window=None,
               buffer_format="normal",
               timetype="h"):
    """Take the chisel's arguments from `words` and run it over the capture; `name` is a
    chisel's name or file, or a Chisel already found (a user's file then runs once).
    `capture`: an open Capture, or what query.chunks reads (a path, a binary file object, a
    file descriptor), opened here only for a chisel that reads the whole capture at once.
    print_container: sysdig's -pc, which makes some chisels show each event's container.
    carry: a dict kept across the captures of one command (ChiselRun.carry).
    A chunked chisel reads the capture `chunk_events` events at a time (query.chunks'
    default size when None; 0: the whole capture at once); given `data` (an EventData over
    the whole capture), it reads that. buffer_format and timetype: the EventData options of
    -A/-x/-X and -t. The run's `damage` is the error that ended the capture early, or None."""
    from . import Chisel, find
    chisel = name if isinstance(name, Chisel) else find(name)
    args, user_filter = take_arguments(chisel, words)
    if user_filter.strip():
        from scaptool.query.api import filter_expr
        filter_expr(user_filter)  # a bad filter fails before any work
    run = ChiselRun(capture, data, user_filter, args, out,
                    color=False if disable_color else None, carry=carry)
    run.print_container = print_container
    run.chunk_events = chunk_events
    run.window = window   # the reader's window and the most bytes a chunk holds (None: default)
    run.options = dict(bytebuf_limit=None, buffer_format=buffer_format) if data is None else \
        dict(bytebuf_limit=data.bytebuf_limit, buffer_format=data.buffer_format)
    # on a terminal sysdig resets the colours once it has read the events: before a table's
    # output, after an event-by-event chisel's (which then may reset them its own way)
    if chisel.at_end:
        run.events_over()
    for piece, first, final in _pieces(run, capture, chisel, data, chunk_events):
        piece.timetype = timetype
        run._hold(piece, first, final)
        chisel.run(run)
        if run.stopped:
            break
    run.events_over()
    if chisel.resets:
        run.reset_line()
    return run


def _pieces(run, source, chisel, data, chunk_events):
    """(EventData, first, final) of each piece the chisel is called with: the chunks of the
    capture for a chunked chisel, else the whole capture. A chisel that reads its capture
    again (Chisel.rereads) gets the whole capture at once from what cannot be read twice (a
    pipe)."""
    from scaptool.query.events import EventData
    options = run.options
    if data is not None:
        yield data, True, True
        return
    events = chunk_size(chunk_events)
    if not chisel.chunked or not events or \
            (chisel.reads_again(run.args) and not _rereadable(source)):
        capture = _opened(source)
        run.damage = capture.damage
        yield EventData(capture, **options), True, True
        return
    from scaptool.query.chunks import Reading, event_data_chunks
    run.source = source
    reading = Reading()
    first = True
    for piece in event_data_chunks(source, events, reading=reading,
                                   window=getattr(run, "window", None), **options):
        chunk = piece.capture
        yield piece, first, chunk.last
        first = False
        chunk.report("printing", len(chunk))   # the progress bar, sysdig's -P lines
    run.damage = reading.damage
    if first:
        # no chunk: not a capture (the error the whole capture gives), or no events (the
        # chisel still sees the empty capture)
        if reading.damage is not None and not _rereadable(source):
            raise reading.damage
        capture = _opened(source)
        run.damage = capture.damage
        yield EventData(capture, **options), True, True


def _opened(source):
    """The whole capture: `source` itself when it is a Capture, else opened from its path;
    what cannot be mapped (a pipe, a file object, a file descriptor) is first copied to a
    temporary file, which goes as soon as it is mapped."""
    from scaptool import scap
    from scaptool.scap.capture import Capture
    if isinstance(source, Capture):
        return source
    if getattr(source, "ended", False) and hasattr(source, "capture_read"):
        # a live stream (scap.live.stream), read to its end already
        return source.capture_read()
    if isinstance(source, (str, os.PathLike)) and not _a_stream(source):
        return scap.open(source)   # (what is not there, or not a file: the error it gives)
    import shutil
    import tempfile
    name = source if isinstance(source, (str, os.PathLike)) else getattr(source, "name", None)
    with tempfile.NamedTemporaryFile(prefix="scaptool-", suffix=".scap",
                                     delete=False) as spool:
        try:
            if isinstance(source, int):
                with open(source, "rb", closefd=False) as stream:
                    shutil.copyfileobj(stream, spool, 1 << 20)
            elif isinstance(source, (str, os.PathLike)):
                with open(source, "rb") as stream:
                    shutil.copyfileobj(stream, spool, 1 << 20)
            else:
                shutil.copyfileobj(source, spool, 1 << 20)
            spool.flush()
            capture = scap.open(spool.name)
        finally:
            os.unlink(spool.name)
    if isinstance(name, (str, os.PathLike)):
        capture.path = os.fspath(name)   # what errors and the chisel name it by
    return capture


def _a_stream(path):
    """Is the path there, and not a regular file (a named pipe, a terminal, /dev/stdin)?"""
    import stat
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _rereadable(source):
    """Can the capture be read again from its start (a regular file, not a pipe)?"""
    import stat

    from scaptool.scap.capture import Capture
    if isinstance(source, Capture):
        source = source.path
    if getattr(source, "spooled", False):
        return True   # a live stream that keeps a copy of itself (scap.live.stream)
    if not isinstance(source, (str, os.PathLike)):
        return False
    try:
        return stat.S_ISREG(os.stat(source).st_mode)
    except OSError:
        return False


def chunk_size(requested=None):
    """Events per chunk: 0 (the whole capture) when asked; else SCAPTOOL_CHUNK_EVENTS if set
    (for tests), else `requested`, else query.chunks' default."""
    from scaptool.query.chunks import DEFAULT_CHUNK_EVENTS
    setting = os.environ.get("SCAPTOOL_CHUNK_EVENTS")
    if setting and requested != 0:
        return int(setting)
    return DEFAULT_CHUNK_EVENTS if requested is None else requested
