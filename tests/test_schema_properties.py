"""Random entries and events: build, then parse, gives back every field; building again gives
the same bytes."""
from hypothesis import given, settings
from hypothesis import strategies as st

from scaptool.scap import blocktypes as bt
from scaptool.scap.schema import (
    EVENT_BODY, FD_LIST, INTERFACE_LIST, PROCESS_LIST, USER_LIST, build_block, parse_block,
)
from scaptool.scap.schema.proclist import ENTRY_FIELDS, TAIL_FIELDS, FastPathError, parse_entries

u8 = st.integers(0, 2**8 - 1)
u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-2**63, 2**63 - 1)
text = st.binary(max_size=40)

BY_FORMAT = {"Q": u64, "q": i64, "L": u32, "I": u32, "B": u8}


def field_strategy(field):
    fmt = getattr(field, "fmtstr", None)
    return BY_FORMAT[fmt[-1]] if fmt else text


def assert_round_trip(schema, value, **context):
    data = schema.build(value, **context)
    parsed = schema.parse(data, **context)
    assert_fields(parsed, value)
    assert schema.build(parsed, **context) == data
    return parsed


def assert_fields(parsed, value):
    """Every field the value gives is parsed back equal (computed ones like entry_len may be
    added)."""
    if isinstance(value, list):
        assert len(parsed) == len(value)
        for p, v in zip(parsed, value):
            assert_fields(p, v)
    elif isinstance(value, dict):
        for key, v in value.items():
            assert_fields(parsed[key], v)
    else:
        assert parsed == value


# -- process lists ----------------------------------------------------------------------------

TAIL_NAMES = [name for name, _, _ in TAIL_FIELDS]
OLD_ORDER = [name for name, _, in_old in TAIL_FIELDS if in_old]
TAIL_STRATEGIES = {name: field_strategy(field) for name, field, _ in TAIL_FIELDS}


@st.composite
def v9_tail(draw):
    """A tail a reader can tell apart: up to 29 bytes in the old order, or the new order with
    enough fields to exceed 29 bytes (the first 6 make 33)."""
    if draw(st.booleans()):
        names = OLD_ORDER[:draw(st.integers(0, len(OLD_ORDER)))]
    else:
        names = TAIL_NAMES[:draw(st.integers(6, len(TAIL_NAMES)))]
    tail = {name: draw(TAIL_STRATEGIES[name]) for name in names}
    if len(names) == len(TAIL_NAMES):   # only after the last known field can bytes be unknown
        tail["rest"] = draw(st.binary(max_size=9))
    return tail


@st.composite
def process_entry(draw, version):
    entry = {name: draw(field_strategy(field))
             for name, field, since in ENTRY_FIELDS if version >= since}
    if version >= 9:
        entry.update(draw(v9_tail()))
    return entry


@settings(max_examples=150)
@given(st.integers(1, 9).flatmap(
    lambda v: st.tuples(st.just(v), st.lists(process_entry(v), max_size=3))))
def test_process_list(case):
    version, entries = case
    assert_round_trip(PROCESS_LIST[version], dict(entries=entries))


def _schema_entries(schema, data):
    """The entries as the construct schema parses them (its bookkeeping keys dropped)."""
    return [{k: v for k, v in e.items() if not k.startswith("_")}
            for e in schema.parse(data).entries]


@settings(max_examples=150)
@given(st.integers(1, 9).flatmap(
    lambda v: st.tuples(st.just(v), st.lists(process_entry(v), max_size=3))),
    st.integers(0, 12))
def test_fast_process_list_parser_agrees_with_the_schema(case, cut):
    """scap.schema.proclist.parse_entries (struct) gives what the schema gives; where the
    schema fails (a block cut short), it declines rather than guess."""
    version, entries = case
    data = PROCESS_LIST[version].build(dict(entries=entries))
    assert parse_entries(data, version) == _schema_entries(PROCESS_LIST[version], data)
    short = data[:max(0, len(data) - cut)]
    try:
        expected = _schema_entries(PROCESS_LIST[version], short)
    except Exception:
        expected = FastPathError
    try:
        got = parse_entries(short, version)
    except FastPathError:
        got = FastPathError
    assert got == expected


# -- fd lists ---------------------------------------------------------------------------------

def addr(size):
    return st.binary(min_size=size, max_size=size)


