"""Damaged, truncated and foreign inputs: typed errors naming the place, partial reads kept."""
import gzip
import struct

import pytest

from scaptool import scap
from scaptool.scap.writer import SECTION_HEADER, frame_block


def _event_block(ts, tid, etype, params):
    lens = b"".join(struct.pack("<H", len(p)) for p in params)
    record = struct.pack("<QQIHI", ts, tid, 26 + len(lens) + sum(map(len, params)), etype,
                         len(params)) + lens + b"".join(params)
    return frame_block(0x216, struct.pack("<H", 0) + record)


def _read_event(ts):
    return _event_block(ts, 42, 6, [struct.pack("<q", 3), struct.pack("<I", 8)])


EVENT_SIZE = len(_read_event(0))


def _capture(n=5):
    events = b"".join(_read_event(1000 + i) for i in range(n))
    machine = frame_block(0x201, struct.pack("<IQQ128sQQQQ", 2, 1 << 30, 0, b"host", 0, 0, 0, 0))
    return SECTION_HEADER + machine + events


def test_clean_capture_reads(tmp_path):
    f = tmp_path / "ok.scap"
    f.write_bytes(_capture())
    cap = scap.open(f)
    assert len(cap) == 5 and cap.damage is None
    assert list(cap.headers.ts) == [1000, 1001, 1002, 1003, 1004]


def test_truncated_keeps_events_before_damage(tmp_path):
    data = _capture()
    f = tmp_path / "cut.scap"
    f.write_bytes(data[:-10])
    with pytest.warns(scap.ScapWarning, match="truncated"):
        cap = scap.open(f)
    assert len(cap) == 4
    assert isinstance(cap.damage, scap.TruncatedError)
    assert cap.damage.offset == len(data) - EVENT_SIZE  # the last block's start


