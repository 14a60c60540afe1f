"""The ways sysdig writes events out, registered by name: the command line, the notebook API
and the live commands all ask here.

A line output makes the text of some events of an EventData (a capture, or a chunk of one),
one entry per event (None where the line is skipped), with column expressions per event type
(query.format, query.info_columns):

    default     sysdig's line (the coloured one on a terminal)
    container   sysdig -pc: the line with the container's name and id
    format      -p FORMAT: the user's fields
    json        -j: the fields of a format (the default line's if none) as JSON objects

How byte buffers show in evt.info is an option of the EventData the lines are made from
(BUFFER_STYLES: sysdig's -A, -x, -X), and -S is a table of counters over what was read,
made once at the end (query.summary): both are listed here too, by the same names the
command line uses.
"""
import dataclasses
from typing import Callable

from .format import CONTAINER_FORMAT, DEFAULT_FORMAT, TERMINAL_FORMAT, format_lines, json_lines

OUTPUTS = {}

#: buffer_format values of EventData: how evt.info shows byte buffers
BUFFER_STYLES = {"normal": "printable characters, others as dots (sysdig's default)",
                  "ascii": "-A: the printable text only, newlines kept",
                  "hex": "-x: hexadecimal rows",
                  "hexascii": "-X: hexadecimal rows beside their text"}


@dataclasses.dataclass(frozen=True)
class Output:
    name: str
    description: str
    make: Callable        # (data, fmt, rows, bytebuf_limit, previous) -> [str | None]
    fixed_format: str = None   # the format it always uses (None: the caller's)
    terminal_format: str = None   # the one it uses on a terminal, where it differs

    def format_for(self, fmt=None, terminal=False):
        """The -p style format the lines are made with."""
        if self.fixed_format is not None:
            return self.terminal_format if terminal and self.terminal_format else \
                self.fixed_format
        if fmt in ("c", "container"):   # (-j -pc: the container line's fields)
            return CONTAINER_FORMAT
        return fmt or (TERMINAL_FORMAT if terminal else DEFAULT_FORMAT)

    def lines(self, data, rows, fmt=None, *, terminal=False, previous=None):
        """The text of each of these rows of `data` (None where the line is skipped).
        previous: the row printed just before the first one, for fields that remember it
        (evt.deltatime, -t D)."""
        return self.make(data, self.format_for(fmt, terminal), rows, data.bytebuf_limit,
                         previous)


def register(output):
    OUTPUTS[output.name] = output
    return output


register(Output("default", "sysdig's line for each event", format_lines,
                fixed_format=DEFAULT_FORMAT, terminal_format=TERMINAL_FORMAT))
register(Output("container", "sysdig -pc: the line with the container's name and id",
                format_lines, fixed_format=CONTAINER_FORMAT))
register(Output("format", "-p FORMAT: the fields of a format of the user's", format_lines))
register(Output("json", "-j: a format's fields (the default line's if none) as JSON",
                json_lines))


def output_for(fmt=None, as_json=False):
    """The Output of sysdig's options: -j, -p c / -p container, -p FORMAT, or none."""
    if as_json:
        return OUTPUTS["json"]
    if fmt in ("c", "container"):
        return OUTPUTS["container"]
    return OUTPUTS["format"] if fmt else OUTPUTS["default"]
