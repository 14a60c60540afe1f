"""The vectorized reader against the construct schemas: differential tests.

The schemas (scap/schema) are the format's specification; scap.open() finds blocks with numpy and
decodes event headers and parameter positions for all events at once. On random files built
with schema.build_block and on every real capture, the reader must return exactly what
iter_blocks + parse_block give: the same sections, metadata blocks and event blocks, and per
event the same cpu, dump flags, ts, tid, len, type, nparams and parameter bytes (read back through
Capture.param_slices). Metadata tables hold one row per schema entry.
"""
import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaptool import scap
from conftest import corpus_captures, need_capture
from scaptool.scap import blocktypes as bt
from scaptool.scap import eventtable
from scaptool.scap.errors import NotAScapError
from scaptool.scap.schema import build_block, iter_blocks, parse_block
from scaptool.scap.schema.events import HEADER_SIZE
from scaptool.scap.schema.proclist import ENTRY_FIELDS, TAIL_FIELDS

U64 = (1 << 64) - 1
GZIP_MAGIC = b"\x1f\x8b"


def signed64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


# -- the reference walk -----------------------------------------------------------------------

def schema_walk(data):
    """Sections and event blocks of a decompressed capture, as the schemas see them.

    Returns (sections, events): each section a dict(offset, version, metadata, skipped,
    first_event) with metadata [(offset, canonical block type, total length)] and skipped
    {block type: count} of the types libscap skips, as scap.scan.Section holds them;
    events [(offset, canonical block type)] in file order.
    """
    sections, events = [], []
    for offset, block_type, total, _ in iter_blocks(data):
        canon = bt.canonical(block_type)
        if block_type == bt.SHB:
            shb = parse_block(data, offset).body
            sections.append(dict(offset=offset, version=(shb.major_version, shb.minor_version),
                                 metadata=[], skipped={}, first_event=len(events)))
        elif canon in bt.EVENT_BLOCKS:
            events.append((offset, canon))
        elif canon in bt.METADATA_BLOCKS:
            sections[-1]["metadata"].append((offset, canon, total))
        else:   # a type libscap skips: counted, not listed
            skipped = sections[-1]["skipped"]
            skipped[canon] = skipped.get(canon, 0) + 1
    return sections, events


def check_layout(cap, sections, events):
    got = [dict(offset=s.offset, version=tuple(s.version), metadata=list(s.metadata),
                skipped=dict(s.skipped), first_event=s.first_event) for s in cap.sections]
    assert got == sections
    assert cap.damage is None
    h = cap.headers
    assert len(h) == len(events)
    assert h.block_offset.tolist() == [offset for offset, _ in events]
    assert h.block_type.tolist() == [canon for _, canon in events]


def check_events(data, cap, events, rows):
    """Events number `rows`: header fields and parameter bytes equal the schema's parse."""
    h = cap.headers
    buf = cap.buffer
    rows = list(rows)
    top = int(h.nparams[rows].max()) + 1 if rows else 0
    slices = [cap.param_slices(k) for k in range(top)]
    for i in rows:
        offset, canon = events[i]
        version, has_flags = bt.EVENT_BLOCKS[canon]
        ev = parse_block(data, offset).body
        where = f"event {i} ({bt.name(canon)} at offset {offset}, type {ev.type})"
        got = dict(cpu=int(h.cpu[i]), flags=int(h.dump_flags[i]), ts=int(h.ts[i]),
                   tid=int(h.tid[i]) & U64, len=int(h.length[i]), type=int(h.type[i]),
                   nparams=int(h.nparams[i]), record=int(h.record[i]),
                   lens_start=int(h.lens_start[i]))
        record = offset + 10 + 4 * has_flags
        want = dict(cpu=ev.cpuid, flags=ev.flags if has_flags else 0, ts=ev.ts, tid=ev.tid,
                    len=ev.len, type=ev.type, nparams=ev.nparams, record=record,
                    lens_start=record + HEADER_SIZE[version])
        assert got == want, where
        n = ev.nparams
        if n:
            width = (ev.len - HEADER_SIZE[version] - sum(ev.lens) - len(ev.extra)) // n
            assert int(h.lens_width[i]) == width, where
        lens = [int(slices[k][1][i]) for k in range(n)]
        assert lens == list(ev.lens), where
        params = [bytes(buf[slices[k][0][i]:slices[k][0][i] + slices[k][1][i]])
                  if slices[k][2][i] else None for k in range(n)]
        assert params == list(ev.params), where
        assert not any(slices[k][2][i] for k in range(n, top)), where


