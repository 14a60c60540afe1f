"""Block schemas against hand-built bytes: one case per block kind, version and entry variant.

Each case gives the bytes (assembled with struct from the layout tables of scap-format.md, or
copied from its worked examples) and the value they must parse to; check() holds parse, build
and (where static) sizeof to them.
"""
import struct

import pytest
from construct import ConstructError, SizeofError

from scaptool.scap import blocktypes as bt
from scaptool.scap.errors import CorruptBlockError, TruncatedError
from scaptool.scap.schema import (
    BLOCK_BODY, BLOCK_FRAME, EVENT_BODY, EVENT_HEADER, FD_LIST, INTERFACE_LIST, MACHINE_INFO, PROCESS_LIST,
    SECTION_HEADER, USER_LIST, build_block, iter_blocks, parse_block,
)

# Event-table stubs: the schemas take these from the context instead of scap.eventtable.
NOT_LARGE = {"is_large": lambda t: False, "table_nparams": lambda t: 5}
LARGE_324 = {"is_large": lambda t: t == 324, "table_nparams": lambda t: 5}


def check(schema, data, value, **context):
    assert schema.parse(data, **context) == value
    assert schema.build(value, **context) == data
    try:
        size = schema.sizeof(**context)
    except SizeofError:
        return
    assert size == len(data)


def u8(v): return struct.pack("<B", v)
def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def i64(v): return struct.pack("<q", v)
def lstr(b): return u16(len(b)) + b


# -- section header ---------------------------------------------------------------------------

SHB_LIBS = bytes.fromhex("0a0d0d0a1c0000004d3c2b1a01000200ffffffffffffffff1c000000")


@pytest.mark.parametrize("minor", [0, 1, 2])
def test_section_header_versions(minor):
    body = u32(0x1A2B3C4D) + u16(1) + u16(minor) + u64(2**64 - 1)
    check(SECTION_HEADER, body, dict(byte_order_magic=0x1A2B3C4D, major_version=1,
                                     minor_version=minor, section_length=2**64 - 1, options=b""))


def test_section_header_worked_example_round_trips():
    block = parse_block(SHB_LIBS)
    assert (block.type, block.total_length, block.body.minor_version) == (bt.SHB, 28, 2)
    assert build_block(bt.SHB, block.body) == SHB_LIBS


def test_section_header_options_kept_raw():
    # opt_comment "hi" (code 1, padded to 4), then opt_endofopt
    options = u16(1) + u16(2) + b"hi\0\0" + u16(0) + u16(0)
    body = u32(0x1A2B3C4D) + u16(1) + u16(2) + u64(2**64 - 1) + options
    check(SECTION_HEADER, body, dict(byte_order_magic=0x1A2B3C4D, major_version=1,
                                     minor_version=2, section_length=2**64 - 1, options=options))


def test_section_header_wrong_magic_is_an_error():
    with pytest.raises(ConstructError):
        SECTION_HEADER.parse(u32(0x4D3C2B1A) + u16(1) + u16(2) + u64(0))


# -- machine info -----------------------------------------------------------------------------

MI_VALUE = dict(num_cpus=4, memory_size_bytes=8 << 30, max_pid=0, hostname=b"box",
                boot_ts_epoch=1_600_000_000_000_000_000, flags=1, reserved3=0, reserved4=0,
                rest=b"")
MI_BYTES = (u32(4) + u64(8 << 30) + u64(0) + b"box".ljust(128, b"\0")
            + u64(1_600_000_000_000_000_000) + u64(1) + u64(0) + u64(0))


def test_machine_info():
    assert len(MI_BYTES) == 180
    check(MACHINE_INFO, MI_BYTES, MI_VALUE)


def test_machine_info_longer_body_keeps_the_rest():
    check(MACHINE_INFO, MI_BYTES + b"uname-r-and-more", dict(MI_VALUE, rest=b"uname-r-and-more"))


def test_machine_info_shorter_body_reads_what_fits():
    check(MACHINE_INFO, MI_BYTES[:16], dict(
        MI_VALUE, max_pid=None, hostname=None, boot_ts_epoch=None, flags=None, reserved3=None,
        reserved4=None, rest=MI_BYTES[12:16]))


