"""sysdig's -p format strings: `%field` and `%Nfield` (padded or cut to N), other text literal.

A leading `*` prints lines whose fields have no value, showing `<NA>`; without it such a line
is not printed at all, as in sysdig.
"""
import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from scaptool.scap.codecs import bytebuf_text
from scaptool.scap.columns import constant_series

from .field_common import first_timestamp
from .field_catalog import FormatError  # noqa: F401 - (raised here, and by fields)
from .fields import lookup

# a %NNfield's width: more would pad every line with as many spaces (a mistake, or a way to
# exhaust memory); sysdig takes any int
MAX_WIDTH = 4096
_TOKEN = re.compile(r"%(\d*)([A-Za-z_][A-Za-z0-9_.]*(?:\[[^\]]*\])?)")


@dataclass(frozen=True)
class Format:
    parts: tuple        # literal strings and (width or None, field text) pairs
    show_missing: bool  # the leading '*'

    @property
    def fields(self):
        return [p[1] for p in self.parts if isinstance(p, tuple)]


def parse_format(text):
    show_missing = text.startswith("*")
    if show_missing:
        text = text[1:]
    text = text.replace("\\n", "\n").replace("\\t", "\t").replace("\\e", "\x1b") \
        .replace("\\\\", "\\")
    if text.endswith("%"):
        raise FormatError("formatting cannot end with a %")
    parts, at = [], 0
    for m in _TOKEN.finditer(text):
        if m.start() > at:
            parts.append(text[at:m.start()])
        parts.append((int(m.group(1)) if m.group(1) else None, m.group(2)))
        at = m.end()
    if at < len(text):
        parts.append(text[at:])
    for p in parts:
        if isinstance(p, tuple) and p[0] is not None and p[0] > MAX_WIDTH:
            raise FormatError(f"field width {p[0]} is larger than {MAX_WIDTH}")
        if isinstance(p, str) and "%" in p:
            raise FormatError(f"invalid formatting token {p[p.index('%'):].split()[0]}")
        if isinstance(p, tuple) and p[1] != "evt.outputtime":
            try:
                definition, _ = lookup(p[1])
            except KeyError:
                raise FormatError(f"invalid formatting token {p[1]}") from None
            if getattr(definition, "filter_only", False):
                raise FormatError(f"{p[1]} is filter only and cannot be used as a display "
                                  "field")
    return Format(tuple(parts), show_missing)


def field_texts(series, kind, bytebuf_limit=None):
    """A field's values as sysdig prints them (None where missing), as a list: kind is the
    field's kind (fields.lookup(name)[0].kind); bytebuf_limit cuts byte buffers (None: whole)."""
    return _text_column(series, kind, bytebuf_limit).to_list()


def _text_column(series, kind, bytebuf_limit):
    """A field's values as printed text, a pl.String Series (null where missing): column
    operations for the common dtypes, Python per value for the rare others (floats, lists,
    binary that is not a byte buffer)."""
    dtype = series.dtype
    if dtype == pl.String:
        return series
    if dtype == pl.Null:
        return series.cast(pl.String)
    if kind == "bool" and dtype == pl.Boolean:
        return pl.select(pl.when(pl.lit(series)).then(pl.lit("true"))
                         .when(pl.lit(series).not_()).then(pl.lit("false"))).to_series() \
            .alias(series.name)
    if kind == "bytes" and dtype == pl.Binary:
        return _bytebuf_column(series, bytebuf_limit)
    if dtype.is_integer():
        return series.cast(pl.String)
    values = series.to_list()
    if kind == "bool":
        text = [None if v is None else ("true" if v else "false") for v in values]
    elif kind == "bytes":
        text = [None if v is None else bytebuf_text(v, bytebuf_limit) for v in values]
    elif dtype == pl.Binary:
        text = [None if v is None else v.decode("utf-8", "replace") for v in values]
    else:
        text = [None if v is None else str(v) for v in values]
    return pl.Series(series.name, text, dtype=pl.String)


def _bytebuf_column(series, limit):
    """codecs.bytebuf_text of every value of a Binary Series (nulls stay null)."""
    import pyarrow as pa

    from scaptool.scap.codec_columns import Raw, bytebuf_texts
    array = series.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_binary())
    _, offsets, data = array.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[array.offset:array.offset + len(array) + 1]
    buf = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    text = bytebuf_texts(Raw(buf, offsets[:-1], np.diff(offsets)), limit)
    if series.null_count():
        text = pl.select(pl.when(pl.lit(series).is_not_null()).then(pl.lit(text))).to_series()
    return text.alias(series.name)


# The characters a terminal acts on rather than shows (chisels.run.ACTIVE): ENQ, BEL, BS, VT,
# FF, CR, SO, SI, ESC and the C1 controls.
_CONTROLS = r"[\x05\x07\x08\x0b-\x0f\x1b\x{80}-\x{9f}]"


