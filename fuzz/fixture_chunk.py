"""The EventData of the seed story's capture: the events the text-language targets (filters,
formats) are evaluated on.

Read once and shared, but read again every FRESH_EVERY inputs: an EventData keeps every column
computed on it (a field with an argument, evt.arg.NAME, is a column of its own), as it should
for a capture that is queried many ways; over a million fuzzed formats that keep is what grew
a campaign's process past its memory bound (1.5 GB after ~100,000 inputs, ~14 KB an input),
not anything one input does."""
import harness

FRESH_EVERY = 2000
_held = {"chunk": None, "uses": 0}


def story():
    if _held["chunk"] is None or _held["uses"] >= FRESH_EVERY:
        from scaptool.query.chunks import event_data_chunks
        path = harness.FIXTURES / "php-database-error.scap"
        _held["chunk"] = next(iter(event_data_chunks(str(path), 100_000)))
        _held["uses"] = 0
    _held["uses"] += 1
    return _held["chunk"]
