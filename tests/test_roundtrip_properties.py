"""Write -> read -> write -> read: random events and metadata survive the writer and the reader.

Random event streams (any libs event id, the large-payload ones included, any number of params
up to the table's, tid -1, dump flags with and without state-only) and random metadata blocks
(machine info, PL_V9 threads, FDL_V2 fd tables of every fd type, IL_V2, UL_V2 users and groups,
all built with the schemas) are written with Writer, plain and gzip. Then:
- the file holds exactly the blocks the schemas build for the same values (writer = schema);
- scap.open gives back every header column and every parameter's bytes, and metadata tables
  holding the written values;
- scap.write_capture of it gives the same bytes again (the input is already current-format), and
  reading that gives the same events and tables;
- for older inputs (V1 events, PL_V1..V8, FDL/IL/UL V1, built with the schemas) write_capture
  keeps every event and table value, and rewriting its output changes nothing more;
- concatenated captures (two Writers' files, plain or as two gzip members) read as two sections
  with events in order.
"""
import gzip
import ipaddress
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaptool import scap
from scaptool.scap import blocktypes as bt
from scaptool.scap import eventtable
from scaptool.scap.schema import BLOCK_BODY, build_block, iter_blocks
from scaptool.scap.schema.events import HEADER_SIZE, V1_LEN_QUIRK, V1_LEN_QUIRK_TYPES
from scaptool.scap.schema.fdlist import FdType
from scaptool.scap.schema.proclist import ENTRY_FIELDS, TAIL_FIELDS
from scaptool.scap.writer import Event, Writer

U64 = (1 << 64) - 1
NO_LOGINUID = 0xFFFFFFFF
LIBS = eventtable.libs()
T0293 = eventtable.sysdig_0293()
LARGE_TYPES = [e.id for e in LIBS if e.large_payload]          # 322, 324, 402
SHB_VALUE = dict(byte_order_magic=0x1A2B3C4D, major_version=1, minor_version=2,
                 section_length=U64, options=b"")
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 2**8 - 1)
u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, U64)
i64 = st.integers(-2**63, 2**63 - 1)
# u64 ids that are often (u64)-1, which tables show as -1
u64_id = st.just(U64) | u64


def signed64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


# Strings the tables decode losslessly: UTF-8 without NULs.
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
               max_size=12)


@st.composite
def nul_list(draw):
    """(bytes, the list a table shows): args/env/cgroups are NUL-separated, final NUL optional."""
    items = draw(st.lists(text, max_size=4))
    trailing = draw(st.booleans()) if items and items[-1] else True
    data = "\0".join(items).encode() + (b"\0" if items and trailing else b"")
    return data, items


# -- metadata: (schema value, row the table should hold) ---------------------------------------

@st.composite
def machine(draw):
    value = dict(num_cpus=draw(u32), memory_size_bytes=draw(u64), max_pid=draw(u64),
                 hostname=draw(text.filter(lambda s: len(s.encode()) <= 128)).encode(),
                 boot_ts_epoch=draw(u64), flags=draw(u64), reserved3=draw(u64),
                 reserved4=draw(u64), rest=b"")
    row = {k: value[k] for k in ("num_cpus", "memory_size_bytes", "max_pid", "boot_ts_epoch",
                                 "flags")}
    row["hostname"] = value["hostname"].decode()
    return value, row


TAIL_NAMES = [name for name, _, _ in TAIL_FIELDS]
OLD_TAIL = [name for name, _, old in TAIL_FIELDS if old]
TAIL_VALUES = dict(pidns_init_start_ts=u64, tty=u32, loginuid=u32, exe_writable=u8,
                   cap_inheritable=u64, cap_permitted=u64, cap_effective=u64,
                   exe_upper_layer=u8, exe_ino=u64, exe_ino_ctime=u64, exe_ino_mtime=u64,
                   exe_from_memfd=u8, exe_lower_layer=u8, pgid=i64)
# libscap's values for tail fields an entry does not have
TAIL_DEFAULTS = dict(loginuid=NO_LOGINUID, pgid=-1)