def test_machine_info_short_body_stops_at_the_first_missing_field():
    value = MACHINE_INFO.parse(MI_BYTES[:30])
    assert value.max_pid == 0 and value.hostname is None and value.boot_ts_epoch is None
    assert value.rest == MI_BYTES[20:30] and MACHINE_INFO.build(value) == MI_BYTES[:30]


def test_machine_info_hostname_with_stale_bytes_kept_whole():
    stale = b"box\0old-name".ljust(128, b"\0")
    data = MI_BYTES[:20] + stale + MI_BYTES[148:]
    check(MACHINE_INFO, data, dict(MI_VALUE, hostname=stale))


def test_machine_info_block_is_192_bytes():
    assert len(build_block(bt.MI, MI_VALUE)) == 192


# -- process lists ----------------------------------------------------------------------------

PROC = dict(
    tid=100, pid=100, ptid=1, sid=100, vpgid=100, comm=b"bash", exe=b"/bin/bash",
    exepath=b"/usr/bin/bash", args=b"-c\0true\0", cwd=b"/root", fdlimit=1024, flags=0x10,
    uid=0, gid=0, vmsize_kb=1000, vmrss_kb=500, vmswap_kb=0, pfmajor=3, pfminor=4000,
    env=b"HOME=/root\0", vtid=100, vpid=100, cgroups=b"cpu=/\0", root=b"/",
)
TAIL = dict(pidns_init_start_ts=123456789, tty=34816, loginuid=1000, exe_writable=1,
            cap_inheritable=0, cap_permitted=0x1FFFFFFFFF, cap_effective=0x1FFFFFFFFF,
            exe_upper_layer=0, exe_ino=1234, exe_ino_ctime=5, exe_ino_mtime=6, exe_from_memfd=0,
            exe_lower_layer=1, pgid=100)
TAIL_NONE = dict.fromkeys(TAIL)


def proc_bytes(version, e):
    """One PL entry by the table in scap-format.md 2.2 (V9 without entry_len and tail)."""
    out = u64(e["tid"]) + u64(e["pid"]) + u64(e["ptid"])
    if version >= 6:
        out += u64(e["sid"])
    if version >= 8:
        out += u64(e["vpgid"])
    out += lstr(e["comm"]) + lstr(e["exe"])
    if version >= 7:
        out += lstr(e["exepath"])
    out += lstr(e["args"]) + lstr(e["cwd"]) + i64(e["fdlimit"])
    out += u32(e["flags"]) + u32(e["uid"]) + u32(e["gid"])
    if version >= 2:
        out += u32(e["vmsize_kb"]) + u32(e["vmrss_kb"]) + u32(e["vmswap_kb"])
        out += u64(e["pfmajor"]) + u64(e["pfminor"])
    if version >= 3:
        out += lstr(e["env"])
    if version >= 4:
        out += i64(e["vtid"]) + i64(e["vpid"]) + lstr(e["cgroups"])
    if version >= 5:
        out += lstr(e["root"])
    return out


FIELDS_SINCE = dict(sid=6, vpgid=8, exepath=7, vmsize_kb=2, vmrss_kb=2, vmswap_kb=2, pfmajor=2,
                    pfminor=2, env=3, vtid=4, vpid=4, cgroups=4, root=5)


def proc_value(version):
    return {k: v for k, v in PROC.items() if FIELDS_SINCE.get(k, 1) <= version}


@pytest.mark.parametrize("version", range(1, 9))
def test_process_list_v1_to_v8(version):
    other = dict(PROC, tid=101, comm=b"sleep", args=b"")
    data = proc_bytes(version, PROC) + proc_bytes(version, other) + b"\0\0"
    value = dict(entries=[proc_value(version), {k: other[k] for k in proc_value(version)}],
                 padding=b"\0\0")
    check(PROCESS_LIST[version], data, value)


