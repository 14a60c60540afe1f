"""Damaged, truncated and foreign inputs: typed errors naming the place, partial reads kept."""
import gzip
import struct

import pytest

import scap
from scap.writer import SECTION_HEADER, frame_block


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
