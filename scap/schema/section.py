"""Section header block (SHB, 0x0A0D0D0A), versions 1.0, 1.1 and 1.2: one layout for all three."""
from construct import Const, GreedyBytes, Int16ul, Int32ul, Int64ul, Struct

from .common import Raw

BYTE_ORDER_MAGIC = 0x1A2B3C4D
UNKNOWN_SECTION_LENGTH = 0xFFFFFFFFFFFFFFFF

SECTION_HEADER = Struct(
    # Big-endian sections exist in pcapng but libscap never wrote or read them.
    "byte_order_magic" / Const(BYTE_ORDER_MAGIC, Int32ul),
    "major_version" / Int16ul,
    "minor_version" / Int16ul,
    "section_length" / Int64ul,
    # pcapng option TLVs (Wireshark's editcap adds them) plus any padding: kept verbatim. Writers
    # aiming at sysdig 0.29.3 must leave this empty (it cannot skip them).
    "options" / Raw(GreedyBytes),
)