# V9 tails seen in the wild (scap-format.md 2.2), as bytes in the order they are written.
OLD_ORDER_TAILS = {
    0: {},
    4: dict(loginuid=1000),                                        # sysdig >= 0.24
    5: dict(loginuid=1000, exe_writable=1),                        # sysdig 0.29.3
    29: dict(loginuid=1000, exe_writable=1, cap_inheritable=0,     # libs 0.7-0.9
             cap_permitted=0x1FFFFFFFFF, cap_effective=0x1FFFFFFFFF),
}
NEW_ORDER_FIELDS = list(TAIL)
SIZES = dict(pidns_init_start_ts=8, tty=4, loginuid=4, exe_writable=1, cap_inheritable=8,
             cap_permitted=8, cap_effective=8, exe_upper_layer=1, exe_ino=8, exe_ino_ctime=8,
             exe_ino_mtime=8, exe_from_memfd=1, exe_lower_layer=1, pgid=8)


def tail_bytes(fields):
    packers = {1: u8, 4: u32, 8: u64}
    return b"".join(packers[SIZES[k]](v) for k, v in fields.items())


def v9_entry(tail_fields, extra=b""):
    inner = proc_bytes(9, PROC) + tail_bytes(tail_fields) + extra
    data = u32(4 + len(inner)) + inner
    value = dict(entry_len=len(data), **proc_value(9), **{**TAIL_NONE, **tail_fields}, rest=extra)
    return data, value


V9_CASES = {f"old-{n}": OLD_ORDER_TAILS[n] for n in OLD_ORDER_TAILS}
V9_CASES.update({
    "new-66": {k: TAIL[k] for k in NEW_ORDER_FIELDS[:11]},
    "new-67": {k: TAIL[k] for k in NEW_ORDER_FIELDS[:12]},
    "new-68": {k: TAIL[k] for k in NEW_ORDER_FIELDS[:13]},
    "new-76": TAIL,
})


@pytest.mark.parametrize("tail", V9_CASES.values(), ids=V9_CASES.keys())
def test_process_list_v9_tails(tail):
    data, value = v9_entry(tail)
    assert len(data) - 4 - len(proc_bytes(9, PROC)) == sum(SIZES[k] for k in tail)
    check(PROCESS_LIST[9], data, dict(entries=[value], padding=b""))


def test_process_list_v9_tail_sizes_are_the_ones_seen():
    sizes = sorted(sum(SIZES[k] for k in t) for t in V9_CASES.values())
    assert sizes == [0, 4, 5, 29, 66, 67, 68, 76]


def test_process_list_v9_unknown_trailing_bytes_kept():
    data, value = v9_entry(TAIL, extra=b"future")
    check(PROCESS_LIST[9], data + b"\0", dict(entries=[value], padding=b"\0"))


def test_process_list_v9_old_order_by_room_rule():
    """29 bytes left after root: the pre-0.10 order, even though 29 would hold pidns+tty+..."""
    tail = OLD_ORDER_TAILS[29]
    data, _ = v9_entry(tail)
    entry = PROCESS_LIST[9].parse(data).entries[0]
    assert entry.pidns_init_start_ts is None and entry.loginuid == 1000
    assert entry.cap_effective == 0x1FFFFFFFFF


def test_process_list_v9_empty_block():
    check(PROCESS_LIST[9], b"", dict(entries=[], padding=b""))
    assert build_block(bt.PL_V9, dict(entries=[])) == u32(bt.PL_V9) + u32(12) + u32(12)


def test_process_list_v9_entry_overrun_is_an_error():
    data, _ = v9_entry({})
    with pytest.raises(ConstructError):
        PROCESS_LIST[9].parse(u32(len(data) + 100) + data[4:])


# -- fd lists ---------------------------------------------------------------------------------

IP4A, IP4B = bytes([127, 0, 0, 1]), bytes([10, 0, 0, 2])
IP6A, IP6B = bytes(15) + b"\1", bytes.fromhex("fe80000000000000000000000000abcd")

NAMED_TYPES = [1, 2, 7, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 20, 21]

