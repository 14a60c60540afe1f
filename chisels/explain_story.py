"""What explain makes of one thread's events around the event to explain (chisels/explain.py
gathers them): the request the event belongs to, what each peer of that request said, the
failures that matter, and a one-sentence verdict.

A fact is one event as a dict: ts, tid, type, fd (number), name (fd.name), kind (fd.type),
l4, failed, errno (a name such as ENOENT, or None), res (evt.rawres), read, write, sip, sport,
cip, cport, server (sysdig's guess: fd.is_server), text (the first line of its data), size,
error_words (its data reads as an error), data (the bytes), proc (proc.name), exit (procexit's
exit code), path (an open's path argument, else its fd name), at (where it is in the
reading: the event to explain is the story's row). Facts are shared by the stories that see
the event, and never changed.

The request: the client connection the event writes to, or, for any other event (a log
write), the last one the thread read a request from before it; the request arrived with the
first read on that connection after it was last written to. What the thread, the processes it
started and the other threads that used its connections (an acceptor that read the request
and handed it over) did from then to the event is the story; requests of other clients
served in the window are counted, not told.
"""
import re

# Results that are how non-blocking I/O and interrupted calls work, not failures.
EXPECTED_ERRNOS = frozenset({"EAGAIN", "EWOULDBLOCK", "EINPROGRESS", "EALREADY", "EINTR",
                             "ERESTARTSYS"})
# Failures that say the peer would not talk.
CONNECTION_ERRNOS = frozenset({"ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE",
                               "EHOSTUNREACH", "ENETUNREACH", "ECONNABORTED"})
OPENS = frozenset({"open", "openat", "openat2", "creat"})
CLONES = frozenset({"clone", "clone3", "fork", "vfork"})
EXECS = frozenset({"execve", "execveat"})
_ERROR_WORDS = re.compile(rb"denied|error|fail|refused|invalid|unauthori[sz]ed|forbidden|"
                          rb"not allowed|rejected|timeout|timed out", re.IGNORECASE)
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{4,}")
_MAX_REPLIES = 3  # per connection: the first answers tell the story (and the last one)
# DNS answer codes (RFC 1035 and 2136) worth a name
_DNS_RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


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


def reads_as_error(raw):
    return bool(raw) and bool(_ERROR_WORDS.search(bytes(raw)))


def dns_question(raw):
    """The name a DNS message asks about (its first question), or None."""
    raw = bytes(raw or b"")
    if len(raw) < 13:
        return None
    labels, at = [], 12
    while at < len(raw) and raw[at] and len(labels) < 64:
        n = raw[at]
        if n & 0xC0 or at + 1 + n > len(raw):
            return None
        labels.append(raw[at + 1:at + 1 + n].decode("ascii", "replace"))
        at += 1 + n
    return ".".join(labels) or None


def dns_answer_code(raw):
    """A DNS reply's error (NXDOMAIN, SERVFAIL, ...), or None when it answered."""
    raw = bytes(raw or b"")
    if len(raw) < 4 or not raw[2] & 0x80:   # not a response
        return None
    return _DNS_RCODES.get(raw[3] & 0x0F)


def _ms(delta_ns):
    return f"{abs(delta_ns) / 1e6:.3f} ms"


class Story:
    """One event to explain and what its thread did around it (see the module's docstring)."""

    def __init__(self, row, ts, tid, heading):
        self.row, self.ts, self.tid, self.heading = row, ts, tid, heading
        self.pid = None   # its process (proc.pid's text): other threads of it may help
        self.facts = []

    def tell(self):
        """(verdict, lines, other_requests, as_dict): the story told."""
        facts = [dict(f, own=f["at"] == self.row) for f in _related_facts(self)]
        facts.sort(key=lambda f: (f["ts"], not f["own"]))
        own = next((f for f in facts if f["own"]), None)
        roles = _roles(facts)
        client = _client_connection(facts, own, roles)
        arrival = _arrival(facts, client, self.ts)
        scope = [f for f in facts if f["ts"] >= arrival and f["ts"] <= self.ts
                 or (client and f["name"] == client and f["type"] in ("accept", "accept4")
                     and f["ts"] <= self.ts)]
        scope = _without_other_backends(scope, roles, client)
        others = _other_requests(facts, client, roles)
        peers = _peers(scope, roles, client)
        failures = [f for f in scope if _matters(f)]
        children = _children(scope, self.tid)
        verdict = _verdict(self, own, peers, failures, children)
        lines = _lines(scope, roles, client, self.ts, self.tid)
        request = None
        if client:
            first = next((f for f in scope if f["name"] == client and f["read"] and f["text"]),
                         None)
            request = dict(connection=client, first_line=first and first["text"],
                           arrived_ms=(arrival - self.ts) / 1e6)
        as_dict = dict(
            event=self.heading, verdict=verdict, request=request,
            peers=[dict(peer=p["peer"], protocol=p["l4"], outcome=p["outcome"],
                        exchange=[dict({k: v for k, v in step.items() if k != "ts"},
                                       offset_ms=(step["ts"] - self.ts) / 1e6)
                                  for step in p["exchange"]]) for p in peers],
            failures=[dict(offset_ms=(f["ts"] - self.ts) / 1e6, call=f["type"],
                           fd=f["path"] or f["name"], error=f["errno"]) for f in failures],
            children=[dict(pid=c["pid"], name=c["proc"], exit=c["exit"],
                           exec_failed=c["exec_error"]) for c in children],
            other_requests=others,
            lines=[dict(offset_ms=None if o is None else o / 1e6, kind=k, text=t)
                   for o, k, t in lines])
        return verdict, lines, others, as_dict


