"""Network and fd-table fields of sysdig 0.29.3 beyond the basic fd.* columns: local/remote
ends of a socket (fd.lip, fd.rport...), ports as protocol text (fd.sproto...), the filter-only
fields matching either end of a socket (fd.ip, fd.port, fd.proto, fd.net) or one end's network
(fd.cnet...), fd.connected, fd.name_changed, fd.dev*, fd.container*, the DNS-name fields, and
the fdlist.* fields of poll events.

Everything is read from the fd table entry each event shows, as query.fds keeps it (one
version per change, joined to the events), with the rules of libsinsp 0.29.3's
sinsp_filter_check_fd / sinsp_filter_check_fdlist, checked against sysdig's output on the
corpus:

* A socket entry holds (sip, sport) -> (dip, dport) as client -> server. Fields that need a
  role (cip, lip, lport, cproto...) have no value for a socket nobody connected, bound or
  accepted yet; the filter-only fd.ip/fd.port/fd.net ignore the role and see a fresh
  socket's zero addresses and ports.
* "Local" is decided by the *client* address alone: when it is an address of one of the
  capture's interfaces, local = client and remote = server, else the other way round (an
  IPv4 address must equal an interface address; an IPv6 one share its first 64 bits).
* The *proto fields print the port number, as sysdig does without -R (with -R it prints
  the service name, http-alt for 8080; scaptool has no -R).
* The DNS-name fields (fd.cip.name...) come from sysdig's DNS manager, which never runs when
  reading a file: they have no value. (sysdig's filters are another matter: there
  `fd.cip.name=localhost` resolves the name on the machine reading the file and compares its
  addresses with the socket's; that is not emulated.)
"""
import ipaddress

import numpy as np
import polars as pl

from . import fds
from .field_catalog import FIELDS, FieldDef, field
from .field_common import table_column, fake_container_rows

__all__ = ["NetFieldDef", "fdlist_columns", "socket_entries"]


class NetFieldDef(FieldDef):
    """A catalog entry that also says what the elements of a multi-valued ('any') field are:
    fd.ip/fd.net hold addresses ('ip'), fd.port/fd.proto port numbers ('port')."""

    def __init__(self, *args, item="string", filter_only=False, **kwargs):
        super().__init__(*args, **kwargs)
        # the dataclass is frozen: these two are set the way its own fields are
        object.__setattr__(self, "item", item)
        object.__setattr__(self, "filter_only", filter_only)


def _register(name, type_, kind, description, compute, item="string", filter_only=False):
    FIELDS[name] = NetFieldDef(name, type_, kind, description, compute, item=item,
                               filter_only=filter_only)
    return compute


# -- the entry each event shows ---------------------------------------------------------------

_ENTRY_SCHEMA = {"vid": pl.Int64, "type": pl.Int64, "name": pl.String, "sip": pl.String,
                 "sport": pl.Int64, "dip": pl.String, "dport": pl.Int64, "role": pl.Int64,
                 "l4": pl.Int64, "start": pl.Int64, "owner": pl.Int64, "fd": pl.Int64,
                 "dev": pl.Int64, "connected": pl.Boolean}