# fd type -> (payload bytes, payload fields)
FD_PAYLOADS = {
    **{t: (lstr(b"name-%d" % t), dict(name=b"name-%d" % t)) for t in NAMED_TYPES},
    3: (IP4A + IP4B + u16(47192) + u16(80) + u8(2),
        dict(sip=IP4A, dip=IP4B, sport=47192, dport=80, l4proto=2)),
    4: (IP6A + IP6B + u16(1) + u16(443) + u8(3),
        dict(sip=IP6A, dip=IP6B, sport=1, dport=443, l4proto=3)),
    5: (IP4A + u16(80) + u8(2), dict(ip=IP4A, port=80, l4proto=2)),
    6: (IP6A + u16(22) + u8(2), dict(ip=IP6A, port=22, l4proto=2)),
    8: (u64(0xFFFF8800DEADBEEF) + u64(0) + lstr(b"/run/sock"),
        dict(source=0xFFFF8800DEADBEEF, destination=0, name=b"/run/sock")),
    16: (u32(0o100002) + lstr(b"/etc/passwd") + u32(0x801),
         dict(open_flags=0o100002, name=b"/etc/passwd", dev=0x801)),
}


def fd_head(fd, fdtype):
    return i64(fd) + u64(1000 + fd) + u8(fdtype), dict(fd=fd, ino=1000 + fd, type=fdtype)


@pytest.mark.parametrize("fdtype", sorted(FD_PAYLOADS))
def test_fd_list_v2_every_type(fdtype):
    head, head_value = fd_head(5, fdtype)
    payload, fields = FD_PAYLOADS[fdtype]
    entry = head + payload
    data = u64(42) + u32(4 + len(entry)) + entry
    value = dict(tid=42, entries=[dict(entry_len=4 + len(entry), **head_value, **fields,
                                       rest=b"")], padding=b"")
    check(FD_LIST[2], data, value)


@pytest.mark.parametrize("fdtype", sorted(FD_PAYLOADS))
def test_fd_list_v1_every_type(fdtype):
    head, head_value = fd_head(-1 if fdtype == 1 else 3, fdtype)
    payload, fields = FD_PAYLOADS[fdtype]
    if fdtype == 16:   # V1 has no entry length, so FILE_V2 carries no dev
        payload, fields = payload[:-4], {k: v for k, v in fields.items() if k != "dev"}
    data = u64(42) + head + payload + head + payload + b"\0"
    entry = dict(**head_value, **fields)
    check(FD_LIST[1], data, dict(tid=42, entries=[entry, entry], padding=b"\0"))


def test_fd_list_v2_file_v2_without_dev():
    head, head_value = fd_head(7, 16)
    entry = head + u32(0) + lstr(b"/tmp/x")
    data = u64(1) + u32(4 + len(entry)) + entry
    value = dict(tid=1, entries=[dict(entry_len=4 + len(entry), **head_value, open_flags=0,
                                      name=b"/tmp/x", dev=None, rest=b"")], padding=b"")
    check(FD_LIST[2], data, value)


def test_fd_list_v2_unknown_type_kept_raw_and_skipped():
    head, head_value = fd_head(9, 99)
    unknown = head + b"\1\2\3\4\5"
    known = fd_head(10, 1)[0] + lstr(b"/a")
    data = u64(1) + u32(4 + len(unknown)) + unknown + u32(4 + len(known)) + known
    value = FD_LIST[2].parse(data)
    assert value.entries[0].raw == b"\1\2\3\4\5"
    assert value.entries[1].name == b"/a"
    assert FD_LIST[2].build(value) == data


def test_fd_list_v2_trailing_bytes_of_known_type_kept():
    head, head_value = fd_head(3, 1)
    entry = head + lstr(b"/a") + b"new!"
    data = u64(1) + u32(4 + len(entry)) + entry
    check(FD_LIST[2], data, dict(tid=1, entries=[dict(entry_len=4 + len(entry), **head_value,
                                                       name=b"/a", rest=b"new!")], padding=b""))


def test_fd_list_v1_unknown_type_is_an_error():
    with pytest.raises(ConstructError):
        FD_LIST[1].parse(u64(1) + fd_head(3, 99)[0] + lstr(b"x"))


def test_fd_list_empty_v2_block_is_20_bytes():
    block = build_block(bt.FDL_V2, dict(tid=7, entries=[]))
    assert len(block) == 20
    assert parse_block(block).body == dict(tid=7, entries=[], padding=b"")


# -- interface lists --------------------------------------------------------------------------