def _related_facts(story):
    """Of the events of the story's process and its children around the event: the thread's,
    those of the processes it started, and those of its process's other threads on the
    connections the thread (or a child) used."""
    mine = [f for f in story.facts if f["tid"] == story.tid]
    children = {f["res"] for f in mine if f["type"] in CLONES and not f["failed"]
                and f["res"] and f["res"] > 0}
    theirs = [f for f in story.facts if f["tid"] in children]
    used = {f["name"] for f in mine + theirs if f["name"] and f["kind"] in ("ipv4", "ipv6")}
    handed = [f for f in story.facts if f["tid"] != story.tid and f["tid"] not in children
              and f["pid"] == story.pid and f["name"] in used]
    return mine + theirs + handed


def _roles(facts):
    """A socket's role as the thread made it (connect: client, accept: server); sysdig's
    fd.is_server guesses from addresses, which says "server" for both ends on loopback."""
    roles = {}
    for f in facts:
        if not f["name"] or f["kind"] not in ("ipv4", "ipv6"):
            continue
        if f["type"] == "connect":
            roles[f["name"]] = "client"
        elif f["type"] in ("accept", "accept4"):
            roles[f["name"]] = "server"
        else:
            roles.setdefault(f["name"], "server" if f["server"] else "client")
    return roles


def _client_connection(facts, own, roles):
    """The connection of the client whose request the event belongs to (its fd.name)."""
    if own is not None and own["name"] and roles.get(own["name"]) == "server":
        return own["name"]
    before = [f for f in facts if f["ts"] <= (own["ts"] if own else 0) and f["read"]
              and f["text"] and roles.get(f["name"]) == "server"]
    return before[-1]["name"] if before else None


def _arrival(facts, client, ts):
    """When the request arrived: the first read on the client connection after the thread
    last wrote to it (an earlier answer on a kept-alive connection), before the event."""
    if client is None:
        return min((f["ts"] for f in facts), default=ts)
    on = [f for f in facts if f["name"] == client and f["ts"] <= ts and not f["own"]]
    last_write = max((f["ts"] for f in on if f["write"]), default=None)
    reads = [f["ts"] for f in on if f["read"] and f["size"] and
             (last_write is None or f["ts"] > last_write)]
    if reads:
        return reads[0]
    accepted = [f["ts"] for f in on if f["type"] in ("accept", "accept4")]
    return accepted[-1] if accepted else min(f["ts"] for f in facts)


def _without_other_backends(scope, roles, client):
    """The scope without connections the request did not use: a connection the thread holds
    as a client counts only if it connected or sent on it after the request arrived (a
    proxy reads its other clients' backends in between)."""
    used = {f["name"] for f in scope if f["name"] and f["kind"] in ("ipv4", "ipv6")
            and roles.get(f["name"]) == "client" and (f["type"] == "connect" or f["write"])}
    return [f for f in scope if not (f["name"] and f["kind"] in ("ipv4", "ipv6") and
                                     f["name"] != client and roles.get(f["name"]) == "client"
                                     and f["name"] not in used)]


def _other_requests(facts, client, roles):
    """Requests of other clients the thread read in the window: one per connection and
    answer (a read after the thread wrote to that connection starts another)."""
    count, answered = 0, {}
    for f in facts:
        name = f["name"]
        if not name or name == client or roles.get(name) != "server":
            continue
        if f["read"] and f["size"] and answered.get(name, True):
            count += 1
            answered[name] = False
        elif f["write"]:
            answered[name] = True
    return count


def _last_replies(scope):
    """Per connection, the time of the last answer read before the event."""
    last = {}
    for f in scope:
        if f["read"] and f["size"] and not f["own"]:
            last[f["name"]] = f["ts"]
    return last


