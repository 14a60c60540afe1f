"""Messages written to syslog, decoded the way sysdig 0.29.3 decodes them.

sysdig 0.29.3 (libsinsp's syslog protocol decoder, removed from later libs) watches every fd
whose name contains `/dev/log` and decodes the data of each successful write to it as
`<PRI>message`. What it finds feeds the syslog.* fields and replaces the event's evt.info with
`syslog sev=<severity> msg=<message>`. The decoded values belong to that one write exit only:
sysdig forgets them when it reads the next event.

Facts of the decoder, checked against the sysdig binary on written captures:

* The first byte is skipped whatever it is; up to 15 bytes follow until `>` or NUL: the PRI.
  An empty PRI, a PRI that is not all ASCII digits, or data shorter than the PRI plus two bytes
  (the `<` and `>`) is not syslog: the write keeps its usual evt.info and no syslog.* value.
* The PRI is read into a signed 32-bit integer without overflow checks, so long numbers wrap;
  a result of -1 is the decoder's "nothing decoded" mark and counts as invalid.
* severity = PRI & 7, facility = PRI >> 3 (an arithmetic shift, stored as an unsigned 32-bit
  number: a negative PRI gives a huge facility).
* The message is every byte after the PRI's closing byte (assumed to be `>` even when 15 digits
  ran on), and sysdig prints it as a C string: it ends at the first NUL byte.
* Facility names exist for 0..23; above that the name is the literal text `<NA>` (a value, not
  a missing one: `-p` without `*` still prints the line).
"""
import functools
from typing import NamedTuple

import numpy as np
import polars as pl

from scaptool.scap import eventtable
from scaptool.scap.capture import per_capture_cache

SEVERITIES = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
              "clock", "authpriv", "ftp", "ntp", "logaudit", "logalert", "cron",
              "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7")
NO_NAME = "<NA>"
SYSLOG_FD_MARK = "/dev/log"
_PRI_DIGITS_MAX = 15
# the write exits sysdig's parser hands to the protocol decoders (the data is parameter 1)
_DECODED_EXITS = ("write", "send", "sendto", "sendmsg", "writev", "pwrite", "pwritev")


class Message(NamedTuple):
    priority: int   # signed 32 bits, as sysdig holds it
    facility: int   # unsigned 32 bits
    severity: int
    text: str       # up to the first NUL: what -p, -j and filters see
    payload: bytes  # every byte after the PRI: what a sysdig chisel reading the field gets

    @property
    def facility_name(self):
        return facility_name(self.facility)

    @property
    def severity_name(self):
        return severity_name(self.severity)

    @property
    def info(self):
        """evt.info of the write: no trailing space, unlike a parameter list."""
        return f"syslog sev={self.severity_name} msg={self.text}"


def facility_name(facility):
    return FACILITIES[facility] if 0 <= facility < len(FACILITIES) else NO_NAME


def severity_name(severity):
    return SEVERITIES[severity] if 0 <= severity < len(SEVERITIES) else NO_NAME


def decode(buffer) -> Message | None:
    """The syslog message in the data of one write, or None when sysdig would not see one."""
    buffer = bytes(buffer)
    end = 1
    while end < len(buffer) and buffer[end] not in b">\0" and end - 1 < _PRI_DIGITS_MAX:
        end += 1
    digits = buffer[1:end]
    if not digits or len(buffer) < len(digits) + 2 or not digits.isdigit():
        return None
    priority = int(digits) & 0xFFFFFFFF
    if priority >= 1 << 31:
        priority -= 1 << 32
    if priority == -1:
        return None
    payload = buffer[len(digits) + 2:]
    # non-UTF-8 bytes cannot live in a text column: they become U+FFFD, as elsewhere
    return Message(priority, (priority >> 3) & 0xFFFFFFFF, priority & 7,
                   payload.split(b"\0", 1)[0].decode("utf-8", "replace"), payload)


@functools.cache
def decoded_exit_types():
    """A bool per event id: the write exits whose data sysdig 0.29.3 may decode."""
    table = eventtable.sysdig_0293()
    out = np.zeros(65536, dtype=bool)
    for name in _DECODED_EXITS:
        for i in table.ids_named(name):
            if table[i].direction == "<":
                out[i] = True
    return out


# The syscalls whose events can give an fd a name (a path, a socket address or tuple, the
# cwd a relative path is joined to): an fd named after /dev/log has the name in one of them,
# or in the fd list of the capture's header.
_NAMING = ("open", "openat", "openat2", "creat", "socket", "bind", "connect", "accept",
           "accept4", "sendto", "sendmsg", "recvfrom", "recvmsg", "chdir")


@functools.cache
def _naming_types():
    table = eventtable.libs()
    out = np.zeros(65536, dtype=bool)
    for i in range(len(table)):
        out[i] = table[i].name in _NAMING
    return out