MASK4, BCAST4 = bytes([255, 0, 0, 0]), bytes([127, 255, 255, 255])
IF_CASES = {
    1: (IP4A + MASK4 + BCAST4 + u64(1000), dict(addr=IP4A, netmask=MASK4, bcast=BCAST4,
                                                linkspeed=1000)),
    2: (IP6A + IP6B + IP6A + u64(0), dict(addr=IP6A, netmask=IP6B, bcast=IP6A, linkspeed=0)),
    3: (IP4A + MASK4 + BCAST4, dict(addr=IP4A, netmask=MASK4, bcast=BCAST4, linkspeed=None)),
    4: (IP6A + IP6B + IP6A, dict(addr=IP6A, netmask=IP6B, bcast=IP6A, linkspeed=None)),
}
IF_SIZES = {1: 24, 2: 60, 3: 16, 4: 52}


@pytest.mark.parametrize("iftype", sorted(IF_CASES))
@pytest.mark.parametrize("version", [1, 2])
def test_interface_list(version, iftype):
    addresses, fields = IF_CASES[iftype]
    entry = u16(iftype) + u16(2) + addresses + b"lo"
    assert len(entry) == IF_SIZES[iftype] + 2
    value = dict(type=iftype, namelen=2, **fields, name=b"lo")
    if version == 2:
        entry = u32(len(entry)) + entry   # IL_V2 entry_len leaves out its own 4 bytes
        value = dict(entry_len=len(entry) - 4, **value, rest=b"")
    pad = bytes(-len(entry) % 4)
    check(INTERFACE_LIST[version], entry + pad, dict(entries=[value], padding=pad))


@pytest.mark.parametrize("version", [1, 2])
def test_interface_list_unknown_type_is_an_error(version):
    entry = u16(5) + u16(0) + bytes(12)
    if version == 2:
        entry = u32(len(entry)) + entry
    with pytest.raises(ConstructError):
        INTERFACE_LIST[version].parse(entry)


# -- user lists -------------------------------------------------------------------------------

USER_BYTES = u8(0) + u32(1000) + u32(100) + lstr(b"alice") + lstr(b"/home/alice") + lstr(b"/bin/sh")
USER_VALUE = dict(kind=0, uid=1000, gid=100, name=b"alice", homedir=b"/home/alice",
                  shell=b"/bin/sh")
GROUP_BYTES = u8(1) + u32(100) + lstr(b"users")
GROUP_VALUE = dict(kind=1, gid=100, name=b"users")
ODD_GROUP_BYTES = u8(7) + u32(0) + lstr(b"root")     # any kind but 0 is a group
ODD_GROUP_VALUE = dict(kind=7, gid=0, name=b"root")


def test_user_list_v1():
    data = USER_BYTES + GROUP_BYTES + ODD_GROUP_BYTES
    pad = bytes(-len(data) % 4)
    check(USER_LIST[1], data + pad,
          dict(entries=[USER_VALUE, GROUP_VALUE, ODD_GROUP_VALUE], padding=pad))


def test_user_list_v2():
    data = b"".join(u32(4 + len(e)) + e for e in (USER_BYTES, GROUP_BYTES, ODD_GROUP_BYTES))
    entries = [dict(entry_len=4 + len(e), **v, rest=b"") for e, v in (
        (USER_BYTES, USER_VALUE), (GROUP_BYTES, GROUP_VALUE), (ODD_GROUP_BYTES, ODD_GROUP_VALUE))]
    pad = bytes(-len(data) % 4)
    check(USER_LIST[2], data + pad, dict(entries=entries, padding=pad))


# -- events -----------------------------------------------------------------------------------

# scap-format.md 3.3, sample.scap: "> read fd=16(<t>) size=8"
EV_V2_EXAMPLE = bytes.fromhex(
    "16020000 38000000 0100 eb56d2b5df107617 7e01000000000000"
    "2a000000 0600 02000000 08000400 1000000000000000 08000000 38000000")
EV_V2_VALUE = dict(cpuid=1, ts=0x177610DFB5D256EB, tid=382, len=42, type=6, nparams=2,
                   lens=[8, 4], params=[i64(16), u32(8)], extra=b"", padding=b"", options=b"")