def socket_entries(data):
    """Per event: the fd table entry sysdig's fd fields read (the thread's last event fd, or
    the dirfd a failed openat shows), as columns vid (-1: no entry), type, name, sip, sport,
    dip, dport, role, l4 (get_l4proto's answer), start (the row the version began at), owner,
    fd, dev and connected; plus 'fields' (bool: the event has fd fields at all) and 'local'
    (bool: the client address is on a local interface). Computed once per EventData."""
    cached = data.__dict__.get("_net_entries")
    if cached is not None:
        return cached
    state = fds.fd_state(data.capture)
    n = len(data)
    has = table_column(data, "fds", "fd.num").is_not_null().to_numpy()
    rows = np.flatnonzero(has)
    shown = state.lastevent_fd[rows].copy()
    if state.info_fd:
        extra = np.fromiter(state.info_fd, dtype=np.int64, count=len(state.info_fd))
        keep = has[extra]
        at = np.searchsorted(rows, extra[keep])
        shown[at] = np.fromiter(state.info_fd.values(), dtype=np.int64,
                                count=len(state.info_fd))[keep]
    vid = state.lookup(rows, shown)
    versions = state.versions
    if len(versions):
        v = versions.with_columns(pl.Series("l4", fds.effective_l4(versions), dtype=pl.Int64))
        got = v.select(pl.col("type").cast(pl.Int64), "name", "sip",
                       pl.col("sport").cast(pl.Int64), "dip", pl.col("dport").cast(pl.Int64),
                       pl.col("role").cast(pl.Int64), "l4", "start", "owner", "fd",
                       pl.col("dev").cast(pl.Int64), "connected")[
                           np.maximum(vid, 0)]
        found = pl.Series(vid >= 0)
        got = got.select(pl.when(found).then(pl.col(c)).alias(c) for c in got.columns)
    else:
        got = pl.DataFrame({c: pl.Series([None] * len(rows), dtype=t)
                            for c, t in _ENTRY_SCHEMA.items() if c != "vid"})
    part = got.with_columns(pl.Series("vid", vid, dtype=pl.Int64),
                            pl.Series("row", rows, dtype=pl.Int64))
    frame = pl.DataFrame({"row": np.arange(n, dtype=np.int64)}) \
        .join(part, on="row", how="left").drop("row") \
        .with_columns(pl.col("vid").fill_null(-1), pl.Series("fields", has))
    frame = frame.with_columns(pl.Series("local", _client_is_local(data, frame, state)))
    data.__dict__["_net_entries"] = frame
    return frame


def _local_keys(data):
    """{section: (set of IPv4 interface addresses, set of first-8-bytes of IPv6 ones)}."""
    out = {}
    ifaces = data.capture.interfaces
    if ifaces is None or not ifaces.height:
        return out
    for section, text in zip(ifaces["section"].to_list(), ifaces["addr"].to_list()):
        try:
            address = ipaddress.ip_address(text)
        except (TypeError, ValueError):
            continue
        v4, v6 = out.setdefault(int(section), (set(), set()))
        if address.version == 4:
            v4.add(int(address))
        else:
            v6.add(address.packed[:8])
    return out


def _client_is_local(data, frame, state):
    """is_ipv4addr_in_local_machine / is_ipv6addr_in_local_machine of the client address of
    connected-socket entries (false elsewhere). Decided once per distinct (section, address).
    Not emulated: sysdig also checks the IP of the thread's container (from container events)
    and answers false for IPv6 in a container; the thread table here has no container ids."""
    client = frame["type"].is_in(list(fds.CLIENT_SOCKETS)).fill_null(False)
    keys = pl.DataFrame({"section": state.section, "sip": frame["sip"], "type": frame["type"]}) \
        .filter(client).unique()
    if not keys.height:
        return np.zeros(len(frame), dtype=bool)
    local = _local_keys(data)
    verdict = []
    for section, text, type_ in keys.iter_rows():
        v4, v6 = local.get(int(section), (set(), set()))
        if text is None:  # a socket with no address yet: 0.0.0.0 or ::
            text = "::" if type_ == fds.IPV6_SOCK else "0.0.0.0"
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            verdict.append(False)
            continue
        verdict.append(int(address) in v4 if address.version == 4 else address.packed[:8] in v6)
    keys = keys.with_columns(pl.Series("local", verdict, dtype=pl.Boolean))
    joined = pl.DataFrame({"section": state.section, "sip": frame["sip"],
                           "type": frame["type"]}) \
        .join(keys, on=["section", "sip", "type"], how="left", nulls_equal=True,
              maintain_order="left")
    return (joined["local"].fill_null(False) & client).to_numpy()


def _with_entries(data, expr, name, dtype=pl.String):
    """An expression over the entry columns, as a Series named `name`."""
    frame = socket_entries(data)
    return frame.select(expr.cast(dtype).alias(name)).to_series()