@st.composite
def thread(draw):
    """A PL_V9 entry: no tail, the pre-0.10 tail (<= 29 bytes) or the 0.10+ one (>= 33)."""
    ids = {k: draw(u64_id) for k in ("tid", "pid", "ptid", "sid", "vpgid")}
    strings = {k: draw(text) for k in ("comm", "exe", "exepath", "cwd", "root")}
    lists = {k: draw(nul_list()) for k in ("args", "env", "cgroups")}
    numbers = dict(fdlimit=draw(i64), flags=draw(u32), uid=draw(u32), gid=draw(u32),
                   vmsize_kb=draw(u32), vmrss_kb=draw(u32), vmswap_kb=draw(u32),
                   pfmajor=draw(u64), pfminor=draw(u64), vtid=draw(i64), vpid=draw(i64))
    layout = draw(st.sampled_from(["none", "old", "new"]))
    names = [] if layout == "none" else \
        OLD_TAIL[:draw(st.integers(1, len(OLD_TAIL)))] if layout == "old" else \
        TAIL_NAMES[:draw(st.integers(6, len(TAIL_NAMES)))]
    tail = {name: draw(TAIL_VALUES[name]) for name in names}
    value = dict(ids, **{k: v.encode() for k, v in strings.items()},
                 **{k: v[0] for k, v in lists.items()}, **numbers, **tail)
    got = lambda name: tail.get(name, TAIL_DEFAULTS.get(name, 0))  # noqa: E731
    row = dict({k: signed64(v) for k, v in ids.items()}, **strings,
               **{k: v[1] for k, v in lists.items()}, **numbers)
    row.update({name: got(name) for name in (
        "pgid", "loginuid", "tty", "pidns_init_start_ts", "cap_inheritable", "cap_permitted",
        "cap_effective", "exe_ino")})
    row.update({name: bool(got(name)) for name in (
        "exe_writable", "exe_upper_layer", "exe_lower_layer", "exe_from_memfd")})
    return value, row


def addr(size):
    return st.binary(min_size=size, max_size=size)


def ip(raw):
    return str(ipaddress.ip_address(raw))


FD_ROW = dict(name=None, open_flags=None, dev=None, sip=None, sport=None, dip=None, dport=None,
              l4proto=None, source=None, destination=None)


@st.composite
def fd(draw):
    """An FDL_V2 entry of any fd type (unknown ones too: V2 entries can be skipped)."""
    fdtype = draw(st.sampled_from(list(FdType) + [22, 100, 255]))
    value = dict(fd=draw(i64), ino=draw(u64), type=int(fdtype))
    row = dict(FD_ROW, fd=value["fd"], ino=value["ino"], type=int(fdtype),
               type_name=FdType(fdtype).name if fdtype <= 21 else f"unknown-type:[{fdtype}]")
    if fdtype in (FdType.IPV4_SOCK, FdType.IPV6_SOCK):
        size = 4 if fdtype == FdType.IPV4_SOCK else 16
        value.update(sip=draw(addr(size)), dip=draw(addr(size)), sport=draw(u16),
                     dport=draw(u16), l4proto=draw(u8))
        row.update(sip=ip(value["sip"]), dip=ip(value["dip"]), sport=value["sport"],
                   dport=value["dport"], l4proto=value["l4proto"])
    elif fdtype in (FdType.IPV4_SERVSOCK, FdType.IPV6_SERVSOCK):
        value.update(ip=draw(addr(4 if fdtype == FdType.IPV4_SERVSOCK else 16)),
                     port=draw(u16), l4proto=draw(u8))
        row.update(sip=ip(value["ip"]), sport=value["port"], l4proto=value["l4proto"])
    elif fdtype > 21:
        value["raw"] = draw(st.binary(max_size=12))
    else:
        name = draw(text)
        value["name"] = name.encode()
        row["name"] = name
        if fdtype == FdType.UNIX_SOCK:
            value.update(source=draw(u64), destination=draw(u64))
            row.update(source=value["source"], destination=value["destination"])
        elif fdtype == FdType.FILE_V2:
            value.update(open_flags=draw(u32), dev=draw(st.none() | u32))
            row.update(open_flags=value["open_flags"], dev=value["dev"])
    return value, row