# scap-format.md 3.3, connect_localhost.scap: "< connect res=-115(EINPROGRESS) tuple=..."
EV_V1_EXAMPLE = bytes.fromhex(
    "04020000 40000000 0100 d4fae1029bbb2115 d37b000000000000"
    "2f000000 1700 0800 0d00 8dffffffffffffff 027f00000158b87f0000015000 000000 40000000")
EV_V1_VALUE = dict(cpuid=1, ts=0x1521BB9B02E1FAD4, tid=0x7BD3, len=47, type=23, nparams=2,
                   lens=[8, 13], params=[i64(-115), bytes.fromhex("027f00000158b87f0000015000")],
                   extra=b"", padding=b"\0\0\0", options=b"")


def test_event_v2_worked_example():
    check(EVENT_BODY[2, False], EV_V2_EXAMPLE[8:-4], EV_V2_VALUE, **NOT_LARGE)
    block = parse_block(EV_V2_EXAMPLE, **NOT_LARGE)
    assert block.body == EV_V2_VALUE and block.trailer == 56
    assert build_block(bt.EV_V2, EV_V2_VALUE, **NOT_LARGE) == EV_V2_EXAMPLE


@pytest.mark.parametrize("table_nparams", [2, 3, 5])
def test_event_v1_worked_example(table_nparams):
    """nparams is found counting down from the table's count (3 in libs, 2 in 0.29.3)."""
    ctx = dict(NOT_LARGE, table_nparams=lambda t: table_nparams)
    check(EVENT_BODY[1, False], EV_V1_EXAMPLE[8:-4], EV_V1_VALUE, **ctx)
    assert build_block(bt.EV, EV_V1_VALUE, **ctx) == EV_V1_EXAMPLE


def test_event_v1_table_with_too_few_params_is_an_error():
    with pytest.raises(ConstructError, match="nparams"):
        EVENT_BODY[1, False].parse(EV_V1_EXAMPLE[8:-4], table_nparams=lambda t: 1)


def test_event_v1_default_table_is_sysdig_0293():
    assert EVENT_BODY[1, False].parse(EV_V1_EXAMPLE[8:-4]) == EV_V1_VALUE
    assert parse_block(EV_V1_EXAMPLE).body == EV_V1_VALUE


def test_event_v1_notification_len_quirk():
    """Old writers stored NOTIFICATION (280) lengths 3 too long; the 3 bytes are kept in extra."""
    params = [u64(7), b"hello\0"]
    record = u64(1) + u64(2) + u32(22 + 4 + 14 + 3) + u16(280) + u16(8) + u16(6) + b"".join(params)
    record += b"\0\0\0"
    body = u16(0) + record + bytes(-(2 + len(record)) % 4)
    value = dict(cpuid=0, ts=1, tid=2, len=43, type=280, nparams=2, lens=[8, 6], params=params,
                 extra=b"\0\0\0", padding=bytes(-(2 + 43) % 4), options=b"")
    check(EVENT_BODY[1, False], body, value, **NOT_LARGE)
    # built from params alone, the quirk bytes are added so that libscap's -3 still adds up
    built = EVENT_BODY[1, False].build(dict(cpuid=0, ts=1, tid=2, type=280, params=params),
                                       **NOT_LARGE)
    assert built == body


def test_event_v2_flags_and_large_payload():
    """EVF_V2_LARGE, container event (324): u32 lengths because the type is large."""
    json = b'{"container":{}}\n'
    record = (u64(5) + u64(2**64 - 1) + u32(26 + 4 + len(json)) + u16(324) + u32(1)
              + u32(len(json)) + json)
    body = u16(3) + u32(1) + record
    body += bytes(-(2 + len(record)) % 4)
    value = dict(cpuid=3, flags=1, ts=5, tid=2**64 - 1, len=len(record), type=324, nparams=1,
                 lens=[len(json)], params=[json], extra=b"",
                 padding=bytes(-(2 + len(record)) % 4), options=b"")
    check(EVENT_BODY[2, True], body, value, **LARGE_324)
    block = build_block(bt.EVF_V2_LARGE, value, **LARGE_324)
    assert parse_block(block, **LARGE_324).body == value