def check_metadata(data, cap, sections):
    """Tables hold one row per schema entry (keys compared too); machine is the first MI."""
    machine = None
    want = dict(processes=[], fds=[], users=[], groups=[], interfaces=[])
    for index, section in enumerate(sections):
        for offset, canon, _ in section["metadata"]:
            body = parse_block(data, offset).body
            if canon == bt.MI:
                machine = machine or body
            elif canon in bt.PROCESS_LISTS:
                want["processes"] += [(index, signed64(e.tid)) for e in body.entries]
            elif canon in bt.FD_LISTS:
                want["fds"] += [(index, signed64(body.tid), e.fd) for e in body.entries]
            elif canon in bt.USER_LISTS:
                want["users"] += [(index, e.uid) for e in body.entries if e.kind == 0]
                want["groups"] += [(index, e.gid) for e in body.entries if e.kind != 0]
            elif canon in bt.INTERFACE_LISTS:
                want["interfaces"] += [(index, e.type) for e in body.entries]
    keys = dict(processes=["section", "tid"], fds=["section", "tid", "fd"],
                users=["section", "uid"], groups=["section", "gid"],
                interfaces=["section", "type"])
    for table, columns in keys.items():
        frame = getattr(cap, table)
        assert frame.height == len(want[table]), table
        assert frame.select(columns).rows() == want[table], table
    if machine is None:
        assert cap.machine == {}
    else:
        assert cap.machine == dict(
            num_cpus=machine.num_cpus, memory_size_bytes=machine.memory_size_bytes,
            max_pid=machine.max_pid, hostname=machine.hostname.decode("utf-8", "replace"),
            boot_ts_epoch=machine.boot_ts_epoch, flags=machine.flags)


def check_capture(path, data, rows=None):
    """The whole comparison; rows = which events to parse (None: all)."""
    cap = scap.open(path)
    assert bytes(cap.buffer) == data
    sections, events = schema_walk(data)
    check_layout(cap, sections, events)
    check_events(data, cap, events, range(len(events)) if rows is None else rows)
    check_metadata(data, cap, sections)
    return cap


# -- random files -----------------------------------------------------------------------------

u8 = st.integers(0, 2**8 - 1)
u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, U64)
i64 = st.integers(-2**63, 2**63 - 1)
raw = st.binary(max_size=24)
BY_FORMAT = {"Q": u64, "q": i64, "L": u32, "I": u32, "B": u8}

LIBS = eventtable.libs()
T0293 = eventtable.sysdig_0293()
LARGE_TYPES = [e.id for e in LIBS if e.large_payload]          # 322, 324, 402


def field_strategy(field):
    fmt = getattr(field, "fmtstr", None)
    return BY_FORMAT[fmt[-1]] if fmt else raw


@st.composite
def process_entry(draw, version):
    entry = {name: draw(field_strategy(field))
             for name, field, since in ENTRY_FIELDS if version >= since}
    if version >= 9:
        # a tail the reader can tell apart: <= 29 bytes in the old order, or the libs >= 0.10
        # order with at least its first 6 fields (33 bytes)
        names = [name for name, _, _ in TAIL_FIELDS]
        if draw(st.booleans()):
            names = [name for name, _, old in TAIL_FIELDS if old]
            names = names[:draw(st.integers(0, len(names)))]
        else:
            names = names[:draw(st.integers(6, len(names)))]
        fields = {name: field for name, field, _ in TAIL_FIELDS}
        entry.update({name: draw(field_strategy(fields[name])) for name in names})
        if len(names) == len(TAIL_FIELDS):
            entry["rest"] = draw(st.binary(max_size=9))
    return entry


def addr(size):
    return st.binary(min_size=size, max_size=size)


@st.composite
def fd_entry(draw, version):
    fdtype = draw(st.integers(1, 21 if version == 1 else 30))
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
        if version == 2:
            entry["dev"] = draw(st.none() | u32)
    elif fdtype > 21:
        entry["raw"] = draw(raw)     # unknown type: V2 entries can be skipped by their length
    else:
        entry["name"] = draw(raw)
    return entry


@st.composite
def interface_entry(draw):
    iftype = draw(st.integers(1, 4))
    size = 16 if iftype in (2, 4) else 4
    return dict(type=iftype, addr=draw(addr(size)), netmask=draw(addr(size)),
                bcast=draw(addr(size)), name=draw(raw),
                linkspeed=draw(u64) if iftype in (1, 2) else None)