@st.composite
def interface(draw):
    """An IL_V2 entry (types 1 and 2, as current writers write)."""
    iftype = draw(st.sampled_from([1, 2]))
    size = 4 if iftype == 1 else 16
    name = draw(text)
    value = dict(type=iftype, addr=draw(addr(size)), netmask=draw(addr(size)),
                 bcast=draw(addr(size)), linkspeed=draw(u64), name=name.encode())
    row = dict(type=iftype, name=name, addr=ip(value["addr"]), netmask=ip(value["netmask"]),
               bcast=ip(value["bcast"]), linkspeed=value["linkspeed"])
    return value, row


@st.composite
def user_or_group(draw):
    """(UL_V2 entry, table name, row): kind 0 is a user, any other kind a group."""
    if draw(st.booleans()):
        strings = {k: draw(text) for k in ("name", "homedir", "shell")}
        value = dict(kind=0, uid=draw(u32), gid=draw(u32),
                     **{k: v.encode() for k, v in strings.items()})
        return value, "users", dict(uid=value["uid"], gid=value["gid"], **strings)
    name = draw(text)
    value = dict(kind=draw(st.sampled_from([1, 255]) | st.integers(1, 255)), gid=draw(u32),
                 name=name.encode())
    return value, "groups", dict(gid=value["gid"], name=name)


# -- events -------------------------------------------------------------------------------------

def param_value(large):
    small = st.binary(max_size=40)
    if not large:
        return small
    # now and then one longer than a u16 length can say
    return small | st.tuples(u8, st.integers(65536, 70000)).map(lambda t: bytes([t[0]]) * t[1])


@st.composite
def event(draw):
    event_type = draw(st.sampled_from(range(len(LIBS))) | st.sampled_from(LARGE_TYPES))
    info = LIBS[event_type]
    count = draw(st.integers(0, info.nparams))
    return Event(ts=draw(u64), tid=draw(st.just(-1) | i64), cpu=draw(u16), type=event_type,
                 params=draw(st.lists(param_value(info.large_payload), min_size=count,
                                      max_size=count)),
                 # 1 = state only; 4 (SCAP_DF_LARGE) is never stored: the writer drops it
                 flags=draw(st.sampled_from([0, 0, 1, 4, 5]) | u32))


# -- a capture: what to write and what to read back ---------------------------------------------

@dataclass
class Spec:
    blocks: list = field(default_factory=list)    # [(block type, schema value)]
    events: list = field(default_factory=list)    # [Event]
    rows: dict = field(default_factory=dict)      # table -> [row without `section`]
    machine: dict = None


@st.composite
def capture_spec(draw, max_events=25):
    spec = Spec(rows=dict(processes=[], fds=[], users=[], groups=[], interfaces=[]))
    # the blocks in the order libscap writes them, each kind optional
    if draw(st.booleans()):
        value, spec.machine = draw(machine())
        spec.blocks.append((bt.MI, value))
    if draw(st.booleans()):
        entries = draw(st.lists(interface(), max_size=3))
        spec.blocks.append((bt.IL_V2, dict(entries=[v for v, _ in entries])))
        spec.rows["interfaces"] += [r for _, r in entries]
    if draw(st.booleans()):
        entries = draw(st.lists(user_or_group(), max_size=4))
        spec.blocks.append((bt.UL_V2, dict(entries=[v for v, _, _ in entries])))
        for _, table, row in entries:
            spec.rows[table].append(row)
    for _ in range(draw(st.integers(0, 2))):   # an empty PL block then a full one happens
        entries = draw(st.lists(thread(), max_size=3))
        spec.blocks.append((bt.PL_V9, dict(entries=[v for v, _ in entries])))
        spec.rows["processes"] += [r for _, r in entries]
    for _ in range(draw(st.integers(0, 3))):
        tid = draw(u64_id)
        entries = draw(st.lists(fd(), max_size=4))
        spec.blocks.append((bt.FDL_V2, dict(tid=tid, entries=[v for v, _ in entries])))
        spec.rows["fds"] += [dict(r, tid=signed64(tid)) for _, r in entries]
    spec.events = draw(st.lists(event(), max_size=max_events))
    return spec