_DECODED = per_capture_cache()  # emptied by Capture.close()


def decoded(capture):
    """One row per write that sysdig 0.29.3 decodes as syslog, in event order: `row` (the
    event's row), `facility`, `severity`, `message`, `payload` (Message.payload) and `info`
    (its evt.info). Built once per Capture object."""
    try:
        return _DECODED[capture]
    except (KeyError, TypeError):
        pass
    frame = _decode_capture(capture)
    try:
        _DECODED[capture] = frame
    except TypeError:
        pass
    return frame


@functools.cache
def _empty():
    return pl.DataFrame(schema={"row": pl.Int64, "facility": pl.UInt32, "severity": pl.UInt32,
                                "message": pl.String, "payload": pl.Binary, "info": pl.String})


def _decode_capture(capture):
    from .fds import fd_state
    if not capture.mentions(SYSLOG_FD_MARK.encode(), _naming_types()):
        return _empty()  # no fd can be named after /dev/log: no need for the fd state
    rows = np.flatnonzero(decoded_exit_types()[capture.headers.type])
    if not len(rows):
        return _empty()
    # a failed write decodes nothing; a write of 0 bytes still does
    res = capture.param("res", rows=rows).cast(pl.Int64, strict=False)
    rows = rows[(res >= 0).fill_null(False).to_numpy()]
    # most writes hold no PRI where decode() reads one: those need no fd state at all (a
    # chunk of a reading cannot rule out /dev/log from its names alone, as a capture can)
    rows = rows[_pri_readable(capture, rows)]
    if not len(rows):
        return _empty()
    # sysdig attaches the decoder to fds named .../dev/log... when they are opened,
    # connected, read from the fd list or get a new tuple, and a dup copies it: in every case,
    # the fd's name at the write
    state = fd_state(capture)
    fds = state.lastevent_fd[rows].copy()
    if state.info_fd:
        special = np.flatnonzero(np.isin(rows, np.fromiter(state.info_fd, dtype=np.int64)))
        for k in special.tolist():
            fds[k] = state.info_fd[int(rows[k])]
    vid = state.lookup(rows, fds)
    names = state.versions["name"]
    found = vid >= 0
    to_syslog = np.zeros(len(rows), dtype=bool)
    if found.any():
        to_syslog[found] = names.gather(vid[found]) \
            .str.contains(SYSLOG_FD_MARK, literal=True).fill_null(False).to_numpy()
    rows = rows[to_syslog]
    if not len(rows):
        return _empty()
    # the few writes to syslog: decoded one by one
    out = {"row": [], "facility": [], "severity": [], "message": [], "payload": [], "info": []}
    for row, data in zip(rows.tolist(), capture.param("data", rows=rows).to_list()):
        message = decode(data) if data is not None else None
        if message is None:
            continue
        out["row"].append(row)
        out["facility"].append(message.facility)
        out["severity"].append(message.severity)
        out["message"].append(message.text)
        out["payload"].append(message.payload)
        out["info"].append(message.info)
    return pl.DataFrame(out, schema=_empty().schema)


def _pri_readable(capture, rows):
    """Per row: does its data hold what decode() reads as a PRI (digits from the second byte
    up to a '>', a NUL or the end, at most _PRI_DIGITS_MAX of them, and room after them)?
    decode() itself still decides; this only leaves out the rows it would refuse."""
    if not len(rows):
        return np.zeros(0, dtype=bool)
    index = np.full(len(capture), -1, dtype=np.int64)
    index[rows] = capture.param_index("data")[rows]
    offsets, lengths, present = (a[rows] for a in capture.param_slices(index))
    lengths = np.where(present, lengths, 0)
    width = _PRI_DIGITS_MAX + 2
    at = np.arange(width)
    inside = at[None, :] < lengths[:, None]
    buf = capture.buffer
    pos = np.minimum(offsets[:, None] + at, max(len(buf) - 1, 0))
    byte = np.where(inside, buf[pos], 0)
    # decode's scan from the second byte stops at '>', NUL, the end, or after 15 digits
    stop = ~inside | (byte == ord(">")) | (byte == 0) | (at[None, :] - 1 >= _PRI_DIGITS_MAX)
    stop[:, 0] = False
    end = np.argmax(stop, axis=1)
    digit = (byte >= ord("0")) & (byte <= ord("9"))
    leading = np.cumprod(digit[:, 1:], axis=1).sum(axis=1)
    return present & (end > 1) & (lengths >= end + 1) & (leading >= end - 1)


def info_lines(capture):
    """{row: evt.info} of the decoded syslog writes (for text made event by event)."""
    frame = decoded(capture)
    return dict(zip(frame["row"].to_list(), frame["info"].to_list()))