def test_event_large_width_follows_the_type_not_the_block():
    """The same record in an EV_V2 block still has u32 lengths: the event type decides."""
    body = EVENT_BODY[2, False].build(dict(cpuid=0, ts=0, tid=0, type=324, params=[b"x"]),
                                      **LARGE_324)
    assert body[2 + 26:2 + 30] == u32(1)


def test_event_v2_default_table_knows_large_types():
    body = EVENT_BODY[2, False].build(dict(cpuid=0, ts=0, tid=0, type=324, params=[b"{}"]))
    assert EVENT_BODY[2, False].parse(body).lens == [2]
    assert body[2 + 26:2 + 30] == u32(2)


def test_event_options_kept_raw():
    options = u16(1) + u16(4) + b"note" + u16(0) + u16(0)
    data = EV_V2_EXAMPLE[8:-4] + options
    check(EVENT_BODY[2, False], data, dict(EV_V2_VALUE, options=options), **NOT_LARGE)


def test_event_body_short_of_its_padding_still_parses():
    body = EV_V1_EXAMPLE[8:-5]
    value = EVENT_BODY[1, False].parse(body)
    assert value.padding == b"\0\0" and EVENT_BODY[1, False].build(value) == body


def test_event_headers_are_static():
    assert EVENT_HEADER[1].sizeof() == 22
    assert EVENT_HEADER[2].sizeof() == 26
    assert EVENT_HEADER[2].parse(EV_V2_EXAMPLE[10:36]) == dict(
        ts=EV_V2_VALUE["ts"], tid=382, len=42, type=6, nparams=2)


# -- framing and the block table --------------------------------------------------------------

def test_block_frame():
    check(BLOCK_FRAME, SHB_LIBS, dict(type=bt.SHB, total_length=28, body=SHB_LIBS[8:24],
                                      trailer=28))


def test_every_block_id_has_a_schema():
    assert set(BLOCK_BODY) == set(bt.NAMES)
    for old, new in bt.CANONICAL.items():
        assert BLOCK_BODY[old] is BLOCK_BODY[new]


@pytest.mark.parametrize("body_len", range(0, 8))
def test_build_block_pads_to_4(body_len):
    block = build_block(0x1234, bytes(range(1, body_len + 1)))
    total = (8 + body_len + 4 + 3) // 4 * 4
    assert len(block) == total
    assert block[:8] == u32(0x1234) + u32(total) and block[-4:] == u32(total)
    assert block[8 + body_len:-4] == bytes(total - 12 - body_len)


def test_unknown_block_body_is_raw():
    block = build_block(0x00000001, b"pcapng IDB")
    assert parse_block(block).body == b"pcapng IDB\0\0"


def test_iter_blocks_walks_a_small_capture():
    data = (SHB_LIBS + build_block(bt.MI, MI_VALUE) + EV_V2_EXAMPLE
            + build_block(bt.UL_V1_INT, dict(entries=[GROUP_VALUE])))
    walk = list(iter_blocks(data))
    assert [(o, t, n) for o, t, n, _ in walk] == [
        (0, bt.SHB, 28), (28, bt.MI, 192), (220, bt.EV_V2, 56), (276, bt.UL_V1_INT, 24)]
    for offset, block_type, total, body in walk:
        assert body == data[offset + 8:offset + total - 4]
    assert parse_block(data, 276).body.entries == [GROUP_VALUE]


def test_iter_blocks_rejects_a_wrong_trailer():
    with pytest.raises(CorruptBlockError, match="trailer"):
        list(iter_blocks(SHB_LIBS[:-4] + u32(32)))


def test_iter_blocks_rejects_a_truncated_block():
    with pytest.raises(TruncatedError) as info:
        list(iter_blocks(SHB_LIBS + EV_V2_EXAMPLE[:40]))
    assert info.value.offset == 28


def test_parse_block_names_offset_and_block_on_bad_body():
    bad = build_block(bt.IL_V1, u16(9) + u16(0) + bytes(12))
    with pytest.raises(CorruptBlockError) as info:
        parse_block(SHB_LIBS + bad, 28)
    assert info.value.offset == 28 and info.value.block == "IL"