def write(path, spec, compress):
    with Writer(path, compress=compress) as out:
        out.write_section_header()
        for block_type, value in spec.blocks:
            out.write_block(block_type, BLOCK_BODY[block_type].build(value))
        out.write_event_list(spec.events)


def event_block(e):
    """(block type, schema value) of the block an Event must be written as."""
    flags = e.flags & ~4
    large = LIBS[e.type].large_payload
    block = (bt.EVF_V2_LARGE if flags else bt.EV_V2_LARGE) if large else \
        (bt.EVF_V2 if flags else bt.EV_V2)
    value = dict(cpuid=e.cpu, ts=e.ts, tid=e.tid & U64, type=e.type, params=list(e.params))
    if flags:
        value["flags"] = flags
    return block, value


@dataclass
class Expected:
    stream: bytes                 # the decompressed file
    columns: dict                 # header column -> list
    params: list                  # per event, its params
    tables: dict                  # table -> rows (with `section`)
    machine: dict


def expect(specs):
    """What a file of these sections must hold, built with the schemas."""
    stream = bytearray()
    columns = {k: [] for k in ("block_offset", "block_type", "record", "cpu", "dump_flags", "ts",
                               "tid", "length", "type", "nparams", "lens_start", "lens_width")}
    params, tables, machine_row = [], {}, None
    for index, spec in enumerate(specs):
        stream += build_block(bt.SHB, SHB_VALUE)
        for block_type, value in spec.blocks:
            stream += build_block(block_type, value)
        for e in spec.events:
            block_type, value = event_block(e)
            width = 4 if LIBS[e.type].large_payload else 2
            has_flags = block_type in (bt.EVF_V2, bt.EVF_V2_LARGE)
            record = len(stream) + 10 + 4 * has_flags
            row = dict(block_offset=len(stream), block_type=block_type, record=record,
                       cpu=e.cpu, dump_flags=e.flags & ~4, ts=e.ts, tid=e.tid, type=e.type,
                       length=HEADER_SIZE[2] + width * len(e.params) + sum(map(len, e.params)),
                       nparams=len(e.params), lens_start=record + HEADER_SIZE[2],
                       lens_width=width)
            for key, v in row.items():
                columns[key].append(v)
            params.append(list(e.params))
            stream += build_block(block_type, value)
        for table, rows in spec.rows.items():
            tables.setdefault(table, []).extend(dict(r, section=index) for r in rows)
        if machine_row is None and spec.machine is not None:
            machine_row = spec.machine
    return Expected(bytes(stream), columns, params, tables, machine_row or {})


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def event_params(cap):
    """Per event, the bytes of each of its params, through Capture.param_slices."""
    h = cap.headers
    top = int(h.nparams.max()) if len(h) else 0
    out = [[] for _ in range(len(h))]
    for k in range(top + 1):
        offsets, lengths, present = cap.param_slices(k)
        for i in range(len(h)):
            if k < h.nparams[i]:
                assert present[i], f"param {k} of event {i} missing"
                out[i].append(bytes(cap.buffer[offsets[i]:offsets[i] + lengths[i]]))
            else:
                assert not present[i], f"event {i} has no param {k}"
    return out


def tables(cap):
    return {name: getattr(cap, name).to_dicts()
            for name in ("processes", "fds", "users", "groups", "interfaces")}


