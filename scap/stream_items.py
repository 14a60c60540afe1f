"""What a StreamReader yields: a SectionStart when a section begins, then EventChunks.

A SectionStart owns a copy of its section's header blocks (SHB and metadata), parsed into the
same rows and tables as Capture's only when asked for. An EventChunk views the reader's window
(see StreamReader for how long that stays valid) and carries its events' decoded headers.
"""
import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from .errors import ScapError, placed
from .events import param_slices
from .scan import Section

TABLES = ("machine", "processes", "fds", "users", "groups", "interfaces")


class MetadataBlock:
    """One header-phase block of a section: its canonical block type (blocktypes: MI, PL_V9,
    FDL_V2, ...; 2014 pre-release ids are given as their official ones), its offset in the
    stream, and its bytes, from block header to trailer (a view of the SectionStart's data)."""

    __slots__ = ("type", "offset", "data")

    def __init__(self, block_type, offset, data):
        self.type, self.offset, self.data = block_type, offset, data

    def __repr__(self):
        from .blocktypes import name
        return f"<MetadataBlock {name(self.type)} at {self.offset}, {len(self.data)} bytes>"


class SectionStart:
    """A section begins: its SHB and metadata blocks have been read.

    index: 0 for the first section of the stream; section: its scan.Section, with offsets in
    the stream and first_event the stream index of its first event (equal to Capture's);
    data: a uint8 array of its bytes from its SHB to its first event block, its own copy.
    The tables (machine, processes, fds, users, groups, interfaces) hold this section's rows,
    their `section` column is `index`: concatenated over the sections they are Capture's
    (whose `machine` is the first section's that has one)."""

    def __init__(self, index, section, data):
        self.index = index
        self.section = section
        self.data = data
        self._rows, self._tables = {}, {}

    offset = property(lambda self: self.section.offset)
    version = property(lambda self: self.section.version)
    first_event = property(lambda self: self.section.first_event)

    @functools.cached_property
    def blocks(self):
        """Its metadata blocks (MetadataBlock), in stream order."""
        return [MetadataBlock(btype, offset, self.data[offset - self.offset:
                                                    offset - self.offset + total])
                for offset, btype, total in self.section.metadata]

    @functools.cached_property
    def local_section(self):
        """The Section with offsets into self.data, which the metadata parsers read."""
        return Section(0, self.version, [(offset - self.offset, btype, total) for
                                         offset, btype, total in self.section.metadata])

    def rows(self, name):
        """A table ('machine', 'processes', ...) as the list of its rows (dicts; the machine
        is one dict, empty without an MI block), parsed on first use."""
        if name not in self._rows:
            from . import metadata  # construct and polars load only when a table is asked for
            try:
                self._rows[name] = metadata.read_rows(self.data, [self.local_section], name,
                                                      first_index=self.index)
            except ScapError as e:
                raise placed(e, base=self.offset) from None
        return self._rows[name]

    def table(self, name):
        """A table as a Polars DataFrame (the machine: a dict), as Capture gives it."""
        if name not in self._tables:
            from . import metadata
            rows = self.rows(name)
            self._tables[name] = rows if name == "machine" else metadata.table_of(rows, name)
        return self._tables[name]

    machine = property(lambda self: self.table("machine"))
    processes = property(lambda self: self.table("processes"))
    fds = property(lambda self: self.table("fds"))
    users = property(lambda self: self.table("users"))
    groups = property(lambda self: self.table("groups"))
    interfaces = property(lambda self: self.table("interfaces"))
    process_rows = property(lambda self: self.rows("processes"))

    def __repr__(self):
        major, minor = self.version
        return (f"<SectionStart {self.index} (version {major}.{minor}) at {self.offset}, "
                f"{len(self.section.metadata)} metadata blocks>")


@dataclass(eq=False)
class EventChunk:
    """Consecutive event blocks of one section.

    buffer: uint8 array of its blocks, buffer[0] being the first block's first byte, at
    `offset` in the stream. (In a damaged capture whose event records claim bytes beyond
    their own block, as the whole-file reader reads them, buffer runs on over those bytes.)
    layout: a scan.Layout of its events, offsets relative to buffer (sections empty).
    headers: their events.EventHeaders, over buffer (cpu, ts and tid are read on first use;
    each column has the compact dtype its own values allow, which may differ from chunk to
    chunk). first_event: the stream index of its first event; first_in_section: the index of
    that event in its section; section: the SectionStart it belongs to.

    buffer views the reader's window: holding a chunk keeps that window (up to the reader's
    read_size bytes) from being reused or freed. detached() gives a copy that holds only its
    own bytes, for keeping a few chunks longer."""

    section: SectionStart
    buffer: np.ndarray
    offset: int
    layout: object
    headers: object
    first_event: int
    first_in_section: int

    def __len__(self):
        return len(self.headers)

    @property
    def block_offsets(self):
        """The stream offset of each event block (int64)."""
        return self.headers.block_offset + self.offset

    def param_slices(self, index):
        """(offsets, lengths, present) into self.buffer of parameter number `index` (an int,
        or one per event; -1: none), as events.param_slices."""
        return param_slices(self.buffer, self.headers, index)

    def detached(self):
        """This chunk with a copy of its bytes: it no longer holds the reader's window."""
        buffer = self.buffer.copy()
        headers = self.headers.take(slice(None))  # the same columns, over the copy
        headers.buffer = buffer
        return EventChunk(self.section, buffer, self.offset, dataclasses.replace(self.layout),
                          headers, self.first_event, self.first_in_section)

    def __repr__(self):
        return (f"<EventChunk of {len(self)} events from #{self.first_event} (section "
                f"{self.section.index}), {len(self.buffer)} bytes at {self.offset}>")
