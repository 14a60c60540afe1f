"""The EventData of the seed story's capture, read once: the events the text-language
targets (filters, formats) are evaluated on."""
import functools

import harness


@functools.cache
def story():
    from scaptool.query.chunks import event_data_chunks
    path = harness.FIXTURES / "php-database-error.scap"
    return next(iter(event_data_chunks(str(path), 100_000)))
