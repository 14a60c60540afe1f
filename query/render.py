"""Events as text, the way sysdig 0.29.3 prints them: evt.info and the default line.

Rendering needs state sysdig keeps while reading (the thread's name and cwd, what each fd
refers to, the users): a Renderer takes it as per-event lookups, so the same code serves the
default line, -p formats and JSON. Text is made one event at a time in Python: the reference
that query.info_columns (the same text built as columns, used for printing) is tested
against, and what renders the rare rows the columns leave to it.
"""
import functools
import struct
import time

import numpy as np

from scaptool.scap import eventtable, names, sysdig0293
from scaptool.scap.codecs import codec_for
from scaptool.scap.eventtable import DYN_TABLES, PT

AT_FDCWD = -100
GENERIC = (0, 1)
_LEN16 = struct.Struct("<H")
_LEN32 = struct.Struct("<I")


class NoState:
    """What a renderer knows without thread and fd state: nothing."""

    def proc_name(self, row):
        return None

    def comm_of_pid(self, row, pid):
        return None

    def cwd(self, row):
        return None

    def fd_text(self, row, fd):
        return None

    def fd_param_text(self, row, position):
        return None


def visible_rows(capture, rows=None):
    """Events sysdig 0.29.3 prints by default: it knows the type, the type is not internal
    (procinfo, container, ...), and the event is not a state-only copy (fatfile captures).
    With rows (ascending), those of them that are visible."""
    h = capture.headers
    rows = np.arange(len(h)) if rows is None else np.asarray(rows, dtype=np.int64)
    hidden = sysdig0293.internal_types()[h.type[rows]]
    if h.flags is not None:
        hidden |= (h.flags[rows] & 1) != 0
    # container events leading a section are consumed while the file is opened
    for first, end in sysdig0293.leading_state_runs(h.type, opening_rows(capture)):
        lo, hi = np.searchsorted(rows, [first, end])
        hidden[lo:hi] = True
    # a chunk's context events (query.chunks) were shown with the chunk before
    hidden[:np.searchsorted(rows, getattr(capture, "context", 0))] = True
    return rows[~hidden]


def opening_rows(capture):
    """The first row of each section that opens in this capture (a chunk that continues a
    section read before has none: its leading events do not lead anything)."""
    return [s.first_event for s in capture.sections if not getattr(s, "continued", False)]


def local_offset_seconds():
    """sysdig applies the zone's offset *now* to every timestamp (not the offset at the
    event's date); so do we."""
    return time.localtime().tm_gmtoff


# -A's bytes: printable ASCII and line breaks kept (CR becomes LF), every other byte dropped
_KEEP = bytes([0x0A, 0x0D]) + bytes(range(0x20, 0x7F))
_DROP = bytes(b for b in range(256) if b not in _KEEP)
_CR_TO_LF = bytes.maketrans(b"\r", b"\n")


def ascii_text(raw):
    """-A: printable bytes only; CR becomes a line break, LF is kept unless it is the first
    byte or comes just after a CR; every other byte (TAB included) is dropped. (Whole-buffer
    bytes operations: a log storm prints every write through here.)"""
    raw = bytes(raw)
    if raw[:1] == b"\n":
        raw = raw[1:]
    # a CR LF pair is one break (replacing left to right, so CR LF LF is two)
    return raw.replace(b"\r\n", b"\r").translate(_CR_TO_LF, _DROP).decode("ascii")