_SOCK = pl.col("type").is_in(list(fds.CLIENT_SOCKETS))
_SERV = pl.col("type").is_in(list(fds.SERVER_SOCKETS))
_ROLE = pl.col("role") != fds.ROLE_NONE
_ZERO_IP = pl.when(pl.col("type").is_in([fds.IPV6_SOCK, fds.IPV6_SERVSOCK])) \
    .then(pl.lit("::")).otherwise(pl.lit("0.0.0.0"))


def _ip(column):
    """An address column, a socket without one reading as all zeros (as sysdig's tuple)."""
    return pl.col(column).fill_null(_ZERO_IP)


def _port(column):
    return pl.col(column).fill_null(0)


# -- local / remote ----------------------------------------------------------------------------

def _local_remote(which, local_side_is_client):
    """fd.lip/fd.rip (which='ip') or fd.lport/fd.rport ('port'): the client side when the
    client address is local (for l*; the server side for r*), else the other."""
    client, server = (_ip("sip"), _ip("dip")) if which == "ip" else (_port("sport"),
                                                                     _port("dport"))
    first, second = (client, server) if local_side_is_client else (server, client)
    return pl.when(_SOCK & _ROLE & pl.col("local")).then(first) \
        .when(_SOCK & _ROLE).then(second)


for _name, _which, _is_local, _type, _kind, _desc in (
        ("fd.lip", "ip", True, "IPADDR", "ip", "local IP address"),
        ("fd.rip", "ip", False, "IPADDR", "ip", "remote IP address"),
        ("fd.lport", "port", True, "PORT", "port", "for TCP/UDP FDs, the local port"),
        ("fd.rport", "port", False, "PORT", "port", "for TCP/UDP FDs, the remote port")):
    field(_name, _type, _kind, _desc)(
        lambda data, arg, _w=_which, _l=_is_local, _n=_name: _with_entries(
            data, _local_remote(_w, _l), _n, pl.String if _w == "ip" else pl.Int64))

# the *proto fields: the port as text (as without -R); an entry with a role
# but no port to show (a listening socket, a unix socket) gives the empty string
_PROTO = {
    "fd.cproto": (pl.when(_SOCK & _ROLE).then(_port("sport").cast(pl.String))
                  .when(pl.col("vid") >= 0).then(pl.when(_ROLE).then(pl.lit(""))),
                  "for TCP/UDP FDs, the client protocol"),
    "fd.sproto": (pl.when(_SOCK & _ROLE).then(_port("dport").cast(pl.String))
                  .when(_SERV).then(pl.lit("")),
                  "for TCP/UDP FDs, the server protocol"),
    "fd.lproto": (_local_remote("port", True).cast(pl.String),
                  "for TCP/UDP FDs, the local protocol"),
    "fd.rproto": (_local_remote("port", False).cast(pl.String),
                  "for TCP/UDP FDs, the remote protocol"),
}
for _name, (_expr, _desc) in _PROTO.items():
    field(_name, "CHARBUF", "string", _desc)(
        lambda data, arg, _e=_expr, _n=_name: _with_entries(data, _e, _n))


# -- DNS names: never resolved when reading a file ---------------------------------------------

for _name, _side in (("fd.cip.name", "client"), ("fd.sip.name", "server"),
                     ("fd.lip.name", "local"), ("fd.rip.name", "remote")):
    field(_name, "CHARBUF", "string",
          f"domain name associated with the {_side} IP address (sysdig's DNS manager does not "
          "run on capture files: never set; not emulated: in sysdig's filters, = and != "
          "resolve the name given and compare its addresses with the socket's)")(
        lambda data, arg, _n=_name: pl.Series(_n, [None] * len(data), dtype=pl.String))


# -- filter-only fields ------------------------------------------------------------------------

def _either_end(what):
    """The values fd.ip/fd.net (what='ip') or fd.port/fd.proto ('port') match against: both
    ends of a connected-socket entry whatever its role (zeros before it has them), the one
    address of a listening socket; none for other entries (an empty list)."""
    def compute(data, arg):
        frame = socket_entries(data)
        if what == "ip":
            both = pl.concat_list(_ip("sip"), _ip("dip"))
            one = pl.concat_list(_ip("sip"))
        else:
            both = pl.concat_list(_port("sport").cast(pl.String), _port("dport").cast(pl.String))
            one = pl.concat_list(_port("sport").cast(pl.String))
        empty = pl.lit([], dtype=pl.List(pl.String))
        out = frame.select(pl.when(_SOCK).then(both).when(_SERV).then(one)
                           .otherwise(empty).alias("v")).to_series()
        if what == "port":
            out = out.cast(pl.List(pl.Int64))
        return out
    return compute


