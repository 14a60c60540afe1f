"""The scap format: read captures into columns, write captures sysdig reads.

    >>> from scaptool import scap
    >>> with scap.open("trace.scap") as cap:
    ...     cap.events(params=["data"])
"""
from .capture import Capture, open  # noqa: A004 - scap.open mirrors the builtin on purpose
from .errors import (CorruptBlockError, NotAScapError, ScapError, ScapWarning, TruncatedError,
                     UnsupportedVersionError)
from .rewrite import write_capture

__all__ = ["Capture", "open", "write_capture", "ScapError", "NotAScapError",
           "UnsupportedVersionError", "CorruptBlockError", "TruncatedError", "ScapWarning"]
