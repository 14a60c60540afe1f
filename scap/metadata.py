"""Metadata blocks: read them into tables, and upgrade them to the current block versions.

Each section's machine info, interfaces, users and groups, threads and fd tables are parsed by
the construct schemas (they are few and small) and turned into Polars DataFrames with a
`section` column. For writing, each block is rebuilt in its current version (MI, IL_V2, UL_V2,
PL_V9, FDL_V2) in the order the input had them, with libscap's defaults for fields that older
versions lack, so that a reader sees the same values in the copy as in the original.
"""
import functools
import ipaddress
from dataclasses import dataclass
from types import SimpleNamespace

import polars as pl

from . import blocktypes as bt
from .errors import ScapError, placed
from .process_entries import FastPathError, parse_entries

# construct (and the schemas built with it) loads when a block needs it: a command whose
# process lists take the fast path and that reads no other table never pays for it.

U64_MINUS_1 = (1 << 64) - 1
NO_LOGINUID = 0xFFFFFFFF


@dataclass
class Metadata:
    machine: dict
    processes: pl.DataFrame
    fds: pl.DataFrame
    users: pl.DataFrame
    groups: pl.DataFrame
    interfaces: pl.DataFrame


def parsed_blocks(buf, section, wanted=None):
    """[(canonical block type, parsed body)] of a section's metadata blocks, in file order
    (only those whose type is in `wanted`, when given)."""
    out = []
    for offset, btype, total in section.metadata:
        if btype not in _UPGRADES:
            continue  # libscap skips block types it does not know in the header phase
        if wanted is not None and btype not in wanted:
            continue
        if btype in bt.PROCESS_LISTS:
            try:  # the fast path; on anything odd the schema parses it and names the damage
                entries = parse_entries(bytes(buf[offset + 8:offset + total - 4]),
                                        bt.PROCESS_LISTS[btype])
                out.append((btype, SimpleNamespace(entries=entries)))
                continue
            except FastPathError:
                pass
        from . import schema
        try:
            block = schema.parse_block(bytes(buf[offset:offset + total]))
        except ScapError as e:
            raise placed(e, base=offset) from None
        out.append((btype, block.body))
    return out


# Which block types each table comes from: a table is read only when asked for (a capture
# can hold hundreds of fd-list blocks that a process lookup does not need).
TABLE_BLOCKS = {
    "machine": {bt.MI},
    "processes": set(bt.PROCESS_LISTS),
    "fds": set(bt.FD_LISTS),
    "users": set(bt.USER_LISTS),
    "groups": set(bt.USER_LISTS),
    "interfaces": set(bt.INTERFACE_LISTS),
}


def read_table(buf, sections, name):
    """One metadata table ('machine' is a dict, the others DataFrames with a section column)."""
    rows = read_rows(buf, sections, name)
    return rows if name == "machine" else table_of(rows, name)


def table_of(rows, name):
    """The DataFrame of a table's rows (as read_rows gives them)."""
    return _frame(rows, _SCHEMAS[name])


def read_rows(buf, sections, name, first_index=0):
    """One metadata table as a list of dicts, the DataFrame's rows ('machine': one dict).
    first_index: the index in its capture of sections[0] (a stream reader has one section's
    blocks at a time), which the rows' `section` column holds."""
    machine, threads, fds, users, groups, ifaces = {}, [], [], [], [], []
    for index, section in enumerate(sections, start=first_index):
        for btype, body in parsed_blocks(buf, section, TABLE_BLOCKS[name]):
            if btype == bt.MI:
                if not machine:
                    machine = _machine_row(body)
            elif btype in bt.PROCESS_LISTS:
                version = bt.PROCESS_LISTS[btype]
                threads += [_thread_row(e, version, index) for e in body.entries]
            elif btype in bt.FD_LISTS:
                fds += [_fd_row(body.tid, e, index) for e in body.entries]
            elif btype in bt.USER_LISTS:
                for e in body.entries:
                    if e.kind == 0:
                        users.append({"section": index, "uid": e.uid, "gid": e.gid,
                                      "name": _text(e.name), "homedir": _text(e.homedir),
                                      "shell": _text(e.shell)})
                    else:
                        groups.append({"section": index, "gid": e.gid, "name": _text(e.name)})
            elif btype in bt.INTERFACE_LISTS:
                ifaces += [_interface_row(e, index) for e in body.entries]
    return {"machine": machine, "processes": threads, "fds": fds, "users": users,
            "groups": groups, "interfaces": ifaces}[name]


def read_sections(buf, sections, path=None):
    """Every metadata table at once."""
    return Metadata(*(read_table(buf, sections, name) for name in
                      ("machine", "processes", "fds", "users", "groups", "interfaces")))


def _frame(rows, columns):
    # column by column: twice as fast as Polars' own reading of a list of dicts
    return pl.DataFrame({name: [r[name] for r in rows] for name in columns}, schema=columns)


def _text(raw):
    return raw.decode("utf-8", "replace") if raw is not None else None


