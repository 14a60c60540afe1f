"""sysdig's -p format strings: `%field` and `%Nfield` (padded or cut to N), other text literal.

A leading `*` prints lines whose fields have no value, showing `<NA>`; without it such a line
is not printed at all, as in sysdig.
"""
import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from scaptool.scap.codecs import bytebuf_text

from .fields import lookup

_TOKEN = re.compile(r"%(\d*)([A-Za-z_][A-Za-z0-9_.]*(?:\[[^\]]*\])?)")


class FormatError(ValueError):
    pass


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


def _texts(series, kind, bytebuf_limit):
    values = series.to_list()
    if kind == "bool":
        return [None if v is None else ("true" if v else "false") for v in values]
    if kind == "bytes":
        return [None if v is None else bytebuf_text(v, bytebuf_limit) for v in values]
    if series.dtype == pl.Binary:
        return [None if v is None else v.decode("utf-8", "replace") for v in values]
    return [None if v is None else str(v) for v in values]


def format_lines(data, fmt, rows, bytebuf_limit=80, previous=None):
    """The formatted line of each of the given event rows (None where the line is skipped);
    previous is the row printed just before these (for -t D across batches)."""
    if isinstance(fmt, str):
        fmt = parse_format(fmt)
    rows = np.asarray(rows)
    columns = {}
    for name in fmt.fields:
        if name == "evt.outputtime":
            columns[name] = output_times(data, rows, previous=previous)
        elif name not in columns:
            definition, arg = lookup(name)
            series = definition.series_at(data, arg, rows)
            columns[name] = _texts(series, definition.kind, bytebuf_limit)
    out = []
    for i in range(len(rows)):
        pieces = []
        missing = False
        for part in fmt.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            width, name = part
            value = columns[name][i]
            if value is None:
                missing = True
                value = "<NA>"
            if width is not None:
                value = value[:width].ljust(width)
            pieces.append(value)
        out.append(None if missing and not fmt.show_missing else "".join(pieces))
    return out


def output_times(data, rows, mode=None, previous=None):
    """%evt.outputtime of the given rows, per -t: h (local clock time), a (absolute s.ns, the
    ns not zero-padded, as sysdig prints them), r (since the first event), d (the event's
    latency), D (since the previous printed event)."""
    mode = mode or getattr(data, "timetype", "h")
    rows = np.asarray(rows, dtype=np.int64)
    ts = data.headers.values_at("ts", rows).tolist()
    if mode == "h":
        clock = data.renderer.clock_time
        return [clock(t) for t in ts]
    if mode == "a":
        return ["%d.%d" % (t // 10**9, t % 10**9) for t in ts]
    if mode == "r":
        first = _first_timestamp(data)
        delta = [t - first for t in ts]
    elif mode == "d":
        delta = [int(data.latency[i]) for i in rows]
    elif mode == "D":
        before = ts[:-1]
        first = None if previous is None else int(data.headers.values_at("ts", [previous])[0])
        delta = [0 if a is None else b - a for a, b in zip([first] + before, ts)]
    else:
        raise FormatError(f"invalid -t mode {mode!r}: use h, a, r, d or D")
    return ["%d.%09d" % (d // 10**9, d % 10**9) for d in delta]


def _first_timestamp(data):
    """-t r counts from the first event sysdig reads (it never sees types it does not know),
    container events excepted: they do not set it."""
    from .summary import INITIAL_STATE_TYPES_0293
    if "first_ts" in data.memory:   # read in chunks: found in an earlier one
        return data.memory["first_ts"]
    h = data.headers
    counted = data.capture.counted & ~np.isin(h.type, list(INITIAL_STATE_TYPES_0293))
    first = np.flatnonzero(counted)
    return int(h.values_at("ts", first[:1])[0]) if len(first) else 0


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
    from .render import json_string
    if isinstance(fmt, str):
        fmt = parse_format(fmt)
    rows = np.asarray(rows)
    columns = {}
    for name in sorted(set(fmt.fields)):
        if name == "evt.outputtime" or name in _JSON_EVENT_TIME:
            columns[name] = [str(t) for t in data.headers.values_at("ts", rows).tolist()]
            continue
        definition, arg = lookup(name)
        series = definition.series_at(data, arg, rows)
        if name in _JSON_ZERO:
            columns[name] = [None if v is None else "0" for v in series.to_list()]
        elif definition.type in ("ABSTIME", "RELTIME") and series.dtype == pl.String:
            # a count of ns (or s) printed zero-padded: the number itself in JSON
            columns[name] = [None if v is None else (str(int(v)) if v.isdigit() else
                                                     json_string(v))
                             for v in series.to_list()]
        elif definition.kind == "bool":
            columns[name] = [None if v is None else ("true" if v else "false")
                             for v in series.to_list()]
        elif definition.kind in ("int", "uint", "time", "port") and series.dtype.is_numeric():
            columns[name] = [None if v is None else str(v) for v in series.to_list()]
        else:
            columns[name] = [None if v is None else json_string(v) for v in
                             _texts(series, definition.kind, bytebuf_limit)]
    keys = sorted(columns)
    out = []
    for i in range(len(rows)):
        values = [columns[k][i] for k in keys]
        if not fmt.show_missing and any(v is None for v in values):
            out.append(None)
            continue
        out.append("{" + ",".join('"%s":%s' % (k, "null" if v is None else v)
                                  for k, v in zip(keys, values)) + "}")
    return out
