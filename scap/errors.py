"""Typed errors for captures that cannot be read, or not all of it.

Every error names the file, the byte offset (in the uncompressed stream) and the block where
reading stopped, so that a one-line message is enough to find the damage with a hex editor.
"""


_ESCAPED = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_ESCAPED.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def error_line(text):
    """An error message as the one line the command line prints: line breaks and every other
    control character written as escapes (a filter, format or path in the message is the
    user's or the capture's text, and may hold any)."""
    return str(text).translate(_ESCAPED)


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


def placed(error, path=None, base=0):
    """`error` said of a whole stream: its offset moved by `base` (where the buffer it was
    found in starts), its path set where it had none."""
    if error.offset is not None:
        error.offset += base
    if error.path is None:
        error.path = path
    return error


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