def _text_list(raw):
    """A NUL-separated list (args, env, cgroups), final NUL optional. (Decoded as a whole:
    a NUL is never part of a UTF-8 sequence, so the items come out as if decoded one by
    one, at a fraction of the cost for an environment of hundreds of variables.)"""
    if not raw:
        return []
    items = raw.decode("utf-8", "replace").split("\0")
    if items[-1] == "":
        items.pop()
    return items


def _signed64(value):
    return value - (1 << 64) if value is not None and value >= 1 << 63 else value


def _machine_row(body):
    return {"num_cpus": body.num_cpus, "memory_size_bytes": body.memory_size_bytes,
            "max_pid": body.max_pid, "hostname": _text(body.hostname),
            "boot_ts_epoch": body.boot_ts_epoch, "flags": body.flags}


THREAD_SCHEMA = {
    "section": pl.Int32, "tid": pl.Int64, "pid": pl.Int64, "ptid": pl.Int64, "sid": pl.Int64,
    "vpgid": pl.Int64, "pgid": pl.Int64, "comm": pl.String, "exe": pl.String,
    "exepath": pl.String, "args": pl.List(pl.String), "cwd": pl.String, "fdlimit": pl.Int64,
    "flags": pl.UInt32, "uid": pl.UInt32, "gid": pl.UInt32, "vmsize_kb": pl.UInt32,
    "vmrss_kb": pl.UInt32, "vmswap_kb": pl.UInt32, "pfmajor": pl.UInt64, "pfminor": pl.UInt64,
    "env": pl.List(pl.String), "vtid": pl.Int64, "vpid": pl.Int64,
    "cgroups": pl.List(pl.String), "root": pl.String, "loginuid": pl.UInt32,
    "exe_writable": pl.Boolean, "tty": pl.UInt32, "pidns_init_start_ts": pl.UInt64,
    "cap_inheritable": pl.UInt64, "cap_permitted": pl.UInt64, "cap_effective": pl.UInt64,
    "exe_ino": pl.UInt64, "exe_upper_layer": pl.Boolean, "exe_lower_layer": pl.Boolean,
    "exe_from_memfd": pl.Boolean,
}


def _thread_row(e, version, section):
    get = lambda name, default=0: e.get(name) if e.get(name) is not None else default  # noqa
    return {
        "section": section, "tid": _signed64(e["tid"]), "pid": _signed64(e["pid"]),
        "ptid": _signed64(e["ptid"]), "sid": _signed64(get("sid", U64_MINUS_1)),
        "vpgid": _signed64(get("vpgid", U64_MINUS_1)), "pgid": get("pgid", -1),
        "comm": _text(e["comm"]), "exe": _text(e["exe"]), "exepath": _text(get("exepath", b"")),
        "args": _text_list(e["args"]), "cwd": _text(e["cwd"]), "fdlimit": e["fdlimit"],
        "flags": e["flags"], "uid": e["uid"], "gid": e["gid"], "vmsize_kb": get("vmsize_kb"),
        "vmrss_kb": get("vmrss_kb"), "vmswap_kb": get("vmswap_kb"), "pfmajor": get("pfmajor"),
        "pfminor": get("pfminor"), "env": _text_list(get("env", b"")), "vtid": get("vtid", -1),
        "vpid": get("vpid", -1), "cgroups": _text_list(get("cgroups", b"")),
        "root": _text(get("root", b"")), "loginuid": get("loginuid", NO_LOGINUID),
        "exe_writable": bool(get("exe_writable")), "tty": get("tty"),
        "pidns_init_start_ts": get("pidns_init_start_ts"),
        "cap_inheritable": get("cap_inheritable"), "cap_permitted": get("cap_permitted"),
        "cap_effective": get("cap_effective"), "exe_ino": get("exe_ino"),
        "exe_upper_layer": bool(get("exe_upper_layer")),
        "exe_lower_layer": bool(get("exe_lower_layer")),
        "exe_from_memfd": bool(get("exe_from_memfd")),
    }


FD_SCHEMA = {
    "section": pl.Int32, "tid": pl.Int64, "fd": pl.Int64, "ino": pl.UInt64, "type": pl.UInt8,
    "type_name": pl.String, "name": pl.String, "open_flags": pl.UInt32, "dev": pl.UInt32,
    "sip": pl.String, "sport": pl.UInt16, "dip": pl.String, "dport": pl.UInt16,
    "l4proto": pl.UInt8, "source": pl.UInt64, "destination": pl.UInt64,
}


def _ip(raw):
    return str(ipaddress.ip_address(bytes(raw))) if raw is not None else None


@functools.cache
def _fd_type_name(value):
    from .schema.fdlist import FdType
    try:
        return FdType(value).name
    except ValueError:
        return f"unknown-type:[{value}]"


