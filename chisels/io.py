"""I/O chisels: the data processes read and write (echo_fds, spy_file, stdin, stdout, stderr),
and the small text helpers the chisels of this package share to print as sysdig's do
(fixed-width columns, byte counts, durations, ANSI colours)."""
from decimal import ROUND_HALF_UP, Decimal

from . import Arg, ChiselError, chisel
from .run import COLORS, defused, defused_bytes


# -- text helpers ------------------------------------------------------------------------------

def extend(text, width):
    """A column of exactly `width` characters: padded with spaces, or cut to width - 1 and
    ended with one space (so that long values never touch the next column)."""
    if len(text) < width:
        return text + " " * (width - len(text))
    return text[:width - 1] + " " if width > 0 else ""


def _two_decimals(value):
    """'%.2f' as sysdig's Lua (LuaJIT) prints it: an exact tie rounds away from zero
    (90.625 -> 90.63), where C's printf would round it to even."""
    return str(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def format_bytes(value):
    """1230 -> '1.20KB', as sysdig's chisels print sizes (binary units, two decimals)."""
    for power, unit in ((5, "P"), (4, "T"), (3, "G"), (2, "M")):
        if value > 1024 ** power:
            return _two_decimals(value / 1024 ** power) + unit
    if value > 1024:
        return _two_decimals(value / 1024) + "KB"
    return "%dB" % value


def format_time_interval(ns):
    """A duration in ns as sysdig's chisels print it: 1.10s, 250ms, 3.25ms, 12us, 1.50us,
    800ns (the fractional digits are cut, not rounded)."""
    if ns >= 10**9:
        return "%d.%02ds" % (ns // 10**9, (ns % 10**9) // 10**7)
    if ns >= 10**7:
        return "%dms" % (ns // 10**6)
    if ns >= 10**6:
        return "%d.%02dms" % (ns // 10**6, (ns % 10**6) // 10**4)
    if ns >= 10**4:
        return "%dus" % (ns // 10**3)
    if ns >= 10**3:
        return "%d.%02dus" % (ns // 10**3, (ns % 10**3) // 10)
    return "%dns" % ns


def lua_tonumber(text):
    """A numeric argument as Lua's tonumber reads it (decimal, float or 0x hex), or None
    (sysdig's chisels then print a complaint and stop)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        try:
            value = float(int(text, 16)) if text.strip().lower().startswith("0x") else None
        except ValueError:
            value = None
    if value is None:
        return None
    return int(value) if value.is_integer() else value


class Palette:
    """The colours of a chisel that, like sysdig's, colours its output whether or not it goes
    to a terminal (turned off only by its disable_color argument): `palette.red` is the escape
    sequence, or '' when off."""

    def __init__(self, on):
        self.on = on

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return COLORS[name] if self.on else ""


def end_with_reset(run, lines, colors):
    """Print the lines; after the capture's last chunk, the colour reset that sysdig's Lua
    chisel prints at the end of the capture (after sysdig's own reset on a terminal)."""
    if lines:
        run.write("\n".join(lines) + "\n")
    if run.final:
        run.events_over()
        run.line(colors.reset)


def palette(run, word="disable_color"):
    """The chisel's colours: on unless its disable_color argument is exactly `word` (each of
    sysdig's chisels checks its own spelling).

    These are the chisels whose sysdig 0.29.3 output carries colour codes whatever it is
    written to, and their output is sysdig's byte for byte, codes included: neither a
    terminal nor NO_COLOR changes it (that rule holds for the colours scaptool adds on a
    terminal, as in spy_logs). disable_color gives plain text, as in sysdig."""
    run.color = False  # the chisel colours (and resets) its output itself
    return Palette(run.arg("disable_color") != word)


def chisel_rows(run, chisel_filter=None):
    """The rows of the events a sysdig chisel receives that pass the user's filter and
    `chisel_filter`: internal events (procinfo...) included, unlike what sysdig prints, but
    not the events 0.29.3 never reads (unknown types, state blocks leading a section) nor the
    state-only copies of a fatfile capture. Of a chunk: its own events (not its context),
    and a section's leading blocks only where it opens."""
    import numpy as np
    from scaptool.query.render import opening_rows
    from scaptool.query.summary import initial_state_mask
    capture = run.capture
    h = capture.headers
    seen = np.asarray(capture.counted) & ((h.dump_flags & 1) == 0)
    seen &= ~initial_state_mask(h.type, starts=opening_rows(capture))
    if not seen.any():
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(run.mask(chisel_filter, visible=False) & seen)


def _or_na(text):
    """A field's text, or <NA> where it has no value (an empty text stays empty)."""
    return "<NA>" if text is None else text


def rendered_data(run, rows):
    """evt.arg.data as sysdig prints it at those rows (the -A/-x/-X choice applies)."""
    return run.texts(rows, ["evt.arg.data"])["evt.arg.data"]


# -- echo_fds ----------------------------------------------------------------------------------

_COLOR_ARG = Arg("disable_color", "string", "the word disable_color turns colours off", True)


@chisel("echo_fds", "I/O", "Show the data processes read and write, fd by fd",
        args=(_COLOR_ARG,),
        details="Every successful read or write of any fd: a header line with the direction, "
                "the size, the fd name and the process (red for reads, blue for writes), then "
                "the data as sysdig prints buffers (-A, -x and -X change how). Combine it with "
                "a filter to choose what to watch.", chunked=True)
def echo_fds(run):
    colors = palette(run)
    rows = chisel_rows(run, "evt.is_io=true and evt.dir=< and evt.rawres>0")
    frame = run.fields(rows, ["evt.is_io_read", "evt.rawres"])
    texts = run.texts(rows, ["fd.name", "proc.name"])
    where = run.containers(rows) if run.print_container else None
    data = data_texts(run, rows)
    out = []
    for i, (is_read, res) in enumerate(zip(frame["evt.is_io_read"].to_list(),
                                           frame["evt.rawres"].to_list())):
        name = _or_na(texts["fd.name"][i])
        pname = _or_na(texts["proc.name"][i])
        box = ""
        if where is not None:
            # with -pc: [name] [id] of the container, green on the host, cyan in a container
            cid, cname = where[i]
            box = f"{colors.green if cname == 'host' else colors.cyan} [{cname}] [{cid}]"
        if is_read:
            out.append(f"{colors.red}------ Read {format_bytes(res)} from {box} "
                       f"{colors.red} {name} ({pname})")
        else:
            out.append(f"{colors.blue}------ Write {format_bytes(res)} to {box} "
                       f"{colors.blue} {name} ({pname})")
        out.append(data[i] or "")
    end_with_reset(run, out, colors)


# -- raw output ----------------------------------------------------------------------------------

def write_raw(run, chunks):
    """Write byte strings as they are (sysdig's chisels print raw buffers); on a text stream
    without a byte buffer underneath, as UTF-8 text."""
    stream = getattr(run.out, "buffer", None)
    if stream is not None:
        run.out.flush()
        for chunk in chunks:
            # (on a terminal, not as they are: a capture's bytes do not drive it)
            stream.write(defused_bytes(chunk) if run.terminal else chunk)
        stream.flush()
    else:
        for chunk in chunks:
            run.out.write(chunk.decode("utf-8", "replace"))


def _buffers(run, rows):
    """The raw data buffer of each row (None where the event has none; an empty buffer, as
    a failed read has, is b'' as in sysdig)."""
    import numpy as np
    from scaptool.query.fields import lookup
    values = run.fields(rows, ["evt.buffer"])["evt.buffer"].to_list()
    definition, _ = lookup("evt.buffer")
    if definition.present is None or not len(rows):
        return values
    has = np.asarray(definition.present(run.data, None))[np.asarray(rows, dtype=np.int64)]
    return [b"" if v is None and h else v for v, h in zip(values, has)]


def _print_fd(run, number):
    """stdin/stdout/stderr: the raw data of every I/O event on fd `number`, one print each."""
    rows = chisel_rows(run, f"fd.num={number} and evt.is_io=true")
    write_raw(run, (bytes(b) + b"\n" for b in _buffers(run, rows) if b is not None))


@chisel("stdin", "I/O", "Show what processes read from their standard input",
        details="The data every process reads from its fd 0, as it is. Combine it with a "
                "filter to choose the process.", chunked=True)
def stdin(run):
    _print_fd(run, 0)


@chisel("stdout", "I/O", "Show what processes write to their standard output",
        details="The data every process writes to its fd 1, as it is. Combine it with a "
                "filter to choose the process.", chunked=True)
def stdout(run):
    _print_fd(run, 1)


@chisel("stderr", "I/O", "Show what processes write to their standard error",
        args=(_COLOR_ARG,),
        details="The data every process writes to its fd 2, as it is. Combine it with a "
                "filter to choose the process.", chunked=True)
def stderr(run):
    switch = run.arg("disable_color")
    if switch is not None and switch != "disable_color":
        # sysdig's stderr refuses any other value of its argument
        raise ChiselError("set_arg() for chisel stderr failed.")
    if not run.print_container:
        run.color = False  # nothing to colour without container data, and no reset at the end
        _print_fd(run, 2)
        return
    # with -pc, each buffer after the container's id and name, blue in a container, green
    # on the host (sysdig's chisel colours whatever the output is)
    colors = palette(run)
    run.color = False
    rows = chisel_rows(run, "fd.num=2 and evt.is_io=true")
    chunks = []
    for (cid, cname), raw in zip(run.containers(rows), _buffers(run, rows)):
        if raw is None:
            continue
        # (defused: our colour made real, the container's name made inert)
        head = defused((colors.green if cid == "host" else colors.blue) +
                       "%-20.20s %-20.20s " % (cid, cname)).encode()
        chunks.append(head + bytes(raw) + b"\n")
    write_raw(run, chunks)


# -- spy_file ------------------------------------------------------------------------------------

def _ascii(raw):
    """-A's rendering of a buffer: a line break, then the printable bytes (CR as a line
    break, LF kept unless after a CR; sysdig also drops an LF that starts the buffer)."""
    from scaptool.query.render import ascii_text
    return "\n" + ascii_text(raw[1:] if raw[:1] == b"\n" else raw)


def data_texts(run, rows, default_format="normal"):
    """evt.arg.data as sysdig prints it at those rows: in the buffer format the user chose on
    the command line (-A, -x, -X), else in the chisel's `default_format`."""
    chosen = getattr(run.data, "buffer_format", "normal")
    fmt = chosen if chosen != "normal" else default_format
    if fmt == "ascii":
        render = _ascii  # not query.render's: it keeps a line feed that starts the buffer
    elif fmt == chosen:
        return rendered_data(run, rows)
    else:
        from scaptool.query.render import BUFFER_FORMATS
        render = BUFFER_FORMATS[fmt]
    normal = None
    out = []
    for i, raw in enumerate(_buffers(run, rows)):
        if raw:
            out.append(render(bytes(raw)))
        else:  # empty or missing buffers print as they do without a format
            if normal is None:
                normal = rendered_data(run, rows)
            out.append(normal[i])
    return out


@chisel("spy_file", "I/O",
        "Show what processes read from and write to files (all, or one)",
        args=(Arg("read_or_write", "string", "R: reads only, W: writes only, RW (or anything "
                  "else): both", True),
              Arg("spy_on_file_name", "string", "only this file (its full name)", True)),
        details="Every successful read and write of a file (terminals excepted unless named): "
                "`time process(pid) R|W size file` followed by the data, printed as -A does "
                "unless -x or -X is given.", chunked=True)
def spy_file(run):
    name = run.arg("spy_on_file_name")
    mode = run.arg("read_or_write")
    if name:
        text = f"(fd.name={name}) and "
    else:
        # a live capture watching terminals would echo its own output
        text = "(not fd.name contains /dev/pt and not fd.name contains /dev/tty) and "
    if mode in ("R", "r"):
        text += "evt.is_io_read=true and "
    elif mode in ("W", "w"):
        text += "evt.is_io_write=true and "
    else:
        text += "evt.is_io=true and "
    text += "fd.type=file and evt.dir=< and evt.failed=false"
    rows = chisel_rows(run, text)
    texts = run.texts(rows, ["evt.time", "proc.name", "proc.pid", "fd.name"])
    frame = run.fields(rows, ["evt.is_io_write", "evt.rawarg.res"])
    data = data_texts(run, rows, "ascii")
    out = []
    for i, (is_write, res) in enumerate(zip(frame["evt.is_io_write"].to_list(),
                                            frame["evt.rawarg.res"].to_list())):
        out.append("%s %s(%s) %s %s %s %s" % (
            _or_na(texts["evt.time"][i]), _or_na(texts["proc.name"][i]),
            _or_na(texts["proc.pid"][i]), "W" if is_write else "R",
            format_bytes(res or 0), _or_na(texts["fd.name"][i]), _or_na(data[i])))
    if out:
        run.write("\n".join(out) + "\n")


# -- spy_ip / spy_port ---------------------------------------------------------------------------

def _spy_network(run, condition, write_word):
    """Payloads on the sockets `condition` selects: a header when the direction changes
    (sysdig's chisels print the last header again before every payload, kept here), then the
    data as sysdig prints buffers."""
    colors = palette(run, "disable_colors")
    rows = chisel_rows(run, "evt.is_io=true and (fd.type=ipv4 or fd.type=ipv6) and "
                       + condition)
    frame = run.fields(rows, ["evt.is_io_read", "evt.rawarg.res"])
    data = data_texts(run, rows)
    # the direction of the last payload and its header go on from one chunk to the next
    direction, header = run.state.get("last_header", (None, None))
    out = []
    for i, (is_read, res) in enumerate(zip(frame["evt.is_io_read"].to_list(),
                                           frame["evt.rawarg.res"].to_list())):
        if res is None or res <= 0 or data[i] is None:
            continue
        if is_read and direction != "read":
            header, direction = f"{colors.red}------ Read {format_bytes(res)}", "read"
        elif not is_read and direction != "write":
            header = f"{colors.blue}------ {write_word} {format_bytes(res)}"
            direction = "write"
        out.append(header)
        out.append(data[i])
    run.state["last_header"] = (direction, header)
    end_with_reset(run, out, colors)


@chisel("spy_ip", "Net", "Show the payloads exchanged with one IP address",
        args=(Arg("host_ip", "ipv4", "the address of the other end"),
              Arg("disable_color", "string", "the word disable_colors turns colours off",
                  True)),
        details="The payloads of every read and write on IPv4/IPv6 sockets with this "
                "address at either end, under a header when the direction changes (-A, -x "
                "and -X change how the data prints).", chunked=True)
def spy_ip(run):
    # sysdig's spy_ip calls its write headers "Read" too (in blue)
    _spy_network(run, "fd.ip=" + run.arg("host_ip"), "Read")


@chisel("spy_port", "Net", "Show the payloads exchanged on one port",
        args=(Arg("host_port", "int", "the port number, at either end"),
              Arg("disable_color", "string", "the word disable_colors turns colours off",
                  True)),
        details="The payloads of every read and write on IPv4/IPv6 sockets with this port at "
                "either end, under a header when the direction changes (-A, -x and -X "
                "change how the data prints).", chunked=True)
def spy_port(run):
    _spy_network(run, "fd.port=" + run.arg("host_port"), "Write")