def _peers(scope, roles, client):
    """What each connection the request used (as a client) carried, in order: sent, answered
    (first line, size, reads as an error), closed or reset. Past the first few answers of a
    connection only the last one is kept: the one nearest the event is never dropped."""
    peers, last = {}, _last_replies(scope)
    for f in scope:
        name = f["name"]
        if not name or name == client or f["kind"] not in ("ipv4", "ipv6") or \
                roles.get(name) == "server" or f["own"]:
            continue
        p = peers.get(name)
        if p is None:
            p = peers[name] = dict(peer=f"{f['sip']}:{f['sport']}" if f["sip"] else
                                   name.split("->")[-1],
                                   l4=f["l4"], exchange=[], outcome=None, replies=0,
                                   last_reply=None)
        step = None
        if f["failed"] and f["errno"] in CONNECTION_ERRNOS:
            p["outcome"] = dict(ECONNREFUSED="refused", ECONNRESET="reset",
                                ETIMEDOUT="timed out", EPIPE="closed by the peer"
                                ).get(f["errno"], f["errno"])
            step = dict(ts=f["ts"], what="failed", call=f["type"], error=f["errno"])
        elif f["type"] == "connect" and (not f["failed"] or f["errno"] == "EINPROGRESS"):
            step = dict(ts=f["ts"], what="connected")
        elif f["failed"]:
            continue
        elif f["write"] and f["size"]:
            question = dns_question(f["data"]) if f["sport"] == "53" else None
            p["question"] = question or p.get("question")
            step = dict(ts=f["ts"], what="sent", size=f["size"],
                        text=f"DNS query for {question}" if question else f["text"])
        elif f["read"] and f["size"]:
            code = dns_answer_code(f["data"]) if f["sport"] == "53" else None
            p["replies"] += 1
            step = dict(ts=f["ts"], what="answered", size=f["size"],
                        text=f"DNS {code}" if code else f["text"],
                        error=bool(code) or f["error_words"])
            p["last_reply"] = step
            if p["replies"] > _MAX_REPLIES and f["ts"] != last[name]:
                continue
        elif f["read"] and f["res"] == 0:
            p["outcome"] = p["outcome"] or "closed by the peer"
            step = dict(ts=f["ts"], what="closed by the peer")
        elif f["type"] == "close":
            p["outcome"] = p["outcome"] or "closed by this thread"
            step = dict(ts=f["ts"], what="closed")
        if step is not None:
            p["exchange"].append(step)
    return list(peers.values())


def _matters(f):
    """A failure worth showing: not EAGAIN and its kin on non-blocking fds."""
    return f["failed"] and f["errno"] not in EXPECTED_ERRNOS and f["type"] != "procexit"


def _children(scope, tid):
    """The processes the thread started in the scope: pid, name, exit code, failed exec."""
    started = {}
    for f in scope:
        if f["tid"] == tid and f["type"] in CLONES and not f["failed"] and f["res"] and \
                f["res"] > 0:
            started[f["res"]] = dict(pid=f["res"], proc=None, exit=None, exec_error=None,
                                     ts=f["ts"])
    for f in scope:
        child = started.get(f["tid"])
        if child is None:
            continue
        if f["type"] in EXECS:
            if f["failed"]:
                child["exec_error"] = f["errno"]
            else:
                child["proc"] = f["proc"]
        elif f["type"] == "procexit":
            child["exit"] = f["exit"]
            child["exit_ts"] = f["ts"]
            child["proc"] = child["proc"] or f["proc"]
    return list(started.values())


def _what(own):
    if own is None:
        return "the event"
    if own["write"] and own["kind"] == "file":
        return "the log line was written"
    if own["write"]:
        return "the answer was written"
    return "the event"


