"""The schemas on every real capture: every block parses and rebuilds to the same bytes.

Metadata blocks are all rebuilt. Event blocks are sampled: construct parses ~15k events/s, and
the full corpus would take minutes as it grows, so each capture contributes at most
EVENT_SAMPLE events: the first event of every (block type, event type) pair, so that rare kinds
(EV_V2_LARGE, container events) are always covered, then evenly spaced ones. The sample is
deterministic. Block counts per type are checked for every block, sampled or not.
"""
import collections
import csv
import gzip

import pytest

from conftest import corpus_captures, corpus_path, need_capture
from scaptool.scap import blocktypes as bt
from scaptool.scap.schema import build_block, iter_blocks, parse_block
from scaptool.scap.schema.proclist import parse_entries

EVENT_SAMPLE = 3000
GZIP_MAGIC = b"\x1f\x8b"
# Offset of the event type in an event block body: cpuid, [flags], ts, tid, len come first.
EVENT_TYPE_AT = {False: 22, True: 26}


def read_capture(path):
    data = path.read_bytes()
    # gzip.decompress reads concatenated members, as zlib's gzread does for libscap
    return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data


def manifest_counts(text):
    """{block name: count} from the `blocks` column, e.g. "SHB MI PL_V9x2 FDL_V2x218"."""
    counts = collections.Counter()
    for token in text.split():
        name, _, count = token.partition("x")   # block names are upper case
        counts[name] += int(count) if count.isdigit() else 1
    return counts


def manifest():
    with open(corpus_path() / "MANIFEST.tsv", newline="") as f:
        return {row["name"]: row for row in csv.DictReader(f, delimiter="\t")}


def sample_events(events):
    """Offsets of the events to rebuild: first of each kind, then evenly spaced."""
    chosen = {}
    for offset, kind in events:
        chosen.setdefault(kind, offset)
    picked = set(chosen.values())
    room = EVENT_SAMPLE - len(picked)
    if room > 0:
        step = max(1, -(-len(events) // room))
        picked.update(offset for offset, _ in events[::step])
    return sorted(picked)[:max(EVENT_SAMPLE, len(chosen))]


@pytest.mark.parametrize("path", corpus_captures())
def test_every_block_round_trips(path):
    path = need_capture(path)
    data = read_capture(path)
    counts = collections.Counter()
    events = []
    for offset, block_type, total, body in iter_blocks(data):
        counts[bt.name(block_type)] += 1
        if block_type in bt.EVENT_BLOCKS:
            type_at = EVENT_TYPE_AT[bt.EVENT_BLOCKS[block_type][1]]
            event_type = int.from_bytes(body[type_at:type_at + 2], "little")
            events.append((offset, (block_type, event_type)))
            continue
        check_round_trip(data, offset, total)
    for offset in sample_events(events):
        check_round_trip(data, offset, int.from_bytes(data[offset + 4:offset + 8], "little"))

    row = manifest()[path.name]
    assert counts == manifest_counts(row["blocks"])
    assert sum(counts[bt.name(t)] for t in bt.EVENT_BLOCKS) == int(row["event_blocks"])


def check_round_trip(data, offset, total):
    block = parse_block(data, offset)
    if block.type in bt.PROCESS_LISTS:  # the fast parser reads what the schema reads
        fast = parse_entries(data[offset + 8:offset + total - 4], bt.PROCESS_LISTS[block.type])
        assert fast == [{k: v for k, v in e.items() if not k.startswith("_")}
                        for e in block.body.entries]
    assert block.total_length == total
    rebuilt = build_block(block.type, block.body)
    assert rebuilt == data[offset:offset + total], (
        f"{bt.name(block.type)} block at offset {offset} does not rebuild byte for byte")


def test_manifest_counts_parse():
    assert manifest_counts("SHB MI PL_V9x2 FDL_V2x218 EV_V2_LARGE EV_V2x3") == {
        "SHB": 1, "MI": 1, "PL_V9": 2, "FDL_V2": 218, "EV_V2_LARGE": 1, "EV_V2": 3}


def test_sample_is_deterministic_and_bounded():
    events = [(i * 4, (bt.EV_V2, i % 7)) for i in range(10_000)]
    first = sample_events(events)
    assert first == sample_events(events)
    assert len(first) <= EVENT_SAMPLE
    assert {events[i][1] for i in range(7)} <= {kind for o, kind in events if o in set(first)}