def check_read(cap, want):
    assert cap.damage is None
    assert bytes(cap.buffer) == want.stream
    h = cap.headers
    assert len(h) == len(want.params)
    for column, values in want.columns.items():
        assert getattr(h, column).tolist() == values, column
    assert event_params(cap) == want.params
    frame = cap.events()
    for column, header in (("ts", "ts"), ("tid", "tid"), ("cpu", "cpu"), ("type", "type"),
                           ("dump_flags", "dump_flags"), ("nparams", "nparams"),
                           ("offset", "block_offset")):
        assert frame[column].to_list() == want.columns[header], column
    got = tables(cap)
    for table, rows in want.tables.items():
        assert got[table] == rows, table
    assert cap.machine == want.machine


def same_capture(a, b):
    """Two opened captures hold the same events (headers, params) and tables."""
    for column in ("cpu", "dump_flags", "ts", "tid", "length", "type", "nparams", "lens_width"):
        assert getattr(a.headers, column).tolist() == getattr(b.headers, column).tolist(), column
    assert event_params(a) == event_params(b)
    assert tables(a) == tables(b)
    assert a.machine == b.machine
    assert [s.first_event for s in a.sections] == [s.first_event for s in b.sections]


def decompressed(path):
    data = Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


# -- the properties -----------------------------------------------------------------------------

@settings(max_examples=300, **SETTINGS)
@given(capture_spec(), st.booleans())
def test_write_read_write_read(spec, compress):
    want = expect([spec])
    with tempfile.TemporaryDirectory() as tmp:
        first, second, third = (Path(tmp) / f"{n}.scap" for n in ("first", "second", "third"))
        write(first, spec, compress)
        data = decompressed(first)
        assert data == want.stream, \
            f"writer and schemas differ at byte {first_difference(data, want.stream)}"
        if not spec.blocks and not spec.events:
            return   # a lone section header is not a capture (NotAScapError, tested elsewhere)
        cap = scap.open(first)
        assert cap.compressed == compress
        check_read(cap, want)

        # the input is current-format: rewriting it changes no byte
        assert scap.write_capture(second, cap, compress=compress) == len(spec.events)
        assert second.read_bytes() == first.read_bytes()
        again = scap.open(second)
        check_read(again, want)
        same_capture(cap, again)
        scap.write_capture(third, again, compress=compress)
        assert third.read_bytes() == second.read_bytes()


@settings(max_examples=100, **SETTINGS)
@given(capture_spec(max_events=12), capture_spec(max_events=12), st.booleans())
def test_concatenated_sections(one, two, compress):
    """`cat a b`: two sections, events in order, numbering and tables per section."""
    want = expect([one, two])
    with tempfile.TemporaryDirectory() as tmp:
        a, b, both, rewritten = (Path(tmp) / f"{n}.scap" for n in ("a", "b", "both", "rewritten"))
        write(a, one, compress)
        write(b, two, compress)
        # gzip files concatenate as two members
        both.write_bytes(a.read_bytes() + b.read_bytes())
        cap = scap.open(both)
        assert len(cap.sections) == 2
        shb_second = len(decompressed(a))
        assert [s.offset for s in cap.sections] == [0, shb_second]
        assert [s.first_event for s in cap.sections] == [0, len(one.events)]
        assert [s.version for s in cap.sections] == [(1, 2), (1, 2)]
        check_read(cap, want)

        scap.write_capture(rewritten, cap, compress=compress)
        assert decompressed(rewritten) == want.stream
        again = scap.open(rewritten)
        same_capture(cap, again)
        assert [s.offset for s in again.sections] == [0, shb_second]


@settings(max_examples=60, **SETTINGS)
@given(capture_spec(max_events=15), st.data())
def test_write_capture_rows(spec, data):
    """rows (a bool mask or sorted indexes) picks the events written; metadata is kept whole."""
    keep = data.draw(st.lists(st.booleans(), min_size=len(spec.events),
                              max_size=len(spec.events)))
    as_indexes = data.draw(st.booleans())
    picked = Spec(spec.blocks, [e for e, k in zip(spec.events, keep) if k], spec.rows,
                  spec.machine)
    with tempfile.TemporaryDirectory() as tmp:
        full, part = Path(tmp) / "full.scap", Path(tmp) / "part.scap"
        write(full, spec, False)
        if not spec.blocks and not spec.events:
            return
        rows = np.flatnonzero(keep) if as_indexes else np.array(keep, dtype=bool)
        assert scap.write_capture(part, scap.open(full), rows=rows,
                                  keep_state=False) == sum(keep)
        if not spec.blocks and not picked.events:
            return
        check_read(scap.open(part), expect([picked]))


