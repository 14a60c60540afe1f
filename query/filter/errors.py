"""The one error type of the filter package."""
from __future__ import annotations

from typing import Optional


class FilterError(ValueError):
    """A filter that cannot be parsed or compiled.

    ``message`` says what is wrong, ``position`` is the 0-based character index in the filter
    text (None when no position applies), ``hint`` optionally says what was expected. ``str()`` is
    one line: ``filter: <message> at position <n>[; <hint>]``.
    """

    def __init__(self, message: str, position: Optional[int] = None, hint: Optional[str] = None):
        self.message = message
        self.position = position
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"filter: {self.message}"
        if self.position is not None:
            text += f" at position {self.position}"
        if self.hint:
            text += f"; {self.hint}"
        return text

    def __reduce__(self):
        return (type(self), (self.message, self.position, self.hint))