def test_truncated_gzip_keeps_what_inflates(tmp_path):
    packed = gzip.compress(_capture(200))
    f = tmp_path / "cut.scap.gz"
    f.write_bytes(packed[: len(packed) * 2 // 3])
    with pytest.warns(scap.ScapWarning):
        cap = scap.open(f)
    assert 0 < len(cap) < 200


def test_concatenated_gzip_members_are_sections(tmp_path):
    f = tmp_path / "two.scap"
    f.write_bytes(gzip.compress(_capture(3)) + gzip.compress(_capture(2)))
    cap = scap.open(f)
    assert len(cap) == 5 and len(cap.sections) == 2
    assert cap.sections[1].first_event == 3


def test_corrupt_length_names_offset_and_block(tmp_path):
    data = bytearray(_capture())
    at = len(SECTION_HEADER) + 192 + EVENT_SIZE * 2  # third event block
    data[at + 4:at + 8] = struct.pack("<I", 7)
    f = tmp_path / "bad.scap"
    f.write_bytes(bytes(data))
    with pytest.warns(scap.ScapWarning):
        cap = scap.open(f)
    assert len(cap) == 2
    assert isinstance(cap.damage, scap.CorruptBlockError)
    assert cap.damage.offset == at and cap.damage.block == "EV_V2"
    assert f"offset {at}" in str(cap.damage)


@pytest.mark.parametrize("content, error", [
    (b"", scap.NotAScapError),
    (b"hello, world, this is not a capture at all", scap.NotAScapError),
    (SECTION_HEADER[:8] + struct.pack("<I", 0x1A2B3C4D) + struct.pack("<HH", 2, 0)
     + b"\xff" * 8 + SECTION_HEADER[-4:], scap.UnsupportedVersionError),
])
def test_not_a_capture(tmp_path, content, error):
    f = tmp_path / "x.scap"
    f.write_bytes(content)
    with pytest.raises(error) as info:
        scap.open(f)
    assert str(f) in str(info.value)


def test_pcapng_network_capture_is_refused(tmp_path):
    # same section header as scap, then an interface description block: a tcpdump file
    idb = frame_block(1, struct.pack("<HHI", 1, 0, 65535))
    f = tmp_path / "net.scap"
    f.write_bytes(SECTION_HEADER + idb)
    with pytest.raises(scap.NotAScapError, match="pcapng network capture") as info:
        scap.open(f)
    assert info.value.offset == len(SECTION_HEADER)


def test_missing_file():
    with pytest.raises(scap.ScapError, match="no such file"):
        scap.open("/nonexistent/x.scap")


def test_false_block_start_inside_event_data(tmp_path):
    """An event whose data looks like a whole event block must not fool the bulk scan."""
    inner = _event_block(7, 7, 6, [struct.pack("<q", 1), struct.pack("<I", 2)])
    # pad so the fake block is 4-aligned inside the outer block's data
    outer = _event_block(5, 42, 7, [struct.pack("<q", 0), b"\0\0" + inner + b"\0\0"])
    f = tmp_path / "tricky.scap"
    f.write_bytes(_capture(1) + outer + _capture(2)[len(_capture(0)):])
    cap = scap.open(f)
    assert len(cap) == 4
    assert list(cap.headers.ts) == [1000, 5, 1000, 1001]


# -- what the bulk scan reads beside the block chain (scan._record_fields) ----------------------

def _many_events(n, tid=42, first_ts=0):
    return b"".join(_event_block(first_ts + i, tid, 6, [struct.pack("<q", 3), b"x" * 4])
                    for i in range(n))


# enough events that the file spans several of the scan's chunks
_MANY = 3 * (1 << 21) // EVENT_SIZE


def test_block_of_another_kind_deep_in_the_file(tmp_path):
    """The scan first looks for the first block's id only; a block of another kind (here an
    EVF_V2, with its flags field) far into the file makes it look for every kind from there,
    and every event is read."""
    flagged_record = struct.pack("<IQQIHI", 1, 777, 99, 26, 6, 0)
    flagged = frame_block(0x217, struct.pack("<H", 0) + flagged_record)
    half = _MANY // 2
    f = tmp_path / "mixed.scap"
    f.write_bytes(_capture(0) + _many_events(half) + flagged + _many_events(half, first_ts=half))
    cap = scap.open(f)
    assert cap.layout.event_tids is not None  # read by the bulk scan, not the walk
    assert cap.damage is None and len(cap) == 2 * half + 1
    assert cap.headers.block_type[half] == 0x217
    assert int(cap.headers.tid[half]) == 99 and int(cap.headers.ts[half]) == 777
    assert (cap.headers.tid[:half] == 42).all() and (cap.headers.tid[half + 1:] == 42).all()
    assert cap.headers.ts[-1] == 2 * half - 1


def test_record_longer_than_the_data_is_damage(tmp_path):
    """A well-framed block whose record claims more bytes than the file has: reading stops
    there, as libscap does, with the same error as the slow check gives."""
    data = bytearray(_capture(0) + _many_events(_MANY))
    at = len(_capture(0)) + EVENT_SIZE * (_MANY - 3)
    data[at + 26:at + 30] = struct.pack("<I", 1 << 30)  # the record length
    f = tmp_path / "long.scap"
    f.write_bytes(bytes(data))
    with pytest.warns(scap.ScapWarning):
        cap = scap.open(f)
        assert cap.layout.first_misfit == _MANY - 3
        assert len(cap) == _MANY - 3
    assert isinstance(cap.damage, scap.CorruptBlockError)
    assert cap.damage.offset == at and "does not fit its block" in str(cap.damage)


def test_the_first_damage_is_named(tmp_path):
    """A record that does not fit, then a corrupt block further on: reading stops at the
    record, and that is the damage named (not the block the scan stopped at)."""
    data = bytearray(_capture(6))
    first = len(_capture(0))
    record_at = first + EVENT_SIZE
    data[record_at + 26:record_at + 30] = struct.pack("<I", 1 << 30)   # event 1's record
    block_at = first + EVENT_SIZE * 4
    data[block_at + 4:block_at + 8] = struct.pack("<I", 7)            # event 4's block
    f = tmp_path / "twice.scap"
    f.write_bytes(bytes(data))
    with pytest.warns(scap.ScapWarning):
        cap = scap.open(f)
        assert cap.layout.damage.offset == block_at
    assert len(cap) == 1
    assert cap.damage.offset == record_at and "does not fit its block" in str(cap.damage)


def test_a_gzip_stream_damaged_after_a_corrupt_block(tmp_path):
    """The corrupt block comes first: it is named, not the gzip damage that ends the data."""
    data = bytearray(_capture(50))
    block_at = len(_capture(0)) + EVENT_SIZE * 10
    data[block_at + 4:block_at + 8] = struct.pack("<I", 7)
    packed = bytearray(gzip.compress(bytes(data)))
    packed[-6] ^= 0xFF   # the CRC: zlib says so once everything is inflated
    f = tmp_path / "both.scap.gz"
    f.write_bytes(bytes(packed))
    with pytest.warns(scap.ScapWarning):
        cap = scap.open(f)
        assert len(cap) == 10
    assert isinstance(cap.damage, scap.CorruptBlockError) and cap.damage.offset == block_at


def test_thread_ids_beyond_32_bits_late_in_the_file(tmp_path):
    """Thread ids are kept in 32 bits while they fit; one that does not, in a later chunk,
    widens the column without changing the values before it."""
    big = (1 << 40) + 5
    f = tmp_path / "tids.scap"
    f.write_bytes(_capture(0) + _many_events(_MANY) + _many_events(1, tid=big)
                  + _many_events(1, tid=(1 << 64) - 1))
    cap = scap.open(f)
    assert cap.layout.event_tids is not None
    tids = cap.headers.tid
    assert len(tids) == _MANY + 2 and tids.dtype.itemsize == 8
    assert (tids[:_MANY] == 42).all() and int(tids[-2]) == big and int(tids[-1]) == -1