def defused(text):
    """A String Series of field values with the control characters a terminal acts on shown
    as '.', as sysdig shows buffers and paths. sysdig 0.29.3 prints a process
    name or argument holding ESC as it is, so that a capture can drive the terminal it is
    read on; scaptool's text lines do not (JSON escapes them anyway). Tab and line feed stay:
    -A's buffers keep their line breaks."""
    if text.dtype != pl.String or not text.str.contains(_CONTROLS).any():
        return text
    return text.str.replace_all(_CONTROLS, ".")


def format_lines(data, fmt, rows, bytebuf_limit=80, previous=None):
    """The formatted line of each of the given event rows (None where the line is skipped);
    previous is the row printed just before these (for -t D across batches)."""
    return format_column(data, fmt, rows, bytebuf_limit, previous).to_list()


def format_column(data, fmt, rows, bytebuf_limit=80, previous=None):
    """format_lines as a pl.String Series (null where the line is skipped), built with
    column operations."""
    if isinstance(fmt, str):
        fmt = parse_format(fmt)
    rows = np.asarray(rows)
    columns = {}
    for name in fmt.fields:
        if name == "evt.outputtime":
            columns[name] = output_time_column(data, rows, previous=previous)
        elif name not in columns:
            definition, arg = lookup(name)
            series = definition.series_at(data, arg, rows)
            columns[name] = defused(_text_column(series, definition.kind, bytebuf_limit))
    if not len(rows):
        return pl.Series("line", [], dtype=pl.String)
    names = list(columns)
    if not names:
        text = "".join(fmt.parts)
        return constant_series(text, len(rows), name="line")
    frame = pl.DataFrame([columns[n].alias(f"c{i}") for i, n in enumerate(names)],
                         height=len(rows))
    pieces = []
    for part in fmt.parts:
        if isinstance(part, str):
            pieces.append(pl.lit(part))
            continue
        width, name = part
        value = pl.col(f"c{names.index(name)}").fill_null("<NA>")
        if width is not None:
            value = value.str.slice(0, width).str.pad_end(width)
        pieces.append(value)
    line = pl.concat_str(pieces) if pieces else pl.lit("")
    if not fmt.show_missing and names:
        missing = pl.any_horizontal([pl.col(f"c{i}").is_null() for i in range(len(names))])
        line = pl.when(missing.not_()).then(line)
    return frame.select(line.alias("line"))["line"]


def output_times(data, rows, mode=None, previous=None):
    """%evt.outputtime of the given rows, per -t, as a list (see output_time_column)."""
    return output_time_column(data, rows, mode, previous).to_list()


