"""Typed errors for captures that cannot be read, or not all of it.

Every error names the file, the byte offset (in the uncompressed stream) and the block where
reading stopped, so that a one-line message is enough to find the damage with a hex editor.
"""


class ScapError(Exception):
    """A capture, or part of one, could not be read."""

    def __init__(self, message, *, path=None, offset=None, block=None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.offset = offset
        self.block = block

    def __str__(self):
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        if self.block is not None:
            where.append(f"block {self.block}")
        return ": ".join(where + [self.message]) if where else self.message


class NotAScapError(ScapError):
    """The input is not a scap capture (wrong magic, or pcapng blocks of another kind)."""


class UnsupportedVersionError(ScapError):
    """A section header with a major version this reader does not know."""


class CorruptBlockError(ScapError):
    """A block whose framing or content contradicts the format."""


class TruncatedError(ScapError):
    """The input ends in the middle of a block."""


class WriteError(ScapError):
    """A capture cannot be written where asked (no such directory, the input itself...)."""


class ScapWarning(UserWarning):
    """Reading stopped early; everything before the damage was kept."""