user = st.fixed_dictionaries(dict(kind=st.just(0), uid=u32, gid=u32, name=raw, homedir=raw,
                                  shell=raw))
group = st.fixed_dictionaries(dict(kind=st.integers(1, 255), gid=u32, name=raw))

machine = st.fixed_dictionaries(dict(
    num_cpus=u32, memory_size_bytes=u64, max_pid=u64,
    hostname=st.binary(max_size=128).map(lambda b: b.replace(b"\0", b"")),
    boot_ts_epoch=u64, flags=u64, reserved3=u64, reserved4=u64,
    rest=st.just(b"") | st.binary(max_size=12).map(lambda b: b * 4)))   # the 2023 longer struct

@st.composite
def metadata_block(draw):
    """(block type, body value) of any metadata kind and version, _INT ids too. (Unknown block
    types are left out: see test_unknown_header_block_is_skipped.)"""
    kind = draw(st.sampled_from(["MI", "PL", "FDL", "IL", "UL"]))
    if kind == "MI":
        return draw(st.sampled_from([bt.MI, bt.MI_INT])), draw(machine)
    if kind == "PL":
        block = draw(st.sampled_from(sorted(bt.PROCESS_LISTS) + [bt.PL_V1_INT, bt.PL_V2_INT,
                                                                 bt.PL_V3_INT]))
        version = bt.PROCESS_LISTS[bt.canonical(block)]
        return block, dict(entries=draw(st.lists(process_entry(version), max_size=3)))
    if kind == "FDL":
        block = draw(st.sampled_from([bt.FDL_V1, bt.FDL_V1_INT, bt.FDL_V2]))
        version = bt.FD_LISTS[bt.canonical(block)]
        return block, dict(tid=draw(u64), entries=draw(st.lists(fd_entry(version), max_size=4)))
    if kind == "IL":
        block = draw(st.sampled_from([bt.IL_V1, bt.IL_V1_INT, bt.IL_V2]))
        return block, dict(entries=draw(st.lists(interface_entry(), max_size=3)))
    block = draw(st.sampled_from([bt.UL_V1, bt.UL_V1_INT, bt.UL_V2]))
    return block, dict(entries=draw(st.lists(user | group, max_size=4)))


@st.composite
def fake_block(draw):
    """Bytes that look like a whole event block (type, length, matching trailer), at any of the
    four alignments: the reader's candidate search must not take them for real blocks."""
    total = 4 * draw(st.integers(3, 10))
    return (draw(st.binary(max_size=3))
            + struct.pack("<II", draw(st.sampled_from(sorted(bt.EVENT_BLOCKS))), total)
            + draw(addr(total - 12)) + struct.pack("<I", total))


def param_value(large):
    small = st.binary(max_size=40) | fake_block()
    if not large:
        return small
    # now and then one longer than a u16 length can say
    return small | st.tuples(u8, st.integers(65536, 70000)).map(lambda t: bytes([t[0]]) * t[1])


# V1 nparams is inferred from the 0.29.3 table (libs for ids it lacks) by counting down until the
# lengths add up; with as many params as the table or fewer the first exact fit is the true
# count (any larger count reads more lengths and overshoots). Large-payload types are left out:
# see test_v1_large_payload_type_lengths_are_u16.
V1_TYPES = [e.id for e in LIBS if not e.large_payload]
V1_KINDS = [bt.EV, bt.EV_INT, bt.EVF]
V2_KINDS = [bt.EV_V2, bt.EVF_V2, bt.EV_V2_LARGE, bt.EVF_V2_LARGE]


def v1_table_nparams(event_type):
    table = T0293 if event_type in T0293 else LIBS
    return table[event_type].nparams


@st.composite
def event_block(draw):
    block = draw(st.sampled_from(V1_KINDS + V2_KINDS))
    version, has_flags = bt.EVENT_BLOCKS[bt.canonical(block)]
    if version == 1:
        event_type = draw(st.sampled_from(V1_TYPES))
        count = draw(st.integers(0, v1_table_nparams(event_type)))
    else:
        # the block kind and the type need not agree: the type's flag picks the length width
        event_type = draw(st.sampled_from(range(len(LIBS))) | st.sampled_from(LARGE_TYPES)
                          | st.integers(len(LIBS), 2**16 - 1))
        count = draw(st.integers(0, 12))
    large = version == 2 and event_type in LARGE_TYPES
    value = dict(cpuid=draw(u16), ts=draw(u64), tid=draw(st.just(U64) | u64), type=event_type,
                 params=draw(st.lists(param_value(large), min_size=count, max_size=count)))
    if has_flags:
        value["flags"] = draw(st.sampled_from([0, 1, 2]) | u32)
    if version == 2 and draw(st.integers(0, 9)) == 0:
        value["extra"] = draw(st.binary(min_size=1, max_size=5))   # len beyond the params
    # pcapng options (after the padding) come in 4-byte units
    value["options"] = draw(st.binary(max_size=3).map(lambda b: b * 4))
    return block, value