def _fd_row(tid, e, section):
    type_name = _fd_type_name(e.type)
    return {
        "section": section, "tid": _signed64(tid), "fd": e.fd, "ino": e.ino, "type": e.type,
        "type_name": type_name, "name": _text(e.get("name")), "open_flags": e.get("open_flags"),
        "dev": e.get("dev"), "sip": _ip(e.get("sip", e.get("ip"))),
        "sport": e.get("sport", e.get("port")), "dip": _ip(e.get("dip")),
        "dport": e.get("dport"), "l4proto": e.get("l4proto"), "source": e.get("source"),
        "destination": e.get("destination"),
    }


USER_SCHEMA = {"section": pl.Int32, "uid": pl.UInt32, "gid": pl.UInt32, "name": pl.String,
               "homedir": pl.String, "shell": pl.String}
GROUP_SCHEMA = {"section": pl.Int32, "gid": pl.UInt32, "name": pl.String}
INTERFACE_SCHEMA = {"section": pl.Int32, "type": pl.UInt16, "name": pl.String,
                    "addr": pl.String, "netmask": pl.String, "bcast": pl.String,
                    "linkspeed": pl.UInt64}


_SCHEMAS = {"processes": THREAD_SCHEMA, "fds": FD_SCHEMA, "users": USER_SCHEMA,
            "groups": GROUP_SCHEMA, "interfaces": INTERFACE_SCHEMA}


def _interface_row(e, section):
    return {"section": section, "type": e.type, "name": _text(e.name), "addr": _ip(e.addr),
            "netmask": _ip(e.netmask), "bcast": _ip(e.bcast), "linkspeed": e.linkspeed}


# -- upgrading blocks for the writer ---------------------------------------------------------

def current_blocks(capture, section_index):
    """Bytes of the section's metadata blocks, each rebuilt in its current block version."""
    buffer, section = capture.section_metadata(section_index)
    return [upgrade(btype, body) for btype, body in parsed_blocks(buffer, section)
            if btype in _UPGRADES]


def upgrade(btype, body):
    from . import schema
    block_type, convert = _UPGRADES[btype]
    return schema.build_block(block_type, convert(body))


def _machine(body):
    from construct import Container
    out = Container(body)
    for name in ("num_cpus", "memory_size_bytes", "max_pid", "boot_ts_epoch", "flags",
                 "reserved3", "reserved4"):
        if out.get(name) is None:
            out[name] = 0  # a short 2014-era body: libscap's defaults for what it lacked
    if out.get("hostname") is None:
        out.hostname = b""
    out.rest = b""  # libscap reads exactly 180 bytes: no other size is readable
    return out


def _process_list(version):
    def convert(body):
        from construct import Container
        entries = []
        for e in body.entries:
            entry = Container(e)
            for name, default in _PL_DEFAULTS.items():
                if entry.get(name) is None and name not in _TAIL:
                    entry[name] = default
            if version < 9:
                # no tail at all (as sysdig 0.23 wrote): readers apply the same defaults as
                # they did for the original's older block
                for name in _TAIL:
                    entry[name] = None
                entry.rest = b""
            entries.append(entry)
        return Container(entries=entries, padding=b"")
    return convert


_TAIL = ("pidns_init_start_ts", "tty", "loginuid", "exe_writable", "cap_inheritable",
         "cap_permitted", "cap_effective", "exe_upper_layer", "exe_ino", "exe_ino_ctime",
         "exe_ino_mtime", "exe_from_memfd", "exe_lower_layer", "pgid")
_PL_DEFAULTS = {"sid": U64_MINUS_1, "vpgid": U64_MINUS_1, "exepath": b"", "vmsize_kb": 0,
                "vmrss_kb": 0, "vmswap_kb": 0, "pfmajor": 0, "pfminor": 0, "env": b"",
                "vtid": -1, "vpid": -1, "cgroups": b"", "root": b""}


def _entries_v2(body, fix=None):
    from construct import Container
    entries = []
    for e in body.entries:
        entry = Container(e)
        entry.setdefault("rest", b"")
        if entry.get("rest") is None:
            entry.rest = b""
        if fix:
            fix(entry)
        entries.append(entry)
    out = Container(entries=entries, padding=b"")
    if "tid" in body:
        out = Container(tid=body.tid, entries=entries, padding=b"")
    return out


def _full_linkspeed(entry):
    # pre-2014 entries without a linkspeed are written at full size, as libscap's writer does
    if entry.type in (3, 4):
        entry.type -= 2
        entry.linkspeed = 0


_UPGRADES = {
    bt.MI: (bt.MI, _machine),
    **{b: (bt.PL_V9, _process_list(v)) for b, v in bt.PROCESS_LISTS.items()},
    bt.FDL_V1: (bt.FDL_V2, _entries_v2),
    bt.FDL_V2: (bt.FDL_V2, _entries_v2),
    bt.IL_V1: (bt.IL_V2, lambda body: _entries_v2(body, _full_linkspeed)),
    bt.IL_V2: (bt.IL_V2, _entries_v2),
    bt.UL_V1: (bt.UL_V2, _entries_v2),
    bt.UL_V2: (bt.UL_V2, _entries_v2),
}
