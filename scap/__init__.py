"""The scap format: read captures into columns, write captures sysdig reads.

    >>> from scaptool import scap
    >>> with scap.open("trace.scap") as cap:
    ...     cap.events(params=["data"])
"""
from .capture import Capture, open  # noqa: A004 - scap.open mirrors the builtin on purpose
from .errors import (CorruptBlockError, NotAScapError, ScapError, ScapWarning, TruncatedError,
                     UnsupportedVersionError, WriteError)
from .rewrite import write_capture, write_captures

__all__ = ["Capture", "open", "write_capture", "write_captures", "ScapError", "NotAScapError",
           "UnsupportedVersionError", "CorruptBlockError", "TruncatedError", "WriteError",
           "ScapWarning"]