@st.composite
def section(draw):
    options = draw(st.just(b"") | st.binary(min_size=1, max_size=3).map(lambda b: b * 4))
    shb = dict(byte_order_magic=0x1A2B3C4D, major_version=1,
               minor_version=draw(st.sampled_from([0, 1, 2])), section_length=U64,
               options=options)
    blocks = [(bt.SHB, shb)]
    blocks += draw(st.lists(metadata_block(), max_size=4))
    blocks += draw(st.lists(event_block(), max_size=12))
    return b"".join(build_block(block, value) for block, value in blocks)


def gzipped(parts, mode):
    if mode == "plain":
        return b"".join(parts)
    if mode == "gzip":
        return gzip.compress(b"".join(parts), mtime=0)
    return b"".join(gzip.compress(part, mtime=0) for part in parts)   # a member per section


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(section(), min_size=1, max_size=3),
       st.sampled_from(["plain", "gzip", "members"]))
def test_random_files(sections, mode):
    data = b"".join(sections)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.scap"
        path.write_bytes(gzipped(sections, mode))
        if len(sections) == 1 and len(list(iter_blocks(data))) == 1:
            # a lone section header: nothing to read
            with pytest.raises(NotAScapError):
                scap.open(path)
            return
        cap = check_capture(path, data)
        assert cap.compressed == (mode != "plain")


# -- differences found by these tests, fixed in the reader: kept as regression tests ----------

def _one_event_file(tmp_path, block, value):
    shb = dict(byte_order_magic=0x1A2B3C4D, major_version=1, minor_version=0, section_length=U64)
    data = build_block(bt.SHB, shb) + build_block(block, value)
    path = tmp_path / "one.scap"
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize("event_type", LARGE_TYPES)
def test_v1_large_payload_type_lengths_are_u16(tmp_path, event_type):
    path, data = _one_event_file(tmp_path, bt.EV, dict(cpuid=0, ts=1, tid=2, type=event_type,
                                                      params=[b"{}\0"]))
    check_capture(path, data)


def test_v1_unknown_type_nparams(tmp_path):
    path, data = _one_event_file(tmp_path, bt.EV, dict(cpuid=0, ts=1, tid=2, type=1000,
                                                      params=[b"ab", b"c"]))
    check_capture(path, data)


def test_unknown_header_block_is_skipped(tmp_path):
    """libscap skips block types it does not know in the header phase; so must the tables."""
    shb = dict(byte_order_magic=0x1A2B3C4D, major_version=1, minor_version=2, section_length=U64)
    data = build_block(bt.SHB, shb) + build_block(0x300, b"") + build_block(
        bt.EV_V2, dict(cpuid=0, ts=1, tid=2, type=6, params=[b"\x10" + bytes(7), bytes(4)]))
    path = tmp_path / "unknown.scap"
    path.write_bytes(data)
    check_capture(path, data)


# -- the real captures ------------------------------------------------------------------------

# Comparing all ~190k corpus events (construct parse plus the per-event comparison) takes ~30 s
# here, half the time budget of the property tests; so every event of captures under FULL_BELOW
# events is compared, and an evenly spaced, deterministic SAMPLE of the larger ones (first and
# last event included): ~68k events in ~8 s. Layout (every block's offset and type, every
# section) and metadata are compared in full for every capture. (A full run, with FULL_BELOW
# raised past every capture, passed too.)
FULL_BELOW = 5000
SAMPLE = 3000


def sample_rows(n):
    if n < FULL_BELOW:
        return range(n)
    return sorted(set(np.linspace(0, n - 1, SAMPLE).round().astype(int).tolist()))


@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_captures())
def test_corpus_capture(path):
    path = need_capture(path)
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    n = sum(1 for _, block, _, _ in iter_blocks(data) if bt.canonical(block) in bt.EVENT_BLOCKS)
    check_capture(path, data, sample_rows(n))