for _name, _what, _item, _type, _desc in (
        ("fd.ip", "ip", "ip", "IPADDR",
         "(filter only) matches the IP address of either end of the fd"),
        ("fd.net", "ip", "ip", "IPNET",
         "(filter only) matches the IP network of either end of the fd: fd.net=10.0.0.0/8"),
        ("fd.port", "port", "port", "PORT",
         ("(filter only) matches the port of either end of the fd (a number or a service "
          "name: fd.port=http)")),
        ("fd.proto", "port", "port", "PORT",
         "(filter only) the same test as fd.port (sysdig compares it as a port)")):
    _register(_name, _type, "any", _desc, _either_end(_what), item=_item, filter_only=True)


# fd.cnet/fd.snet/fd.lnet/fd.rnet read the same address as fd.cip/fd.sip/fd.lip/fd.rip
# (a network on the right-hand side tests membership)
_ONE_END = {
    "fd.cnet": (pl.when(_SOCK & _ROLE).then(_ip("sip")), "the client IP network"),
    "fd.snet": (pl.when(_SOCK & _ROLE).then(_ip("dip")).when(_SERV).then(_ip("sip")),
                "the server IP network"),
    "fd.lnet": (_local_remote("ip", True), "the local IP network"),
    "fd.rnet": (_local_remote("ip", False), "the remote IP network"),
}
for _name, (_expr, _desc) in _ONE_END.items():
    _register(_name, "IPNET", "ip", f"(filter only) matches {_desc} of the fd",
              lambda data, arg, _e=_expr, _n=_name: _with_entries(data, _e, _n),
              item="ip", filter_only=True)


# -- entry flags and device ---------------------------------------------------------------------

@field("fd.connected", "BOOL", "bool",
       "for TCP/UDP FDs, 'true' if the socket is connected (also while the connection is in "
       "progress; connected sockets found at capture start and accepted ones included)")
def _fd_connected(data, arg):
    return _with_entries(data, pl.when(pl.col("vid") >= 0).then(pl.col("connected")),
                         "fd.connected", pl.Boolean)


_FRESH_KINDS = (fds.K_OPEN_X, fds.K_SOCKET_X, fds.K_SOCKETPAIR_X, fds.K_PIPE_X, fds.K_SINGLE_X,
                fds.K_ACCEPT_X)


def _name_changed(data):
    """Per event: did parsing it change the name of the entry it shows (sysdig compares the
    name with the one before the event; an entry the event created had none)?"""
    frame = socket_entries(data)
    state = fds.fd_state(data.capture)
    versions = state.versions
    if not len(versions):
        return frame.select(pl.when(pl.col("vid") >= 0).then(False)).to_series()
    # the name each version replaced: its predecessor's for the same table slot when that
    # one ended where it began, else none
    chain = versions.with_row_index("vid").select(
        pl.col("vid").cast(pl.Int64), "owner", "fd", "start", "end", "name") \
        .sort("owner", "fd", "start")
    chain = chain.with_columns(
        pl.when(pl.col("end").shift(1).over("owner", "fd") == pl.col("start"))
        .then(pl.col("name").shift(1).over("owner", "fd")).alias("before"))
    before = chain.sort("vid")["before"]
    # entries a socket/open/accept/pipe... exit made are new objects: their old name is
    # empty (a dup copies the old name along with the name, so it never shows a change)
    vid = frame["vid"].to_numpy()
    rows = np.arange(len(frame))
    safe = np.maximum(vid, 0)
    here = (vid >= 0) & (versions["start"].to_numpy()[safe] == rows)
    kind = state.kinds[rows]
    fresh = here & np.isin(kind, _FRESH_KINDS)
    dup = here & np.isin(kind, (fds.K_DUP_X, fds.K_FCNTL_X))
    name = versions["name"].fill_null("").to_numpy()[safe]
    old = before.fill_null("").to_numpy()[safe]
    changed = np.where(fresh, name != "", here & ~dup & ~fresh & (name != old))
    return pl.Series("fd.name_changed", changed).set(pl.Series(vid < 0), None)


