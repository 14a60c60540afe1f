"""Fd list blocks (FDL V1 0x203, V2 0x218): a thread id, then that thread's fd table.

Each entry is fd, ino, type, then a payload chosen by the fd type (scap_fd_type). V2 prefixes each
entry with its length (including itself), which lets readers skip unknown types and find the
optional `dev` of FILE_V2.
"""
import enum

from construct import Bytes, GreedyBytes, Int8ul, Int16ul, Int32ul, Int64sl, Int64ul, Struct

from .common import EntriesWhileRoom, IfRoom, LengthPrefixedEntry, Raw, TaggedUnion, lstr


class FdType(enum.IntEnum):
    FILE = 1
    DIRECTORY = 2
    IPV4_SOCK = 3
    IPV6_SOCK = 4
    IPV4_SERVSOCK = 5
    IPV6_SERVSOCK = 6
    FIFO = 7
    UNIX_SOCK = 8
    EVENT = 9
    UNSUPPORTED = 10
    SIGNALFD = 11
    EVENTPOLL = 12
    INOTIFY = 13
    TIMERFD = 14
    NETLINK = 15
    FILE_V2 = 16
    BPF = 17
    USERFAULTFD = 18
    IOURING = 19
    MEMFD = 20
    PIDFD = 21


# Addresses are raw network-order bytes; ports are host-order (little-endian) u16.
def _socket(addr_size):
    return Struct(
        "sip" / Bytes(addr_size), "dip" / Bytes(addr_size),
        "sport" / Int16ul, "dport" / Int16ul, "l4proto" / Int8ul,
    )


def _server_socket(addr_size):
    return Struct("ip" / Bytes(addr_size), "port" / Int16ul, "l4proto" / Int8ul)


NAMED = Struct("name" / lstr)

PAYLOADS_COMMON = {
    **{t: NAMED for t in FdType if t not in (
        FdType.IPV4_SOCK, FdType.IPV6_SOCK, FdType.IPV4_SERVSOCK, FdType.IPV6_SERVSOCK,
        FdType.UNIX_SOCK, FdType.FILE_V2)},
    FdType.IPV4_SOCK: _socket(4),
    FdType.IPV6_SOCK: _socket(16),
    FdType.IPV4_SERVSOCK: _server_socket(4),
    FdType.IPV6_SERVSOCK: _server_socket(16),
    # source and destination are kernel socket addresses
    FdType.UNIX_SOCK: Struct("source" / Int64ul, "destination" / Int64ul, "name" / lstr),
}

# FILE_V2 dates from 2017, before FDL_V2: in V1 it can only be read without dev.
PAYLOADS_V1 = {**PAYLOADS_COMMON,
               FdType.FILE_V2: Struct("open_flags" / Int32ul, "name" / lstr)}
PAYLOADS_V2 = {**PAYLOADS_COMMON,
               FdType.FILE_V2: Struct("open_flags" / Int32ul, "name" / lstr,
                                      "dev" / IfRoom(Int32ul))}

ENTRY_HEAD = Struct("fd" / Int64sl, "ino" / Int64ul, "type" / Int8ul)

# V1 has no entry length, so an unknown type cannot be skipped: TaggedUnion raises.
FD_ENTRY_V1 = TaggedUnion(ENTRY_HEAD, "type", PAYLOADS_V1)

FD_ENTRY_V2 = LengthPrefixedEntry(TaggedUnion(
    ENTRY_HEAD, "type", PAYLOADS_V2,
    # libscap reads an unknown type as UNSUPPORTED "unknown-type:[N]"; here its payload stays raw.
    default=Struct("raw" / GreedyBytes),
    tail=Struct("rest" / Raw(GreedyBytes)),
), includes_self=True)


def fd_list(entry):
    return Struct(
        "tid" / Int64ul,
        "entries" / EntriesWhileRoom(entry),
        "padding" / Raw(GreedyBytes),
    )


FD_LIST = {1: fd_list(FD_ENTRY_V1), 2: fd_list(FD_ENTRY_V2)}
