"""explain: the story of the thread behind each matching event, told in a few lines.

A log line like "Database error" says that something failed, not what. What the writing
thread did just before usually does: the request it was serving, the files it opened, the
servers it called and what they answered, the system calls that failed. For every event the
filter matches, explain reads that thread's events within the window and prints those, in
time order, with their offset from the event.
"""
import re

import numpy as np

from . import Arg, ChiselError, chisel

# Words that make a peer's answer read as a refusal (protocol errors arrive as data).
_ERROR_WORDS = re.compile(rb"denied|error|fail|refused|invalid|unauthori[sz]ed|forbidden|"
                          rb"not allowed|rejected|timeout|timed out", re.IGNORECASE)
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{4,}")
_MAX_REPLIES = 3  # per connection: the first answers tell the story; the rest is bulk data


def first_line(raw, minimum=4):
    """The first printable line of some data: the first run of printable characters that is
    long enough to mean something (binary protocol headers around it are skipped)."""
    if not raw:
        return None
    for run in _PRINTABLE_RUN.finditer(bytes(raw)):
        for line in run.group().split(b"\r\n")[0].split(b"\n"):
            if len(line.strip()) >= minimum:
                return line.strip().decode("ascii")
    return None


def _ms(delta_ns):
    return f"{delta_ns / 1e6:+.3f}ms"


@chisel("explain", "Misc", "Tell what the thread behind each matching event did around it: "
        "request, files, connections, answers, failures",
        args=(Arg("range_ms", "int", "how far before and after each event to look, in "
                  "milliseconds (default 1000)", True),),
        details="Give a filter for the events to explain, typically a log line: "
                "scaptool -r trace.scap -c explain \"evt.buffer contains 'Database error'\". "
                "For each one, the writing thread's events within range_ms are summed up: the "
                "first line of each request read from a client, files opened, connections "
                "made and the first lines their peers answered (answers that read as errors "
                "are flagged), failed system calls with their error, and the event itself.")
def explain(run):
    range_ms = run.arg("range_ms", 1000, int)
    if not run.user_filter:
        raise ChiselError("explain: give a filter for the events to explain "
                          "(for example: evt.buffer contains error)")
    hits = run.select()
    h = run.capture.headers
    ts_all = np.asarray(h.ts).astype(np.int64)
    tid_all = np.asarray(h.tid)
    visible = run.data.visible
    half = range_ms * 1_000_000
    windows = []
    of_thread = {}  # a thread's visible rows, found once however many of its events match
    for row in hits:
        t, tid = ts_all[row], tid_all[row]
        if tid not in of_thread:
            of_thread[tid] = np.flatnonzero((tid_all == tid) & visible)
        mine = of_thread[tid]
        near = mine[np.abs(ts_all[mine] - t) <= half]
        windows.append((int(row), near))
    every = np.unique(np.concatenate([w for _, w in windows])) if windows else np.zeros(0, int)
    names = ["evt.num", "evt.type", "evt.dir", "evt.failed", "evt.res", "fd.name", "fd.type",
             "fd.is_server", "fd.sip", "fd.sport", "fd.cip", "fd.cport", "evt.is_io_read",
             "evt.is_io_write", "proc.name", "evt.time", "fd.num"]
    texts = run.texts(every, names)
    buffers = run.fields(every, ["evt.buffer"])["evt.buffer"].to_list()
    at = {int(r): i for i, r in enumerate(every)}
    for n, (row, near) in enumerate(windows):
        if n:
            run.line("")
        _tell(run, row, near, texts, buffers, at, ts_all)


def _tell(run, hit, rows, texts, buffers, at, ts_all):
    def value(name, row):
        return texts[name][at[row]]

    def data(row):
        return buffers[at[row]]

    t0 = ts_all[hit]
    what = first_line(data(hit), 1)
    target = value("fd.name", hit)
    run.line(f"event {value('evt.num', hit)} at {value('evt.time', hit)}: "
             f"{value('proc.name', hit) or '<NA>'} (tid {int(run.capture.headers.tid[hit])}) "
             f"{value('evt.type', hit)}" + (f" to {target}" if target else "") +
             (f": {what}" if what else ""))
    replies = {}
    story = []
    # a socket's role as the thread made it (connect: client, accept: server); sysdig's
    # fd.is_server guesses from addresses, which says "server" for both ends on loopback
    roles = {}
    for row in rows:
        row = int(row)
        if value("evt.dir", row) != "<" or row == hit:
            continue
        kind = value("fd.type", row)
        is_socket = kind in ("ipv4", "ipv6")
        etype = value("evt.type", row)
        fd = value("fd.num", row)
        if etype == "connect":
            roles[fd] = "client"
        elif etype in ("accept", "accept4"):
            roles[fd] = "server"
        server = roles.get(fd, "server" if value("fd.is_server", row) == "true" else "client") \
            == "server"
        line = None
        if etype == "connect" and value("evt.res", row) == "EINPROGRESS" and is_socket:
            # a non-blocking connect: under way, not failed
            line = ("connected", f"to {value('fd.sip', row)}:{value('fd.sport', row)}")
        elif value("evt.failed", row) == "true":
            line = ("failed", f"{etype} {value('fd.name', row) or ''}".rstrip() +
                    f": {value('evt.res', row)}")
        elif value("evt.is_io_read", row) == "true" and is_socket and data(row):
            text = first_line(data(row))
            if server and text:
                line = ("request", f"from {value('fd.cip', row)}:{value('fd.cport', row)}: "
                                   f"{text}")
            elif not server and text:
                peer = f"{value('fd.sip', row)}:{value('fd.sport', row)}"
                count = replies[peer] = replies.get(peer, 0) + 1
                if count <= _MAX_REPLIES:
                    flag = "  <- reads as an error" if _ERROR_WORDS.search(bytes(data(row))) \
                        else ""
                    line = ("reply", f"{peer} answered: {text}{flag}")
        elif etype in ("open", "openat", "openat2", "creat") and kind in ("file", "directory"):
            line = ("opened", value("fd.name", row))
        elif etype == "connect" and is_socket:
            line = ("connected", f"to {value('fd.sip', row)}:{value('fd.sport', row)}")
        elif etype in ("accept", "accept4") and is_socket:
            line = ("accepted", f"{value('fd.cip', row)}:{value('fd.cport', row)}")
        if line:
            story.append((int(ts_all[row] - t0), line[0], line[1]))
    for offset, kind, text in _compact(story):
        run.line(f"  {_ms(offset):>11}  {kind:<10} {text}" if offset is not None
                 else f"  {'':>11}  {kind:<10} {text}")


def _compact(story, keep=2, longest=4):
    """Runs of more than `longest` lines of one kind (a program loading its libraries, a
    search along a path) shrink to their first `keep` lines and a count of the rest."""
    out, k = [], 0
    while k < len(story):
        end = k
        while end < len(story) and story[end][1] == story[k][1]:
            end += 1
        run = story[k:end]
        if len(run) > longest:
            out += run[:keep]
            out.append((None, "", f"... {len(run) - keep} more '{story[k][1]}' lines"))
        else:
            out += run
        k = end
    return out