def test_short_machine_info_is_rewritten_full_size(tmp_path):
    shb = build_block(bt.SHB, SHB_VALUE)
    old = tmp_path / "old.scap"
    old.write_bytes(shb + build_block(bt.MI, dict(num_cpus=4)) + build_block(
        bt.EV_V2, dict(cpuid=0, ts=1, tid=2, type=6, params=[])))
    new = tmp_path / "new.scap"
    scap.write_capture(new, scap.open(old))
    blocks = {block_type: total for _, block_type, total, _ in iter_blocks(new.read_bytes())}
    assert blocks[bt.MI] == 192


# -- older inputs: the rewrite upgrades them without losing a value -----------------------------

raw = st.binary(max_size=16)
BY_FORMAT = {"Q": u64, "q": i64, "L": u32, "I": u32, "B": u8}


def field_value(field):
    fmt = getattr(field, "fmtstr", None)
    return BY_FORMAT[fmt[-1]] if fmt else raw


@st.composite
def old_thread(draw, version):
    return {name: draw(field_value(f)) for name, f, since in ENTRY_FIELDS if version >= since}


@st.composite
def old_fd(draw):
    """An FDL V1 entry: known types only (V1 cannot skip others), FILE_V2 without dev."""
    fdtype = draw(st.integers(1, 21))
    entry = dict(fd=draw(i64), ino=draw(u64), type=fdtype)
    if fdtype in (3, 4):
        size = 4 if fdtype == 3 else 16
        entry.update(sip=draw(addr(size)), dip=draw(addr(size)), sport=draw(u16),
                     dport=draw(u16), l4proto=draw(u8))
    elif fdtype in (5, 6):
        entry.update(ip=draw(addr(4 if fdtype == 5 else 16)), port=draw(u16), l4proto=draw(u8))
    elif fdtype == 8:
        entry.update(source=draw(u64), destination=draw(u64), name=draw(raw))
    elif fdtype == 16:
        entry.update(open_flags=draw(u32), name=draw(raw))
    else:
        entry["name"] = draw(raw)
    return entry


@st.composite
def old_interface(draw):
    iftype = draw(st.integers(1, 4))   # 3/4: pre-2014 entries without a linkspeed
    size = 16 if iftype in (2, 4) else 4
    return dict(type=iftype, addr=draw(addr(size)), netmask=draw(addr(size)),
                bcast=draw(addr(size)), linkspeed=draw(u64) if iftype in (1, 2) else None,
                name=draw(raw))


old_user = st.fixed_dictionaries(dict(kind=st.just(0), uid=u32, gid=u32, name=raw, homedir=raw,
                                      shell=raw))
old_group = st.fixed_dictionaries(dict(kind=st.integers(1, 255), gid=u32, name=raw))

# V1 nparams is inferred from the 0.29.3 table; with no more params than it lists the inference
# is exact. Large-payload types are left out (V1 predates them; see test_decoder_vs_schema).
V1_TYPES = [e.id for e in LIBS if not e.large_payload]


@st.composite
def v1_event(draw):
    event_type = draw(st.sampled_from(V1_TYPES) | st.sampled_from(list(V1_LEN_QUIRK_TYPES)))
    table = T0293 if event_type in T0293 else LIBS
    count = draw(st.integers(0, table[event_type].nparams))
    value = dict(cpuid=draw(u16), ts=draw(u64), tid=draw(u64_id), type=event_type,
                 params=draw(st.lists(st.binary(max_size=30), min_size=count, max_size=count)))
    block = draw(st.sampled_from([bt.EV, bt.EV_INT, bt.EVF]))
    if block == bt.EVF:
        value["flags"] = draw(st.sampled_from([0, 1, 4, 5]) | u32)
    return block, value


