"""explain: from one event (typically a vague log line) to what went wrong, in a few lines.

A log line like "Database error" says that something failed, not what. What the writing
thread did for the request it was serving usually does: the servers it called and what they
answered, the files it could not open, the processes it started that failed. For every event
the filter matches, explain finds that request (chisels/explain_story.py), tells what the
thread did from the request's arrival to the event, names the most likely cause in a verdict
line at the top, and sums up the other requests the thread served in the window in one line.
`range_ms` bounds the search; `json` as the second argument prints the same as JSON.

It reads the capture twice, a chunk at a time: once for the matching events, then again for
the events around them, since a window reaches back into chunks read before its event.
"""
import json

import numpy as np

from . import Arg, ChiselError, chisel
from .explain_story import Story, first_line, reads_as_error

__all__ = ["explain", "first_line"]


def _ms(delta_ns):
    return f"{delta_ns / 1e6:+.3f}ms"


# the fields a story is told from
_NAMES = ["evt.type", "evt.dir", "evt.failed", "evt.res", "evt.rawres", "fd.name", "fd.type",
          "fd.l4proto", "fd.is_server", "fd.sip", "fd.sport", "fd.cip", "fd.cport",
          "evt.is_io_read", "evt.is_io_write", "proc.name", "evt.arg.ret", "evt.arg.name",
          "proc.pid", "proc.ppid"]
_CLONE_TYPES = ("clone", "clone3", "fork", "vfork")
_OPENS = ("open", "openat", "openat2", "creat")


@chisel("explain", "Misc", "Tell what went wrong behind each matching event: the request it "
        "belongs to, what the servers it called answered, the failures that matter, and a "
        "verdict",
        args=(Arg("range_ms", "int", "how far before and after each event to look, in "
                  "milliseconds (default 1000)", True),
              Arg("output", "string", "json: the same as JSON, one object per event", True)),
        details="Give a filter for the events to explain, typically a log line: "
                "scaptool -r trace.scap -c explain \"evt.buffer contains 'Database error'\". "
                "For each one: a verdict line naming the most likely cause (a peer's answer "
                "that reads as an error, a refused or reset connection, a DNS name that does "
                "not exist, a file that could not be opened, a child process that failed), "
                "then what the thread did from the arrival of the request the event belongs "
                "to (the client connection it answers, or the last request it read before a "
                "log write): files opened, connections made, what each peer was sent and "
                "answered and whether it closed, failed calls (not EAGAIN and its kin), "
                "processes started. Other requests served in the window are counted in one "
                "line.",
        chunked=True, rereads=True)
def explain(run):
    range_ms = run.arg("range_ms", 1000, int)
    output = run.arg("output", "text")
    if output not in ("text", "json"):
        raise ChiselError("explain: the second argument is json (or nothing)")
    if not run.user_filter:
        raise ChiselError("explain: give a filter for the events to explain "
                          "(for example: evt.buffer contains error)")
    stories = run.state.setdefault("stories", [])
    hits = run.select()
    if len(hits):
        h = run.capture.headers
        texts = run.texts(hits, ["evt.num", "evt.time", "proc.name", "evt.type", "fd.name",
                                 "proc.pid", "proc.ppid"])
        buffers = run.fields(hits, ["evt.buffer"])["evt.buffer"].to_list()
        for i, (row, at) in enumerate(zip(hits.tolist(), run.reading_rows(hits).tolist())):
            story = Story(int(at), int(h.ts[row]), int(h.tid[row]),
                          _heading(texts, i, buffers[i], int(h.tid[row])))
            story.pid = texts["proc.pid"][i]
            stories.append(story)
    if not run.final or not stories:
        return
    half = range_ms * 1_000_000
    for data in run.read_again():
        _read_around(data, stories, half)
    told = [story.tell() for story in stories]
    if output == "json":
        for _, _, _, as_dict in told:
            run.line(json.dumps(as_dict))
        return
    for n, (verdict, lines, others, _) in enumerate(told):
        if n:
            run.line("")
        run.line(stories[n].heading)
        run.line(f"  verdict: {verdict}")
        for offset, kind, text in _compact(lines):
            run.line(f"  {_ms(offset):>11}  {kind:<10} {text}" if offset is not None
                     else f"  {'':>11}  {kind:<10} {text}")
        if others:
            run.line(f"  ({others} other request{'s' if others > 1 else ''} this thread "
                     f"served within {range_ms} ms {'are' if others > 1 else 'is'} not shown)")


def _heading(texts, i, raw, tid):
    """The first line of a story: the event itself."""
    what = first_line(raw, 1)
    target = texts["fd.name"][i]
    return (f"event {texts['evt.num'][i]} at {texts['evt.time'][i]}: "
            f"{texts['proc.name'][i] or '<NA>'} (tid {tid}) {texts['evt.type'][i]}" +
            (f" to {target}" if target else "") + (f": {what}" if what else ""))


