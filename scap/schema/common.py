"""Building blocks shared by the block schemas: strings, "present if room left" fields, entry
lists and the generic block framing.

Every schema keeps the bytes it does not understand (entry tails, padding, options) as raw bytes,
so that building a parsed value gives back the input byte for byte.
"""
import io

from construct import (
    Bytes, Construct, Container, GreedyBytes, Int16ul, Int32ul, ListContainer, Prefixed,
    SizeofError, Struct, Subconstruct, this,
)
from construct.core import ExplicitError, evaluate, stream_read, stream_tell, stream_write

# Metadata strings: u16 length, then the bytes, no NUL terminator. Kept as bytes because files
# hold whatever the kernel saw (args, env and cgroups are NUL-separated lists).
lstr = Prefixed(Int16ul, GreedyBytes)


def round_up_4(n):
    return (n + 3) & ~3


def remaining(stream):
    """Bytes left in a seekable stream (schemas parse entries and bodies from byte slices)."""
    pos = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(pos)
    return end - pos


def option(context, name, default):
    """A value passed as a keyword to parse()/build(), or the module default."""
    value = context._params.get(name) if context._params is not None else None
    return default if value is None else value


class Raw(Subconstruct):
    """Bytes kept verbatim on parse; building None writes `default` (a context lambda or bytes).

    Used for what a schema does not interpret (entry tails, options, trailing padding), which
    is normally empty or zero but must round-trip.
    """

    def __init__(self, subcon=GreedyBytes, default=b""):
        super().__init__(subcon)
        self.default = default
        self.flagbuildnone = True

    def _build(self, obj, stream, context, path):
        if obj is None:
            obj = self.default(context) if callable(self.default) else self.default
        return self.subcon._build(obj, stream, context, path)


class Filler(Construct):
    """`size` bytes (a context lambda or int) kept verbatim on parse; building None writes that
    many zeros, building bytes writes them as they are (what was parsed, padding that stopped
    short included)."""

    def __init__(self, size):
        super().__init__()
        self.size = size
        self.flagbuildnone = True

    def _parse(self, stream, context, path):
        return stream_read(stream, evaluate(self.size, context), path)

    def _build(self, obj, stream, context, path):
        if obj is None:
            obj = bytes(evaluate(self.size, context))
        stream_write(stream, obj, len(obj), path)
        return obj

    def _sizeof(self, context, path):
        return evaluate(self.size, context)


class IfRoom(Subconstruct):
    """A field that is present only if the enclosing slice still has room for it.

    Newer writers append fields to fixed entries (PL_V9 tail, FILE_V2 dev) and readers detect them
    from the entry length. Absent parses as None; None builds nothing.
    """

    def __init__(self, subcon):
        super().__init__(subcon)
        self.flagbuildnone = True

    def _parse(self, stream, context, path):
        if remaining(stream) < self.subcon._sizeof(context, path):
            return None
        return self.subcon._parsereport(stream, context, path)

    def _build(self, obj, stream, context, path):
        if obj is None:
            return None
        return self.subcon._build(obj, stream, context, path)

    def _sizeof(self, context, path):
        raise SizeofError("depends on the room left", path=path)


class EntriesWhileRoom(Construct):
    """Entries parsed while at least `minimum` bytes remain; what is left (0-3 bytes) is padding.

    Bounded GreedyRange misfires on the trailing padding, hence this loop.
    """

    def __init__(self, subcon, minimum=4):
        super().__init__()
        self.subcon = subcon
        self.minimum = minimum

    def _parse(self, stream, context, path):
        entries = ListContainer()
        while remaining(stream) >= self.minimum:
            context._index = len(entries)
            entries.append(self.subcon._parsereport(stream, context, path))
        return entries

    def _build(self, obj, stream, context, path):
        built = ListContainer()
        for index, entry in enumerate(obj or ()):
            context._index = index
            built.append(self.subcon._build(entry, stream, context, path))
        return built

    def _sizeof(self, context, path):
        raise SizeofError("variable number of entries", path=path)


class LengthPrefixedEntry(Construct):
    """A u32 entry_len, then an entry parsed from exactly that slice.

    The entry's fields and `entry_len` come out in one flat Container. Building recomputes
    entry_len from the bytes written, so a parsed entry (which keeps unknown trailing bytes raw)
    rebuilds to the same length. `includes_self`: PL_V9, FDL_V2 and UL_V2 count the 4 length
    bytes, IL_V2 does not.
    """

    def __init__(self, subcon, includes_self=True):
        super().__init__()
        self.subcon = subcon
        self.includes_self = includes_self

    def _parse(self, stream, context, path):
        offset = stream_tell(stream, path)
        entry_len = Int32ul._parsereport(stream, context, path)
        size = entry_len - 4 if self.includes_self else entry_len
        if size < 0:
            raise ExplicitError(f"entry length {entry_len} at {offset} is too small", path=path)
        data = stream_read(stream, size, path)
        inner = self.subcon._parsereport(io.BytesIO(data), context, path)
        return merged(Container(entry_len=entry_len), inner)

    def _build(self, obj, stream, context, path):
        inner = io.BytesIO()
        self.subcon._build(obj, inner, context, path)
        data = inner.getvalue()
        entry_len = len(data) + 4 if self.includes_self else len(data)
        Int32ul._build(entry_len, stream, context, path)
        stream_write(stream, data, len(data), path)
        return merged(Container(entry_len=entry_len), obj)

    def _sizeof(self, context, path):
        raise SizeofError("variable entry length", path=path)


def merged(*parts):
    """One flat Container from several, without construct's bookkeeping keys."""
    out = Container()
    for part in parts:
        for key, value in part.items():
            if not (isinstance(key, str) and key.startswith("_")):
                out[key] = value
    return out


class TaggedUnion(Construct):
    """A common head, then the fields that the head's `tag` selects, then an optional tail,
    all in one flat Container (fd entries by fd type, users and groups by kind).

    `default` handles tags missing from `cases`; None makes them an error.
    """

    def __init__(self, head, tag, cases, default=None, tail=None):
        super().__init__()
        self.head = head
        self.tag = tag
        self.cases = cases
        self.default = default
        self.tail = tail

    def _case(self, tag, path):
        case = self.cases.get(tag, self.default)
        if case is None:
            raise ExplicitError(f"unknown {self.tag} {tag}", path=path)
        return case

    def _parts(self, tag, path):
        parts = [self.head, self._case(tag, path)]
        return parts + [self.tail] if self.tail is not None else parts

    def _parse(self, stream, context, path):
        head = self.head._parsereport(stream, context, path)
        values = [head]
        for part in self._parts(head[self.tag], path)[1:]:
            values.append(part._parsereport(stream, context, path))
        return merged(*values)

    def _build(self, obj, stream, context, path):
        values = [part._build(obj, stream, context, path)
                  for part in self._parts(obj[self.tag], path)]
        return merged(*values)

    def _sizeof(self, context, path):
        raise SizeofError("depends on the tag", path=path)


# The generic framing (same as pcapng). The body slice includes the 0-3 padding bytes; each body
# schema keeps them raw. Trailer equality is checked by the walker, not here, so that a damaged
# block still parses for inspection.
BLOCK_FRAME = Struct(
    "type" / Int32ul,
    "total_length" / Int32ul,
    "body" / Bytes(this.total_length - 12),
    "trailer" / Int32ul,
)