@field("fd.name_changed", "BOOL", "bool",
       "true when the event changed the name of the fd it uses (opened, bound, connected, "
       "accepted...). sysdig 0.29.3 computes it after its filter ran: in its filters the "
       "field is always false")
def _fd_name_changed(data, arg):
    return _name_changed(data)


def _dev_major(dev):
    return (dev & 0xFFF00) // 0x100


def _dev_minor(dev):
    return (dev & 0xFF) | ((dev // 0x1000) & 0xFFF00)


def _dev_field(name, description, transform, hex_text=False):
    def compute(data, arg):
        value = transform(pl.col("dev").fill_null(0))
        out = _with_entries(data, pl.when(pl.col("vid") >= 0).then(value), name, pl.Int64)
        if hex_text:  # PF_HEX: upper-case hex digits, no prefix (a few distinct values)
            distinct = out.drop_nulls().unique().to_list()
            out = out.replace_strict(distinct, [format(v, "X") for v in distinct], default=None,
                                     return_dtype=pl.String)
        return out
    field(name, "INT32", "string" if hex_text else "int", description)(compute)


_dev_field("fd.dev", "device number (major/minor) of the file, in hex. Only files carry one "
           "(from the open exit or the fd list); sysdig prints leftover memory for other fds",
           lambda d: d, hex_text=True)
_dev_field("fd.dev.major", "major device number of the file", _dev_major)
_dev_field("fd.dev.minor", "minor device number of the file", _dev_minor)


# -- container prefix --------------------------------------------------------------------------

def _container_ids(data):
    """Per event, the container id of the thread ('' on the host or without a thread)."""
    cached = data.__dict__.get("_net_container_ids")
    if cached is None:
        ids = FIELDS["container.id"].series(data, None).replace("host", "").fill_null("")
        cached = data.__dict__["_net_container_ids"] = ids.alias("container.id")
    return cached


def _with_container(data, name, base):
    text = table_column(data, "fds", base)
    out = pl.select(pl.concat_str([_container_ids(data), pl.lit(":"), text])).to_series()
    return out.set(pl.Series(fake_container_rows(data)), None).alias(name)


@field("fd.containername", "CHARBUF", "string",
       "the container id, ':' and the fd name (which container an fd belongs to)")
def _fd_containername(data, arg):
    return _with_container(data, "fd.containername", "fd.name")


@field("fd.containerdirectory", "CHARBUF", "string",
       "the container id, ':' and the fd's directory")
def _fd_containerdirectory(data, arg):
    return _with_container(data, "fd.containerdirectory", "fd.directory")


# -- fdlist: the fds of poll events --------------------------------------------------------------

_POLL_IDS = (80, 81, 254, 255)  # poll and ppoll, enter and exit (sysdig 0.29.3 ids)


def fdlist_columns(data):
    """One row per fd listed in the 'fds' parameter of poll/ppoll events: row (the event),
    fd, and the table entry the thread has for it then (type, name, sip, sport, dip, dport;
    vid -1 where it has none). Computed once per EventData."""
    cached = data.__dict__.get("_fdlist")
    if cached is not None:
        return cached
    cap = data.capture
    types = np.asarray(data.headers.type)
    rows = np.flatnonzero(np.isin(types, _POLL_IDS))
    index = np.full(len(types), -1, dtype=np.int64)
    index[rows] = cap.param_index("fds")[rows]
    offsets, lengths, present = cap.param_slices(index)
    ok = present[rows] & (lengths[rows] >= 2)
    rows = rows[ok]
    buf = np.frombuffer(cap.buffer, dtype=np.uint8)
    start = offsets[rows].astype(np.int64)
    nfds = buf[start].astype(np.int64) | (buf[start + 1].astype(np.int64) << 8)
    # each entry: the fd (int64) then its flags (int16); a short parameter keeps whole ones
    count = np.minimum(nfds, (lengths[rows].astype(np.int64) - 2) // 10)
    event = np.repeat(rows, count)
    first = np.repeat(start + 2, count)
    within = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count,
                                                                      count)
    at = first + 10 * within
    fdnum = buf[at[:, None] + np.arange(8)].copy().view("<i8").reshape(-1) if len(at) else \
        np.zeros(0, dtype=np.int64)
    state = fds.fd_state(cap)
    vid = state.lookup(event, fdnum)
    versions = state.versions
    if len(versions):
        got = versions.select(pl.col("type").cast(pl.Int64), "name", "sip",
                              pl.col("sport").cast(pl.Int64), "dip",
                              pl.col("dport").cast(pl.Int64))[np.maximum(vid, 0)]
        got = got.select(pl.when(pl.Series(vid >= 0)).then(pl.col(c)).alias(c)
                         for c in got.columns)
    else:
        got = pl.DataFrame({c: pl.Series([None] * len(vid), dtype=_ENTRY_SCHEMA[c])
                            for c in ("type", "name", "sip", "sport", "dip", "dport")})
    out = got.with_columns(pl.Series("row", event, dtype=pl.Int64),
                           pl.Series("fd", fdnum, dtype=pl.Int64),
                           pl.Series("vid", vid, dtype=pl.Int64))
    data.__dict__["_fdlist"] = out
    return out


def _v6_as_v4(text):
    """inet_ntop(AF_INET) over the first 4 bytes of an IPv6 address (what 0.29.3 prints for
    the server address of a listening IPv6 socket in fdlist.sips)."""
    try:
        return str(ipaddress.IPv4Address(ipaddress.IPv6Address(text).packed[:4]))
    except ValueError:
        return None


# per field: the text of one listed fd, null to leave it out (no comma either)
_FDLIST = {
    "fdlist.nums": (pl.col("fd").cast(pl.String),
                    "comma-separated list of the fd numbers in the 'fds' argument"),
    "fdlist.names": (pl.when(pl.col("name").fill_null("") != "").then(pl.col("name"))
                     .otherwise(pl.lit("<NA>")),
                     ("comma-separated list of the fd names in the 'fds' argument (<NA> for "
                      "an fd without one)")),
    "fdlist.cips": (pl.when(_SOCK).then(_ip("sip")),
                    "comma-separated list of the client IP addresses in the 'fds' argument"),
    "fdlist.sips": (pl.when(_SOCK).then(_ip("dip"))
                    .when(pl.col("type") == fds.IPV4_SERVSOCK).then(_ip("sip"))
                    .when(pl.col("type") == fds.IPV6_SERVSOCK).then(
                        _ip("sip").map_elements(_v6_as_v4, return_dtype=pl.String)),
                    "comma-separated list of the server IP addresses in the 'fds' argument"),
    "fdlist.cports": (pl.when(_SOCK).then(_port("sport").cast(pl.String)),
                      ("for TCP/UDP FDs, comma-separated list of the client ports in the "
                       "'fds' argument")),
    "fdlist.sports": (pl.when(_SOCK).then(_port("dport").cast(pl.String)),
                      "comma-separated list of the server ports in the 'fds' argument"),
}


def _fdlist_field(name, expr):
    def compute(data, arg):
        listed = fdlist_columns(data)
        out = pl.Series(name, [None] * len(data), dtype=pl.String)
        if not listed.height:
            return out
        joined = listed.select("row", expr.alias("text")).drop_nulls() \
            .group_by("row", maintain_order=True).agg(pl.col("text").str.join(","))
        # an event whose list is empty (or has only fds the field skips) has no value
        joined = joined.filter(pl.col("text") != "")
        return out.scatter(joined["row"].to_numpy(), joined["text"])
    return compute


for _name, (_expr, _desc) in _FDLIST.items():
    field(_name, "CHARBUF", "string", f"for poll events, {_desc}")(_fdlist_field(_name, _expr))