def hex_rows(raw, with_ascii):
    """-x / -X: rows of 16 bytes, `\t0xOOOO:` then ` xxxx` per byte pair (a lone last byte as
    ` xx`), and with -X the row's printable text after padding to a full row."""
    rows = []
    for at in range(0, len(raw), 16):
        chunk = raw[at:at + 16]
        groups = [" %02x%02x" % (chunk[k], chunk[k + 1]) for k in range(0, len(chunk) - 1, 2)]
        if len(chunk) % 2:
            groups.append(" %02x" % chunk[-1])
        line = "\t0x%04x:%s" % (at, "".join(groups))
        if with_ascii:
            line += " " * (5 * (8 - len(groups))) + "  " + "".join(
                chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        rows.append(line)
    return "".join("\n" + row for row in rows) + "\n"


BUFFER_FORMATS = {
    "ascii": lambda raw: "\n" + ascii_text(raw),
    "hex": lambda raw: hex_rows(raw, False),
    "hexascii": lambda raw: hex_rows(raw, True),
}


class Renderer:
    def __init__(self, capture, state=None, *, bytebuf_limit=80, tz_offset=None,
                 buffer_format="normal"):
        self.capture = capture
        self.h = capture.headers
        self.buf = memoryview(capture.buffer)
        self.state = state or NoState()
        self.bytebuf_limit = bytebuf_limit
        self.buffer_format = BUFFER_FORMATS.get(buffer_format)
        self.buffer_style = buffer_format if buffer_format in BUFFER_FORMATS else None
        self.tz_offset = local_offset_seconds() if tz_offset is None else tz_offset
        self.table = eventtable.sysdig_0293()
        self._large = eventtable.libs().large_payload
        # uid/gid -> name, read from the user list when a uid or gid is first rendered
        self._users = _LazyNames(capture, "users", "uid")
        self._groups = _LazyNames(capture, "groups", "gid")

    # -- raw parameters ----------------------------------------------------------------------
    def raw_params(self, row):
        """The raw bytes of each parameter of the event at row."""
        # worked out per printed event (scalar arithmetic), not for every event
        h = self.h
        kind, etype = int(h.kind[row]), int(h.type[row])
        record = int(h.offset4[row]) * 4 + 10 + 4 * (kind & 1)
        if kind & 2:
            start = record + 26
            count = _LEN32.unpack_from(self.buf, record + 22)[0]
            wide = etype < len(self._large) and bool(self._large[etype])
        else:
            start, count, wide = record + 22, int(h.v1_nparams[row]), False
        unpack, size = (_LEN32, 4) if wide else (_LEN16, 2)
        lens = [unpack.unpack_from(self.buf, start + size * k)[0] for k in range(count)]
        pos = start + size * count
        out = []
        for length in lens:
            out.append(bytes(self.buf[pos:pos + length]))
            pos += length
        return out

    def raw_params_at(self, rows):
        """raw_params of each of some rows, their lengths read together (a few thousand rows
        at a time: the offsets are rows x parameters matrices)."""
        from scaptool.scap.row_params import RowParams
        where = RowParams(self.capture.buffer, self.h.take(np.asarray(rows, dtype=np.int64)))
        buf = self.buf
        return [[bytes(buf[o:o + n]) for o, n in zip(offsets[:count], lengths[:count])]
                for count, offsets, lengths in zip(where.nparams.tolist(),
                                                   where.offsets.tolist(),
                                                   where.lengths.tolist())]

    # -- fields --------------------------------------------------------------------------------
    def evt_type(self, row, raw=None):
        etype = int(self.h.type[row])
        if etype in GENERIC:
            raw = raw if raw is not None else self.raw_params(row)
            if raw and len(raw[0]) >= 2:
                return names.syscall_name(_LEN16.unpack_from(raw[0])[0], "0293") or "<unknown>"
            return "<unknown>"
        return self.table[etype].name

    def outputtime(self, row):
        return self.clock_time(int(self.h.values_at("ts", [row])[0]))

    def clock_time(self, ts):
        """HH:MM:SS.nnnnnnnnn of a timestamp, in the zone sysdig shows."""
        secs = ts // 1_000_000_000 + self.tz_offset
        return "%02d:%02d:%02d.%09d" % ((secs // 3600) % 24, (secs // 60) % 60, secs % 60,
                                        ts % 1_000_000_000)

    def info(self, row, raw=None):
        """evt.info: evt.args, except on a write sysdig 0.29.3 decodes as syslog, which shows
        `syslog sev=<severity> msg=<message>` instead (query.syslog; no trailing space, and
        no -A/-X dump either)."""
        decoded = None
        if self._may_be_syslog[int(self.h.type[row])]:
            # only write exits can be, and only when their data reads as `<PRI>...`: that is
            # checked first, because the decoder needs the fd state of the whole capture
            from .syslog import decode
            raw = raw if raw is not None else self.raw_params(row)
            if len(raw) > 1 and decode(raw[1]) is not None:
                decoded = self._syslog_info.get(int(row))
        return decoded if decoded is not None else self.args(row, raw)

    @functools.cached_property
    def _may_be_syslog(self):
        from .syslog import decoded_exit_types
        return decoded_exit_types()

    @functools.cached_property
    def _syslog_info(self):
        from .syslog import info_lines
        return info_lines(self.capture)

    def args(self, row, raw=None):
        """evt.args: `name=value[(resolved)] ` per param."""
        return "".join(f"{name}={text}({resolved}) " if resolved else f"{name}={text} "
                       for name, text, resolved in self.param_texts(row, raw))

    def arg(self, row, which, raw=None):
        """evt.arg.NAME / evt.arg[N]: the parameter's resolved text if it has one, else its
        text (`<f>/etc/passwd` for an fd); None if the event has no such parameter. Generic
        events have their parameters here (ID shows the syscall's name) though evt.info is
        empty for them."""
        texts = self.param_texts(row, raw, generic=True)
        if isinstance(which, int):
            found = texts[which] if 0 <= which < len(texts) else None
        else:
            found = next((t for t in texts if t[0] == which), None)
        return None if found is None else (found[2] or found[1])

    def param_texts(self, row, raw=None, generic=False):
        """(name, text, resolved or None) for each parameter sysdig 0.29.3 shows."""
        etype = int(self.h.type[row])
        if (etype in GENERIC and not generic) or etype >= sysdig0293.EVENT_MAX:
            return []
        raw = raw if raw is not None else self.raw_params(row)
        params = _params_of(etype)
        values = []
        parts = []
        previous = None
        buffer_format = self.buffer_format
        # one set of lookups per event, shared by its parameters
        ctx = {"lookup_pid": lambda pid: self.state.comm_of_pid(row, pid),
               "fd_typechar": lambda fd: self._fd_typechar(row, fd),
               "users": self._users, "groups": self._groups,
               "bytebuf_limit": self.bytebuf_limit}
        for k in range(min(len(params), len(raw))):
            param, codec = params[k]
            value = codec.decode(raw[k])
            values.append(value)
            text, resolved = codec.render(value, param, previous_text=previous, **ctx)
            ptype = param.type
            if buffer_format is not None:
                if ptype == PT.BYTEBUF and value:
                    text = buffer_format(value)
                elif ptype == PT.DYN and value is not None:
                    # a dynamic parameter whose variant is a byte buffer (setsockopt's val of
                    # an unknown option) is dumped like one
                    subtypes = DYN_TABLES.get(param.extra, ())
                    if value.index < len(subtypes) and subtypes[value.index].type == PT.BYTEBUF \
                            and value.payload:
                        text = buffer_format(value.payload)
            if value is not None and ptype in _RESOLVED_TYPES:
                if ptype == PT.FD:
                    if value >= 0:
                        resolved = self.state.fd_param_text(row, k) or resolved
                else:
                    resolved = self._resolve(row, param, value, resolved, values)
            parts.append((param.name, text, resolved))
            previous = text
        return parts

    def _resolve(self, row, param, value, resolved, values):
        """The resolved text of a path parameter (value not None)."""
        if param.type == PT.FSPATH:
            return self._relative_to(self.state.cwd(row), value)
        if param.type == PT.FSRELPATH:
            dirfd = values[param.extra] if isinstance(param.extra, int) and \
                param.extra < len(values) else None
            if dirfd == AT_FDCWD or not isinstance(dirfd, (int, type(None))):
                # 0.29.3's openat2 enter names the path itself as its dirfd parameter: sysdig
                # then resolves against the cwd, as for AT_FDCWD
                base = self.state.cwd(row)
            elif dirfd is not None and dirfd >= 0:
                base = self.state.fd_dir(row, dirfd) if hasattr(self.state, "fd_dir") else None
            else:
                base = None
            return self._relative_to(base, value)
        return resolved

    @staticmethod
    def _relative_to(base, path):
        """sysdig shows `path(resolved)` for relative paths only: joined to the cwd (or the
        directory fd) and normalized; with no known cwd, just normalized."""
        from .paths import concatenate
        if base is None or not path or path.startswith(b"/") or path == b"<NA>":
            return None
        return concatenate(base, path.decode("utf-8", "replace"))

    def _fd_typechar(self, row, fd):
        text = self.state.fd_text(row, fd)
        return text[1] if text and text.startswith("<") else "?"



# the parameter types whose text param_texts resolves with state: fds and paths
_RESOLVED_TYPES = frozenset({PT.FD, PT.FSPATH, PT.FSRELPATH})


@functools.cache
def _params_of(etype):
    """(param, codec) of each parameter of an event type, as 0.29.3 declares them."""
    return [(param, codec_for(param.type)) for param in eventtable.sysdig_0293()[etype].params]


class _LazyNames:
    """{id: name} of the capture's users or groups, read on first lookup (most events
    render no uid or gid, and the user list needs the construct schemas)."""

    def __init__(self, capture, table, column):
        self._source = (capture, table, column)
        self._names = None

    def get(self, key, default=None):
        if self._names is None:
            capture, table, column = self._source
            rows = getattr(capture, table)
            self._names = dict(zip(rows[column].to_list(), rows["name"].to_list()))
        return self._names.get(key, default)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                 "\r": "\\r", "\t": "\\t"}


def json_string(text):
    """A JSON string as sysdig's JSON writer escapes it: quote, backslash and control
    characters; everything else as is."""
    out = []
    for ch in text:
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