def _verdict(story, own, peers, failures, children):
    """The most likely cause, in one sentence: a peer's answer that reads as an error, a
    connection refused or reset, a DNS name that does not exist, a file that could not be
    opened, a child process that failed; the latest of the strongest kind."""
    ts, then = story.ts, _what(own)
    candidates = []   # (strength, ts, sentence)
    for p in peers:
        reply = p["last_reply"]
        if p["outcome"] in ("refused", "reset", "timed out"):
            step = next(s for s in reversed(p["exchange"]) if s["what"] == "failed")
            candidates.append((4, step["ts"], f"the connection to {p['peer']} was "
                               f"{p['outcome']} ({step['error']}); {_ms(ts - step['ts'])} "
                               f"later {then}"))
        if reply is not None:
            closed = p["outcome"] in ("closed by the peer", "closed by this thread", "reset")
            if reply["text"] and reply["text"].startswith("DNS ") and reply["error"]:
                asked = f" for {p['question']}" if p.get("question") else ""
                candidates.append((4, reply["ts"], f"the DNS server {p['peer']} answered "
                                   f"{reply['text'][4:]}{asked}; {_ms(ts - reply['ts'])} "
                                   f"later {then}"))
            elif reply["error"] or closed:
                said = reply["text"] or f"{reply['size']} bytes of binary data"
                candidates.append((3 if reply["error"] else 2, reply["ts"],
                                   f"backend {p['peer']} answered \"{said}\""
                                   + (" and the connection was closed" if closed else "")
                                   + f"; {_ms(ts - reply['ts'])} later {then}"))
    for c in children:
        if c["exec_error"]:
            candidates.append((3, c["ts"], f"starting a child process failed "
                               f"({c['exec_error']}); {_ms(ts - c['ts'])} later {then}"))
        elif c["exit"] not in (None, 0):
            at = c.get("exit_ts", c["ts"])
            candidates.append((3, at, f"child process {c['pid']} ({c['proc'] or '?'}) exited "
                               f"with status {c['exit']}; {_ms(ts - at)} later {then}"))
    for f in failures:
        if f["type"] in OPENS:
            candidates.append((3, f["ts"], f"opening {f['path'] or 'a file'} failed "
                               f"({f['errno']}); {_ms(ts - f['ts'])} later {then}"))
        elif f["errno"] not in CONNECTION_ERRNOS:
            candidates.append((1, f["ts"], f"{f['type']} on {f['name'] or 'no fd'} failed "
                               f"({f['errno']}); {_ms(ts - f['ts'])} later {then}"))
    if not candidates:
        return "no failure found in what the thread did for this request"
    return max(candidates, key=lambda c: (c[0], c[1]))[2]


def _lines(scope, roles, client, ts, tid):
    """The story's lines: (offset from the event in ns, kind, text)."""
    lines, replies, last = [], {}, _last_replies(scope)
    for f in scope:
        if not f["own"]:
            line = _line(f, roles, tid, replies, last)
            if line is not None:
                # what another thread did for the request (or a process it started) says so
                who = f" (tid {f['tid']})" if f["tid"] != tid else ""
                lines.append((f["ts"] - ts, line[0], line[1] + who))
    return lines


def _reply_text(f):
    peer = f"{f['sip']}:{f['sport']}"
    code = dns_answer_code(f["data"]) if f["sport"] == "53" else None
    if code:
        return f"{peer} answered: DNS {code}  <- reads as an error [{f['size']} bytes]"
    flag = "  <- reads as an error" if f["error_words"] else ""
    return f"{peer} answered: {f['text'] or '(binary data)'}{flag} [{f['size']} bytes]"


def _line(f, roles, tid, replies, last):
    etype, name = f["type"], f["name"]
    is_socket = f["kind"] in ("ipv4", "ipv6")
    server = roles.get(name) == "server"
    if etype == "procexit":
        if f["exit"]:
            return ("exited", f"process {f['tid']} ({f['proc']}) with status {f['exit']}")
        return None
    if etype == "connect" and is_socket and f["errno"] == "EINPROGRESS":
        return ("connected", f"to {f['sip']}:{f['sport']}")   # non-blocking: under way
    if f["failed"]:
        if not _matters(f):
            return None
        return ("failed", f"{etype} {f['path'] or name or ''}".rstrip() + f": {f['errno']}")
    if etype in CLONES and f["res"] and f["res"] > 0:
        return ("started", f"process {f['res']}")
    if etype in EXECS and f["tid"] != tid:
        return ("executed", f["proc"] or "")
    if f["read"] and is_socket and f["size"]:
        if server:
            return ("request", f"from {f['cip']}:{f['cport']}: {f['text']}") if f["text"] \
                else None
        count = replies[name] = replies.get(name, 0) + 1
        if count > _MAX_REPLIES and f["ts"] != last.get(name):
            return None   # bulk data; the last answer before the event is always shown
        return ("reply", _reply_text(f))
    if f["read"] and is_socket and f["res"] == 0 and not server:
        return ("closed", f"{f['sip']}:{f['sport']} closed the connection")
    if f["write"] and is_socket and f["size"] and not server:
        question = dns_question(f["data"]) if f["sport"] == "53" else None
        text = f"DNS query for {question}" if question else (f["text"] or "(binary data)")
        return ("sent", f"to {f['sip']}:{f['sport']}: {text} [{f['size']} bytes]")
    if etype in OPENS and f["kind"] in ("file", "directory"):
        return ("opened", name)
    if etype == "connect" and is_socket:
        return ("connected", f"to {f['sip']}:{f['sport']}")
    if etype in ("accept", "accept4") and is_socket:
        return ("accepted", f"{f['cip']}:{f['cport']}")
    return None