@st.composite
def old_capture(draw):
    blocks = [(bt.SHB, dict(SHB_VALUE, minor_version=draw(st.sampled_from([0, 1]))))]
    if draw(st.booleans()):
        blocks.append((draw(st.sampled_from([bt.MI, bt.MI_INT])), dict(
            num_cpus=draw(u32), memory_size_bytes=draw(u64), max_pid=draw(u64),
            hostname=draw(raw).replace(b"\0", b""), boot_ts_epoch=draw(u64), flags=draw(u64),
            reserved3=draw(u64), reserved4=draw(u64),
            rest=draw(st.just(b"") | addr(12)))))   # the 2023 dev struct was longer
    if draw(st.booleans()):
        blocks.append((draw(st.sampled_from([bt.IL_V1, bt.IL_V1_INT])),
                       dict(entries=draw(st.lists(old_interface(), max_size=3)))))
    if draw(st.booleans()):
        blocks.append((draw(st.sampled_from([bt.UL_V1, bt.UL_V1_INT])),
                       dict(entries=draw(st.lists(old_user | old_group, max_size=3)))))
    if draw(st.booleans()):
        block = draw(st.sampled_from(sorted(set(bt.PROCESS_LISTS) - {bt.PL_V9})
                                     + [bt.PL_V1_INT, bt.PL_V2_INT, bt.PL_V3_INT]))
        version = bt.PROCESS_LISTS[bt.canonical(block)]
        blocks.append((block, dict(entries=draw(st.lists(old_thread(version), max_size=3)))))
    for _ in range(draw(st.integers(0, 2))):
        blocks.append((draw(st.sampled_from([bt.FDL_V1, bt.FDL_V1_INT])),
                       dict(tid=draw(u64_id), entries=draw(st.lists(old_fd(), max_size=3)))))
    blocks += draw(st.lists(v1_event(), min_size=1, max_size=15))
    return b"".join(build_block(block, value) for block, value in blocks)


def upgraded_interfaces(rows):
    """Entries without a linkspeed (types 3/4) are written at full size, linkspeed 0."""
    return [dict(r, type=r["type"] - 2, linkspeed=0) if r["type"] in (3, 4) else r for r in rows]


@settings(max_examples=200, **SETTINGS)
@given(old_capture(), st.booleans())
def test_old_format_upgrade_keeps_values(data, compress):
    with tempfile.TemporaryDirectory() as tmp:
        old, new, newer = (Path(tmp) / f"{n}.scap" for n in ("old", "new", "newer"))
        old.write_bytes(gzip.compress(data, mtime=0) if compress else data)
        cap = scap.open(old)
        assert cap.damage is None
        scap.write_capture(new, cap, compress=compress)
        up = scap.open(new)
        assert up.damage is None
        assert up.version == "1.2"
        # events: V2 blocks now, the same values; SCAP_DF_LARGE is never stored
        assert set(up.headers.block_type.tolist()) <= {bt.EV_V2, bt.EVF_V2}
        for column in ("cpu", "ts", "tid", "type", "nparams"):
            assert getattr(up.headers, column).tolist() == getattr(cap.headers, column).tolist()
        assert up.headers.dump_flags.tolist() == (cap.headers.dump_flags & ~np.uint32(4)).tolist()
        quirk = np.isin(cap.headers.type, V1_LEN_QUIRK_TYPES) * V1_LEN_QUIRK
        assert up.headers.length.tolist() == (
            cap.headers.length.astype(np.int64) - quirk + 4).tolist()   # + nparams, - quirk
        assert event_params(up) == event_params(cap)
        # tables: the same values
        before, after = tables(cap), tables(up)
        before["interfaces"] = upgraded_interfaces(before["interfaces"])
        assert after == before
        assert up.machine == cap.machine
        # and the upgrade is done once: rewriting the output changes nothing
        scap.write_capture(newer, up, compress=compress)
        assert newer.read_bytes() == new.read_bytes()
