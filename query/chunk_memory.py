"""What fields that remember earlier events keep from one chunk of a reading to the next
(query.chunks): a running value or a last one, keyed by the field, in the EventData's
memory, and where a chunk's rows are in the whole reading. For a whole capture these are
the plain answers (no memory, rows as they are)."""
import numpy as np


def carried_start(data, key, default):
    """What a field that remembers the events before (a running value, a last one) starts
    this chunk's scan with: `default` for a whole capture or a reading's first chunk, else
    what the scan of the chunk before ended with. Asked again for the same chunk, the same
    start (the field's value may be computed more than once)."""
    lo = getattr(data.capture, "lo", None)
    entry = data.memory.get(key)
    if lo is None or entry is None:
        return default
    return entry[1] if entry[0] == lo else entry[2]


def carried_end(data, key, start, end):
    """Remember where this chunk's scan ended (see carried_start)."""
    lo = getattr(data.capture, "lo", None)
    if lo is not None:
        data.memory[key] = (lo, start, end)


def own_rows(data):
    """The rows of a chunk that are its own (after its context events); all for a capture."""
    return np.arange(getattr(data.capture, "context", 0), len(data), dtype=np.int64)


def printed_start(data, key, rows, default):
    """What a field that remembers the last printed event starts a batch of printed `rows`
    with: what the batch before left, if these rows come after its rows in the reading
    (batches and chunks in order); `default` for a new pass."""
    entry = data.memory.get(key)
    if entry is None or not len(rows):
        return default
    first = int(reading_rows(data, np.asarray(rows[:1]))[0])
    return entry[1] if entry[0] < first else default


def printed_end(data, key, rows, value):
    if len(rows):
        data.memory[key] = (int(reading_rows(data, np.asarray(rows[-1:]))[0]), value)


def reading_rows(data, rows):
    """Where rows are in the whole reading: a chunk's rows after those of the chunks before
    it; a whole capture's rows as they are."""
    to_global = getattr(data.capture, "global_rows_of", None)
    rows = np.asarray(rows, dtype=np.int64)
    return rows if to_global is None else to_global(rows)
