"""The scap format: read captures into columns, write captures sysdig reads.

    >>> from scaptool import scap
    >>> with scap.open("trace.scap") as cap:
    ...     cap.events(params=["data"])
"""
from .capture import Capture, open  # noqa: A004 - scap.open mirrors the builtin on purpose
from .errors import (CorruptBlockError, NotAScapError, ScapError, ScapWarning, TruncatedError,
                     UnsupportedVersionError, WriteError, error_line)
from .rewrite import write_capture, write_captures

__all__ = ["Capture", "open", "write_capture", "write_captures", "StreamReader", "SectionStart",
           "EventChunk", "ScapError", "NotAScapError", "UnsupportedVersionError",
           "CorruptBlockError", "TruncatedError", "WriteError", "ScapWarning", "error_line"]

_STREAM = ("StreamReader", "SectionStart", "EventChunk")


def __getattr__(name):
    """The stream reader (scap/stream.py) loads when first asked for: commands that read
    whole files do not pay for importing it."""
    if name in _STREAM:
        from . import stream
        return getattr(stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