def _read_around(data, stories, half):
    """Give each story the events of this chunk within `half` ns of its event, of its
    process and of the processes that process started, shown by sysdig: the story keeps its
    thread's, its children's and those of other threads on its connections (Story.tell).
    Taking them all, whatever the chunk, makes a story the same however the capture is cut.
    One filter and one batch of fields per chunk, for all stories together (explain
    "evt.type=write" may have thousands)."""
    from scaptool.query.select import filter_mask
    capture = data.capture
    if not len(capture):
        return
    ts_all = np.asarray(capture.headers.ts).astype(np.int64)
    first, last = int(ts_all.min()), int(ts_all.max())
    near = [s for s in stories if s.ts - half <= last and s.ts + half >= first]
    if not near:
        return
    pids = sorted({s.pid for s in near if s.pid})
    if not pids:
        return
    listed = ", ".join(pids)
    related = data.visible & _in_windows(ts_all, [s.ts for s in near], half)
    if not related.any():
        return
    related &= filter_mask(capture, f"proc.pid in ({listed}) or proc.ppid in ({listed})", data)
    rows = np.flatnonzero(related)
    facts = _Facts(data)
    facts.fill([rows])
    by_process = {}
    for f in facts.get(rows):
        by_process.setdefault(f["pid"], []).append(f)
        if f["ppid"] != f["pid"]:
            by_process.setdefault(f["ppid"], []).append(f)
    times = {pid: np.array([f["ts"] for f in group]) for pid, group in by_process.items()}
    for s in near:
        group = by_process.get(s.pid)
        if group:
            t = times[s.pid]
            s.facts += [f for f in group if abs(f["ts"] - s.ts) <= half] if not \
                np.all(t[:-1] <= t[1:]) else \
                group[np.searchsorted(t, s.ts - half):np.searchsorted(t, s.ts + half, "right")]


def _in_windows(ts, centres, half):
    """A bool per event: is it within `half` of one of the centres?"""
    centres = np.sort(np.asarray(centres, dtype=np.int64))
    nearest = np.clip(np.searchsorted(centres, ts), 1, len(centres) - 1) if len(centres) > 1 \
        else np.zeros(len(ts), dtype=np.int64)
    close = np.abs(ts - centres[nearest]) <= half
    if len(centres) > 1:
        close |= np.abs(ts - centres[nearest - 1]) <= half
    return close


class _Facts:
    """explain_story's facts of a chunk's rows, computed a batch of rows at a time and once
    per row (shared by the stories that see it; a fact's `at` says where it is in the
    reading, so that a story knows its own event)."""

    def __init__(self, data):
        self.data = data
        self.by_row = {}

    def fill(self, row_arrays):
        rows = [r for r in row_arrays if len(r)]
        if not rows:
            return
        rows = np.unique(np.concatenate(rows))
        new = rows[np.fromiter((r not in self.by_row for r in rows.tolist()), dtype=bool,
                               count=len(rows))]
        if not len(new):
            return
        facts = _facts(self.data, new)
        for row in new.tolist():
            self.by_row[row] = facts.get(row)

    def get(self, rows):
        return [f for f in (self.by_row.get(r) for r in rows.tolist()) if f is not None]


def _facts(data, rows):
    """The events at these rows as explain_story's facts, by row (exit events and process
    exits only)."""
    from scaptool.query.chunks import reading_rows
    from scaptool.query.fields import columns_at, lookup
    from scaptool.query.format import field_texts
    frame = columns_at(data, _NAMES + ["evt.buffer"], rows, printed=True)
    texts = {n: field_texts(frame[n], lookup(n)[0].kind, None) for n in _NAMES}
    buffers = frame["evt.buffer"].to_list()
    h = data.capture.headers
    at = reading_rows(data, rows).tolist()
    facts = {}
    for i, row in enumerate(rows.tolist()):
        etype = texts["evt.type"][i]
        if texts["evt.dir"][i] != "<" and etype != "procexit":
            continue
        raw = buffers[i]
        res = texts["evt.rawres"][i]
        failed = texts["evt.failed"][i] == "true"
        size = int(res) if res not in (None, "") and not failed and int(res) > 0 else 0
        exit_code = texts["evt.arg.ret"][i] if etype == "procexit" else None
        facts[row] = dict(
            ts=int(h.ts[row]), tid=int(h.tid[row]), type=etype, name=texts["fd.name"][i],
            kind=texts["fd.type"][i], l4=texts["fd.l4proto"][i], failed=failed,
            errno=texts["evt.res"][i] if failed else None,
            res=int(res) if res not in (None, "") else None,
            read=texts["evt.is_io_read"][i] == "true",
            write=texts["evt.is_io_write"][i] == "true",
            sip=texts["fd.sip"][i], sport=texts["fd.sport"][i], cip=texts["fd.cip"][i],
            cport=texts["fd.cport"][i], server=texts["fd.is_server"][i] == "true",
            text=first_line(raw), size=size, error_words=reads_as_error(raw),
            data=bytes(raw) if raw else b"", proc=texts["proc.name"][i],
            exit=int(exit_code) if exit_code not in (None, "") else None,
            pid=texts["proc.pid"][i], ppid=texts["proc.ppid"][i],
            path=(texts["evt.arg.name"][i] if etype in _OPENS else None) or texts["fd.name"][i],
            at=at[i])
    return facts


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
