"""explain: the story of the thread behind each matching event, told in a few lines.

A log line like "Database error" says that something failed, not what. What the writing
thread did just before usually does: the request it was serving, the files it opened, the
servers it called and what they answered, the system calls that failed. For every event the
filter matches, explain reads that thread's events within the window and prints those, in
time order, with their offset from the event.

It reads the capture twice, a chunk at a time: once for the matching events, then again for
the events around them, since a window reaches back into chunks read before its event.
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


# the fields a story is told from
_NAMES = ["evt.num", "evt.type", "evt.dir", "evt.failed", "evt.res", "fd.name", "fd.type",
          "fd.is_server", "fd.sip", "fd.sport", "fd.cip", "fd.cport", "evt.is_io_read",
          "evt.is_io_write", "proc.name", "evt.time", "fd.num"]


@chisel("explain", "Misc", "Tell what the thread behind each matching event did around it: "
        "request, files, connections, answers, failures",
        args=(Arg("range_ms", "int", "how far before and after each event to look, in "
                  "milliseconds (default 1000)", True),),
        details="Give a filter for the events to explain, typically a log line: "
                "scaptool -r trace.scap -c explain \"evt.buffer contains 'Database error'\". "
                "For each one, the writing thread's events within range_ms are summed up: the "
                "first line of each request read from a client, files opened, connections "
                "made and the first lines their peers answered (answers that read as errors "
                "are flagged), failed system calls with their error, and the event itself.",
        chunked=True, rereads=True)
def explain(run):
    range_ms = run.arg("range_ms", 1000, int)
    if not run.user_filter:
        raise ChiselError("explain: give a filter for the events to explain "
                          "(for example: evt.buffer contains error)")
    stories = run.state.setdefault("stories", [])
    hits = run.select()
    if len(hits):
        h = run.capture.headers
        texts = run.texts(hits, ["evt.num", "evt.time", "proc.name", "evt.type", "fd.name"])
        buffers = run.fields(hits, ["evt.buffer"])["evt.buffer"].to_list()
        for i, (row, at) in enumerate(zip(hits.tolist(), run.reading_rows(hits).tolist())):
            stories.append(_Story(int(at), int(h.ts[row]), int(h.tid[row]),
                                  _heading(texts, i, buffers[i], int(h.tid[row]))))
    if not run.final or not stories:
        return
    half = range_ms * 1_000_000
    for data in run.read_again():
        _read_around(data, stories, half)
    for n, story in enumerate(stories):
        if n:
            run.line("")
        run.line(story.heading)
        for offset, kind, text in _compact(story.lines):
            run.line(f"  {_ms(offset):>11}  {kind:<10} {text}" if offset is not None
                     else f"  {'':>11}  {kind:<10} {text}")


def _heading(texts, i, raw, tid):
    """The first line of a story: the event itself."""
    what = first_line(raw, 1)
    target = texts["fd.name"][i]
    return (f"event {texts['evt.num'][i]} at {texts['evt.time'][i]}: "
            f"{texts['proc.name'][i] or '<NA>'} (tid {tid}) {texts['evt.type'][i]}" +
            (f" to {target}" if target else "") + (f": {what}" if what else ""))


def _read_around(data, stories, half):
    """Tell each story the events of this chunk around its event: its thread's, shown by
    sysdig, within `half` ns of it."""
    capture = data.capture
    if not len(capture):
        return
    ts_all = np.asarray(capture.headers.ts).astype(np.int64)
    tid_all = np.asarray(capture.headers.tid)
    first, last = int(ts_all.min()), int(ts_all.max())
    near = [s for s in stories if s.ts - half <= last and s.ts + half >= first]
    if not near:
        return
    visible = data.visible
    of_thread = {}   # a thread's visible rows, found once however many of its events match
    windows = []
    for story in near:
        if story.tid not in of_thread:
            of_thread[story.tid] = np.flatnonzero((tid_all == story.tid) & visible)
        mine = of_thread[story.tid]
        windows.append(mine[np.abs(ts_all[mine] - story.ts) <= half])
    every = np.unique(np.concatenate(windows))
    if not len(every):
        return
    from scaptool.query.chunks import reading_rows
    from scaptool.query.fields import columns_at, lookup
    from scaptool.query.format import field_texts
    frame = columns_at(data, _NAMES + ["evt.buffer"], every, printed=True)
    texts = {n: field_texts(frame[n], lookup(n)[0].kind, None) for n in _NAMES}
    buffers = frame["evt.buffer"].to_list()
    at = {int(r): i for i, r in enumerate(every)}
    order = dict(zip(every.tolist(), reading_rows(data, every).tolist()))
    for story, rows in zip(near, windows):
        for row in rows.tolist():
            if order[row] != story.row:
                i = at[row]
                story.tell(lambda name: texts[name][i], buffers[i], int(ts_all[row]))


class _Story:
    """What one matching event's thread did around it, told event by event in the order they
    are read (the connections' roles and the answers counted so far go on from one chunk to
    the next)."""

    def __init__(self, row, ts, tid, heading):
        self.row, self.ts, self.tid, self.heading = row, ts, tid, heading
        self.lines = []   # (offset from the event in ns, kind, text)
        self.replies = {}
        # a socket's role as the thread made it (connect: client, accept: server); sysdig's
        # fd.is_server guesses from addresses, which says "server" for both ends on loopback
        self.roles = {}

    def tell(self, value, data, ts):
        """One event of the window: `value(name)` its fields' texts, `data` its buffer."""
        if value("evt.dir") != "<":
            return
        kind = value("fd.type")
        is_socket = kind in ("ipv4", "ipv6")
        etype = value("evt.type")
        fd = value("fd.num")
        roles, replies = self.roles, self.replies
        if etype == "connect":
            roles[fd] = "client"
        elif etype in ("accept", "accept4"):
            roles[fd] = "server"
        server = roles.get(fd, "server" if value("fd.is_server") == "true" else "client") \
            == "server"
        line = None
        if etype == "connect" and value("evt.res") == "EINPROGRESS" and is_socket:
            # a non-blocking connect: under way, not failed
            line = ("connected", f"to {value('fd.sip')}:{value('fd.sport')}")
        elif value("evt.failed") == "true":
            line = ("failed", f"{etype} {value('fd.name') or ''}".rstrip() +
                    f": {value('evt.res')}")
        elif value("evt.is_io_read") == "true" and is_socket and data:
            text = first_line(data)
            if server and text:
                line = ("request", f"from {value('fd.cip')}:{value('fd.cport')}: {text}")
            elif not server and text:
                peer = f"{value('fd.sip')}:{value('fd.sport')}"
                count = replies[peer] = replies.get(peer, 0) + 1
                if count <= _MAX_REPLIES:
                    flag = "  <- reads as an error" if _ERROR_WORDS.search(bytes(data)) else ""
                    line = ("reply", f"{peer} answered: {text}{flag}")
        elif etype in ("open", "openat", "openat2", "creat") and kind in ("file", "directory"):
            line = ("opened", value("fd.name"))
        elif etype == "connect" and is_socket:
            line = ("connected", f"to {value('fd.sip')}:{value('fd.sport')}")
        elif etype in ("accept", "accept4") and is_socket:
            line = ("accepted", f"{value('fd.cip')}:{value('fd.cport')}")
        if line:
            self.lines.append((ts - self.ts, line[0], line[1]))


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