def output_time_column(data, rows, mode=None, previous=None):
    """%evt.outputtime of the given rows, per -t: h (local clock time), a (absolute s.ns, the
    ns not zero-padded, as sysdig prints them), r (since the first event), d (the event's
    latency), D (since the previous printed event). A pl.String Series."""
    mode = mode or getattr(data, "timetype", "h")
    rows = np.asarray(rows, dtype=np.int64)
    ts = data.headers.values_at("ts", rows).astype(np.int64)
    if mode == "h":
        secs = ts // 10**9 + data.renderer.tz_offset
        return _joined([(secs // 3600) % 24, ":", (secs // 60) % 60, ":", secs % 60, ".",
                        ts % 10**9], [2, None, 2, None, 2, None, 9])
    if mode == "a":
        return _joined([ts // 10**9, ".", ts % 10**9], [None, None, None])
    if mode == "r":
        delta = ts - first_timestamp(data)
    elif mode == "d":
        delta = np.asarray(data.latency[rows], dtype=np.int64)
    elif mode == "D":
        first = ts[0] if previous is None or not len(ts) else \
            int(data.headers.values_at("ts", [previous])[0])
        delta = np.diff(ts, prepend=first)
    else:
        raise FormatError(f"invalid -t mode {mode!r}: use h, a, r, d or D")
    return _joined([delta // 10**9, ".", delta % 10**9], [None, None, 9])


def _joined(parts, widths):
    """Numbers (arrays) and literal strings joined, each number zero-padded to its width."""
    pieces = []
    for part, width in zip(parts, widths):
        if isinstance(part, str):
            pieces.append(pl.lit(part))
            continue
        text = pl.lit(pl.Series(values=np.asarray(part, dtype=np.int64))).cast(pl.String)
        pieces.append(text.str.zfill(width) if width else text)
    return pl.select(pl.concat_str(pieces).alias("evt.outputtime")).to_series()


DEFAULT_FORMAT = "*%evt.num %evt.outputtime %evt.cpu %proc.name (%thread.tid) %evt.dir %evt.type %evt.info"
# the default line on a terminal: the process name, pid and event type in colour, and the
# thread id after the pid
TERMINAL_FORMAT = ("*%evt.num %evt.outputtime %evt.cpu \x1b[01;32m%proc.name\x1b[00m "
                   "(\x1b[01;36m%proc.pid\x1b[00m.%thread.tid) %evt.dir "
                   "\x1b[01;34m%evt.type\x1b[00m %evt.info")
# sysdig -pc (or -pcontainer): the default line with the container and the thread's own tid
CONTAINER_FORMAT = ("*%evt.num %evt.outputtime %evt.cpu %container.name (%container.id) "
                    "%proc.name (%thread.tid:%thread.vtid) %evt.dir %evt.type %evt.info")


# sysdig's -j prints a time field's raw value, as a number: the event's timestamp (ns since the
# epoch) for the clock-time fields, whatever the text form; the delta-time fields and
# thread.exectime are 0 there.
_JSON_EVENT_TIME = frozenset({"evt.time", "evt.time.s", "evt.datetime", "evt.datetime.s",
                              "evt.time.iso8601"})
_JSON_ZERO = frozenset({"evt.deltatime", "evt.deltatime.s", "evt.deltatime.ns",
                        "thread.exectime"})


def json_lines(data, fmt, rows, bytebuf_limit=None, previous=None):
    """-j: one JSON object per event with the format's fields as keys, sorted; numbers as
    numbers, booleans as booleans, evt.outputtime as integer ns; null for what is missing
    (lines with missing fields are skipped unless the format starts with '*')."""
    return json_column(data, fmt, rows, bytebuf_limit, previous).to_list()


def json_column(data, fmt, rows, bytebuf_limit=None, previous=None):
    """json_lines as a pl.String Series (null where the line is skipped), built with column
    operations."""
    if isinstance(fmt, str):
        fmt = parse_format(fmt)
    rows = np.asarray(rows)
    columns = {}
    for name in sorted(set(fmt.fields)):
        if name == "evt.outputtime" or name in _JSON_EVENT_TIME:
            columns[name] = pl.Series(values=data.headers.values_at("ts", rows)) \
                .cast(pl.String)
            continue
        definition, arg = lookup(name)
        series = definition.series_at(data, arg, rows)
        columns[name] = _json_values(name, definition, series, bytebuf_limit)
    if not len(rows):
        return pl.Series("line", [], dtype=pl.String)
    keys = sorted(columns)
    if not keys:
        return constant_series("{}", len(rows), name="line")
    frame = pl.DataFrame([columns[k].alias(f"c{i}") for i, k in enumerate(keys)],
                         height=len(rows))
    pieces = [pl.lit("{")]
    for i, k in enumerate(keys):
        pieces += [pl.lit(("," if i else "") + '"%s":' % k), pl.col(f"c{i}").fill_null("null")]
    pieces.append(pl.lit("}"))
    line = pl.concat_str(pieces)
    if not fmt.show_missing and keys:
        missing = pl.any_horizontal([pl.col(f"c{i}").is_null() for i in range(len(keys))])
        line = pl.when(missing.not_()).then(line)
    return frame.select(line.alias("line"))["line"]


def _json_values(name, definition, series, bytebuf_limit):
    """A field's values as JSON tokens (pl.String, null where missing)."""
    values = pl.lit(series)
    if name in _JSON_ZERO:
        return pl.select(pl.when(values.is_not_null()).then(pl.lit("0"))).to_series()
    if definition.type in ("ABSTIME", "RELTIME") and series.dtype == pl.String:
        # a count of ns (or s) printed zero-padded: the number itself in JSON
        number = values.str.strip_chars_start("0")
        number = pl.when(number == "").then(pl.lit("0")).otherwise(number)
        return pl.select(pl.when(values.str.contains(r"^[0-9]+$")).then(number)
                         .otherwise(json_strings(values))).to_series()
    if definition.kind == "bool":
        return _text_column(series, "bool", None)
    if definition.kind in ("int", "uint", "time", "port") and series.dtype.is_numeric():
        if series.dtype.is_integer():
            return series.cast(pl.String)
        return pl.Series(values=[None if v is None else str(v) for v in series.to_list()],
                         dtype=pl.String)
    text = _text_column(series, definition.kind, bytebuf_limit)
    return pl.select(json_strings(pl.lit(text))).to_series()


# the characters sysdig's JSON writer escapes: quote, backslash and control characters
_JSON_ESCAPED = ['"', "\\"] + [chr(c) for c in range(0x20)]
_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                 "\r": "\\r", "\t": "\\t"}


def json_strings(text):
    """render.json_string of every value of a String expression (null stays null)."""
    escaped = text.str.replace_many(
        _JSON_ESCAPED, [_JSON_ESCAPES.get(ch, "\\u%04x" % ord(ch)) for ch in _JSON_ESCAPED])
    return pl.concat_str(pl.lit('"'), escaped, pl.lit('"'))
