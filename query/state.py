"""The state a renderer or a field needs for each event, from the thread and fd tables.

Thread and fd state are built as columns over all events (query.threads, query.fds); this
module adapts them to the per-event lookups of query.render.
"""
from query.render import NoState


def capture_state(capture, data=None):
    """The best state available for this capture (grows as query.threads/query.fds land)."""
    return NoState()