def fd_payload(fdtype, version):
    if fdtype in (3, 4):
        size = 4 if fdtype == 3 else 16
        return st.fixed_dictionaries(dict(sip=addr(size), dip=addr(size), sport=u16,
                                          dport=u16, l4proto=u8))
    if fdtype in (5, 6):
        return st.fixed_dictionaries(dict(ip=addr(4 if fdtype == 5 else 16), port=u16,
                                          l4proto=u8))
    if fdtype == 8:
        return st.fixed_dictionaries(dict(source=u64, destination=u64, name=text))
    if fdtype == 16:
        dev = st.one_of(st.none(), u32) if version == 2 else st.none()
        return st.fixed_dictionaries(dict(open_flags=u32, name=text, dev=dev))
    return st.fixed_dictionaries(dict(name=text))


@st.composite
def fd_entry(draw, version):
    fdtype = draw(st.integers(1, 21))
    entry = dict(fd=draw(i64), ino=draw(u64), type=fdtype, **draw(fd_payload(fdtype, version)))
    if entry.get("dev", 0) is None and version == 1:
        del entry["dev"]
    return entry


@settings(max_examples=200)
@given(st.sampled_from([1, 2]).flatmap(
    lambda v: st.tuples(st.just(v), u64, st.lists(fd_entry(v), max_size=4))))
def test_fd_list(case):
    version, tid, entries = case
    assert_round_trip(FD_LIST[version], dict(tid=tid, entries=entries))


@given(u64, st.integers(22, 255), st.binary(max_size=20))
def test_fd_list_v2_unknown_types_round_trip(tid, fdtype, raw):
    assert_round_trip(FD_LIST[2], dict(tid=tid, entries=[dict(fd=1, ino=2, type=fdtype,
                                                                raw=raw)]))


# -- interface and user lists -----------------------------------------------------------------

@st.composite
def interface_entry(draw):
    iftype = draw(st.integers(1, 4))
    size = 16 if iftype in (2, 4) else 4
    entry = dict(type=iftype, addr=draw(addr(size)), netmask=draw(addr(size)),
                 bcast=draw(addr(size)), name=draw(text))
    entry["linkspeed"] = draw(u64) if iftype in (1, 2) else None
    return entry


@given(st.sampled_from([1, 2]), st.lists(interface_entry(), max_size=4))
def test_interface_list(version, entries):
    assert_round_trip(INTERFACE_LIST[version], dict(entries=entries))


user = st.fixed_dictionaries(dict(kind=st.just(0), uid=u32, gid=u32, name=text, homedir=text,
                                  shell=text))
group = st.fixed_dictionaries(dict(kind=st.integers(1, 255), gid=u32, name=text))


@given(st.sampled_from([1, 2]), st.lists(st.one_of(user, group), max_size=5))
def test_user_list(version, entries):
    assert_round_trip(USER_LIST[version], dict(entries=entries))


# -- events -----------------------------------------------------------------------------------

LARGE_TYPES = {322, 324, 402}
EVENT_BLOCK_IDS = sorted(bt.EVENT_BLOCKS)


@st.composite
def event_block(draw):
    block_type = draw(st.sampled_from(EVENT_BLOCK_IDS))
    version, has_flags = bt.EVENT_BLOCKS[block_type]
    event_type = draw(st.sampled_from([0, 1, 6, 23, 280, 286, 322, 324, 402, 453, 1000]))
    large = version == 2 and event_type in LARGE_TYPES
    params = draw(st.lists(st.binary(max_size=300 if large else 60), max_size=8))
    value = dict(cpuid=draw(u16), ts=draw(u64), tid=draw(u64), type=event_type, params=params)
    if has_flags:
        value["flags"] = draw(u32)
    # pcapng options come in 4-byte units, so that framing adds no padding of its own
    value["options"] = draw(st.binary(max_size=3).map(lambda b: b * 4))
    return block_type, value


@settings(max_examples=400)
@given(event_block())
def test_event_blocks(case):
    block_type, value = case
    n = len(value["params"])
    # V1 inference counts down from the table's nparams; the record's own count is exact.
    context = dict(is_large=lambda t: t in LARGE_TYPES, table_nparams=lambda t: n)
    parsed = assert_round_trip(EVENT_BODY[bt.EVENT_BLOCKS[block_type]], value, **context)
    assert parsed.nparams == n
    block = build_block(block_type, value, **context)
    assert len(block) % 4 == 0
    again = parse_block(block, **context)
    assert_fields(again.body, value)
    assert build_block(block_type, again.body, **context) == block
