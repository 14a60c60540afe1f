"""HTTP chisels: pair each HTTP request seen in a socket buffer with the response that follows
on the same process and fd, and print them one per line (httplog) or as a top table
(httptop), as sysdig 0.29.3's http.lua does.

The parsing is sysdig's, pattern for pattern: it works on the buffer as sysdig renders it
(every non-printable byte as a dot, so a CR LF is ".."), only looks at the start of a buffer
for a request (`METHOD url`, the Host header prefixed to the url), and anywhere in a buffer
for a response (`HTTP/x code`, with Content-Length or 0). A request is only looked for while
nothing is pending on the (pid, fd) pair, and a response only while a request is.

Both read the capture a chunk at a time: the requests still waiting for their response go on
to the next chunk (with the container they were made in, for -pc), and so do httptop's
counts."""
import re

from scaptool.scap.codecs import bytebuf_text

from . import Arg, ChiselError, chisel
from .io import chisel_rows, format_bytes, format_time_interval
from .tables import RULE, extend, lua_number

# sysdig's chisel filter: "evt.is_io = true and evt.buflen > 0 and (fd.sockfamily = ip or
# fd.sockfamily = unix)". A chisel's filter runs on the parsed event (unlike the command line
# filter, which sees most exits before parsing, when evt.buflen has no value yet), so the
# buffer length and socket family are taken as printed.
IO_FILTER = "evt.is_io = true"

# Lua classes: %u = [A-Z], %g = any printable but space, %d = [0-9].
_REQUEST = re.compile(r"([A-Z]+) ([!-~]+)")
_HOST = re.compile(r"Host: ([!-~]+)\.\.")
_RESPONSE = re.compile(r"HTTP/[!-~]+ ([0-9]+)")
_LENGTH = re.compile(r"Content-Length: ([0-9]+)\.\.")


def render_buffer(raw):
    """A buffer as sysdig hands evt.buffer to a chisel (normal format): printable ASCII kept,
    every other byte a dot, nothing cut."""
    return bytebuf_text(bytes(raw), None)


def parse_request(text):
    """{'method', 'url'} of a request that starts the buffer text, else None."""
    m = _REQUEST.match(text)
    if not m:
        return None
    method, url = m.group(1), m.group(2)
    host = _HOST.search(text)
    if host:
        url = host.group(1) + url
    return {"method": method, "url": url}


def parse_response(text):
    """{'code', 'length'} of a response anywhere in the buffer text, else None."""
    m = _RESPONSE.search(text)
    if not m:
        return None
    length = _LENGTH.search(text)
    return {"code": int(m.group(1)), "length": int(length.group(1)) if length else 0}


def transactions(run):
    """Each transaction completed in this chunk, in capture order: dict with dir, method, url,
    code, length, request and response times (ns), the response's row and, with -pc, the
    request's container name and a space (`place`). The requests still waiting for their
    response go on to the next chunk."""
    pending = run.state.setdefault("pending", {})
    rows = chisel_rows(run, IO_FILTER)
    if len(rows) == 0:
        return []
    frame = run.fields(rows, ["evt.buflen", "fd.sockfamily"])
    keep = ((frame["evt.buflen"] > 0) & frame["fd.sockfamily"].is_in(["ip", "unix"]))
    rows = rows[keep.fill_null(False).to_numpy()]
    if len(rows) == 0:
        return []
    frame = run.fields(rows, ["evt.buffer", "proc.pid", "fd.num", "evt.rawtime",
                              "evt.io_dir"])
    requests = []
    out = []
    for i, (raw, pid, fd, ts, io_dir) in enumerate(frame.iter_rows()):
        if raw is None:
            continue
        text = render_buffer(raw)
        key = (pid, fd)
        transaction = pending.get(key)
        if transaction is None:
            request = parse_request(text)
            if request:
                request["dir"] = {"read": "<", "write": ">"}.get(io_dir, "<NA>")
                request["ts"] = ts
                request["request_row"] = int(rows[i])
                pending[key] = request
                requests.append(request)
        else:
            response = parse_response(text)
            if response:
                transaction.update(response, response_ts=ts, row=int(rows[i]))
                out.append(transaction)
                del pending[key]
    _place(run, requests)
    return out


def _latency(t):
    """Response time minus request time as Lua computes it: on doubles."""
    return float(t["response_ts"]) - float(t["ts"])


@chisel("httplog", "Application", "Show a log of all HTTP requests",
        details="Every HTTP transaction seen on an IP or unix socket: the time of the "
                "response, the direction of the request (< read: served, > written: made), "
                "the method, the url (with the Host header in front), the response code, the "
                "latency in ms and the Content-Length of the response.", chunked=True)
def httplog(run):
    found = transactions(run)
    if not found:
        return
    times = run.texts([t["row"] for t in found], ["evt.datetime"])["evt.datetime"]
    for t, when in zip(found, times):
        run.line(f"{when} {t['place']}{t['dir']} method={t['method']} url={t['url']} "
                 f"response_code={t['code']} latency={int(_latency(t) / 1000000)}ms "
                 f"size={t['length']}B")


def _place(run, requests):
    """With -pc, the container name of each request (of this chunk) followed by a space: the
    `place` of its transaction ('' without -pc). Where the container has no name sysdig's
    chisel stops with a Lua error (it concatenates nil); it is shown as <NA> here."""
    if not run.print_container:
        for request in requests:
            request["place"] = ""
        return
    names = run.texts([r["request_row"] for r in requests], ["container.name"])
    for request, name in zip(requests, names["container.name"]):
        request["place"] = f"{name or '<NA>'} "


_BY = {"ncalls": ("ncalls", "none"), "time": ("time", "time"), "bytes": ("bytes", "bytes")}


@chisel("httptop", "Application", "Show top HTTP requests by: ncalls, time or bytes",
        args=(Arg("by", "string", "Show top HTTP transactions by: ncalls, time or bytes, "
                  "default is ncalls", True),),
        details="HTTP transactions grouped by method and url (see httplog), the 30 biggest "
                "groups first: by number of calls (default), average latency or total bytes "
                "of the responses' Content-Length.", at_end=True, chunked=True)
def httptop(run):
    by = run.arg("by") or "ncalls"
    if by not in _BY:
        run.line("Invalid argument! Valid options: ncalls, bytes, time")
        raise ChiselError("set_arg() for chisel httptop failed.")
    # per group: [calls, bytes, time], added up in the order of the transactions
    groups = run.state.setdefault("groups", {})
    for t in transactions(run):
        # with -pc, grouped by container too
        group = groups.setdefault((t["place"][:-1], t["method"], t["url"]), [0, 0, 0])
        group[0] += 1
        group[1] += t["length"]
        group[2] += _latency(t)
    if not run.final:
        return
    values = {}
    for key, (calls, length, latency) in groups.items():
        if by == "ncalls":
            values[key] = calls
        elif by == "bytes":
            values[key] = float(length)
        else:
            values[key] = latency / calls
    desc, units = _BY[by]
    box = extend("container") if run.print_container else ""
    run.line(extend(desc) + box + extend("method") + extend("url"))
    run.line(RULE)
    ordered = sorted(values.items(), key=lambda kv: kv[1], reverse=True)[:30]
    for (place, method, url), value in ordered:
        if units == "none":
            shown = lua_number(value)
        elif units == "bytes":
            shown = format_bytes(value)
        else:
            shown = format_time_interval(value)
        box = extend(place) if run.print_container else ""
        run.line(extend(shown) + box + extend(method[:20]) + url)
