"""Construct schemas for every scap block type and version: the format's specification in code.

    BLOCK_BODY[block_type]            the body schema of a block type (the `_INT` ids included)
    parse_block(data, offset=0)       Container(offset, type, name, total_length, body, trailer)
    build_block(block_type, body)     framed, padded block bytes
    iter_blocks(data)                 (offset, block_type, total_length, body_bytes) per block

A parsed body keeps every byte it does not interpret (padding, entry tails, options), so
`build_block(b.type, b.body) == data[b.offset:b.offset + b.total_length]` for every block of real
captures. Event bodies take `is_large` and `table_nparams` callables as keywords (see events.py);
parse_block and build_block pass keyword arguments through.
"""
import struct

from construct import ConstructError, Container

from scaptool.scap import blocktypes as bt
from scaptool.scap.errors import CorruptBlockError, TruncatedError

from .common import BLOCK_FRAME, lstr, round_up_4
from .events import EVENT_BODY, EVENT_HEADER
from .fdlist import FD_LIST, FdType
from .iflist import INTERFACE_LIST, IfType
from .machine import MACHINE_INFO
from .proclist import PROCESS_LIST, process_entry
from .section import SECTION_HEADER
from .userlist import USER_LIST

__all__ = [
    "BLOCK_BODY", "BLOCK_FRAME", "EVENT_BODY", "EVENT_HEADER", "FD_LIST", "INTERFACE_LIST", "MACHINE_INFO",
    "PROCESS_LIST", "SECTION_HEADER", "USER_LIST", "FdType", "IfType", "body_schema",
    "build_block", "iter_blocks", "lstr", "parse_block", "process_entry", "round_up_4",
]

_OFFICIAL = {
    bt.SHB: SECTION_HEADER,
    bt.MI: MACHINE_INFO,
    **{block: PROCESS_LIST[version] for block, version in bt.PROCESS_LISTS.items()},
    **{block: FD_LIST[version] for block, version in bt.FD_LISTS.items()},
    **{block: INTERFACE_LIST[version] for block, version in bt.INTERFACE_LISTS.items()},
    **{block: USER_LIST[version] for block, version in bt.USER_LISTS.items()},
    **{block: EVENT_BODY[kind] for block, kind in bt.EVENT_BLOCKS.items()},
}

BLOCK_BODY = {**_OFFICIAL, **{old: _OFFICIAL[new] for old, new in bt.CANONICAL.items()}}

_FRAME = struct.Struct("<II")
_TRAILER = struct.Struct("<I")
_MIN_BLOCK = 12


def body_schema(block_type):
    """The body schema of a block type, or None for types that are not scap blocks."""
    return BLOCK_BODY.get(block_type)


def iter_blocks(data):
    """Walk the blocks of a decompressed capture, one after the other.

    Yields (offset, block_type, total_length, body_bytes); body_bytes runs from after the 8-byte
    header to before the trailer, padding included. This is the plain reference walk the fast
    reader is tested against, so it checks every framing rule, the trailer included.
    """
    offset = 0
    size = len(data)
    while offset < size:
        if size - offset < _FRAME.size:
            raise TruncatedError("input ends inside a block header", offset=offset)
        block_type, total_length = _FRAME.unpack_from(data, offset)
        name = bt.name(block_type)
        if total_length < _MIN_BLOCK or total_length % 4:
            raise CorruptBlockError(f"bad block total length {total_length}", offset=offset,
                                    block=name)
        if offset + total_length > size:
            raise TruncatedError(f"block of {total_length} bytes runs past the end of input",
                                 offset=offset, block=name)
        (trailer,) = _TRAILER.unpack_from(data, offset + total_length - 4)
        if trailer != total_length:
            raise CorruptBlockError(f"trailer {trailer} differs from total length "
                                    f"{total_length}", offset=offset, block=name)
        yield offset, block_type, total_length, bytes(data[offset + 8:offset + total_length - 4])
        offset += total_length


def parse_block(data, offset=0, **context):
    """Parse the block at `offset`: Container(offset, type, name, total_length, body, trailer).

    body is the parsed Container for known block types and the raw body bytes (padding included)
    for others (e.g. pcapng IDB/EPB). Errors become CorruptBlockError/TruncatedError naming the
    offset and block.
    """
    if len(data) - offset < _FRAME.size:
        raise TruncatedError("input ends inside a block header", offset=offset)
    block_type, total_length = _FRAME.unpack_from(data, offset)
    name = bt.name(block_type)
    if total_length < _MIN_BLOCK:
        raise CorruptBlockError(f"bad block total length {total_length}", offset=offset,
                                block=name)
    if offset + total_length > len(data):
        raise TruncatedError(f"block of {total_length} bytes runs past the end of input",
                             offset=offset, block=name)
    raw = bytes(data[offset + 8:offset + total_length - 4])
    (trailer,) = _TRAILER.unpack_from(data, offset + total_length - 4)
    schema = BLOCK_BODY.get(block_type)
    if schema is None:
        body = raw
    else:
        try:
            body = schema.parse(raw, **context)
        except ConstructError as exc:
            raise CorruptBlockError(f"cannot parse body: {one_line(exc)}", offset=offset,
                                    block=name) from exc
    return Container(offset=offset, type=block_type, name=name, total_length=total_length,
                     body=body, trailer=trailer)


def one_line(exc):
    """A construct error as one line: 'entries: stream read less than ...' (construct puts
    the path to the failing field on a line of its own)."""
    text = str(exc)
    path, _, detail = text.partition("\n")
    path = path.removeprefix("Error in path ").removeprefix("(parsing) -> ").strip()
    return f"{path}: {' '.join(detail.split())}" if detail else " ".join(text.split())


def build_block(block_type, body, **context):
    """Frame a body: header, body, zero padding to 4, trailer; total = round_up_4(8+body+4).

    `body` is a value for BLOCK_BODY[block_type], or bytes for any block type.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
    else:
        schema = BLOCK_BODY.get(block_type)
        if schema is None:
            raise ValueError(f"no schema for block type {bt.name(block_type)}")
        raw = schema.build(body, **context)
    total_length = round_up_4(8 + len(raw) + 4)
    padding = bytes(total_length - 12 - len(raw))
    return _FRAME.pack(block_type, total_length) + raw + padding + _TRAILER.pack(total_length)
