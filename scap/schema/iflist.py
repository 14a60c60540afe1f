"""Interface list blocks (IL V1 0x205, V2 0x219): the host's IPv4/IPv6 interfaces.

Types 3/4 are the pre-2014-02 entries, which had no linkspeed (those files used the fd-type numbers
IPV4_SOCK/IPV6_SOCK as interface types). V2's entry_len does NOT count its own 4 bytes, unlike
PL_V9, FDL_V2 and UL_V2.
"""
import enum

from construct import (
    Bytes, Check, GreedyBytes, If, IfThenElse, Int16ul, Int64ul, Rebuild, Struct, len_, this,
)

from .common import EntriesWhileRoom, LengthPrefixedEntry, Raw


class IfType(enum.IntEnum):
    IPV4 = 1
    IPV6 = 2
    IPV4_NOLINKSPEED = 3
    IPV6_NOLINKSPEED = 4


def _is_ipv6(ctx):
    return ctx.type in (IfType.IPV6, IfType.IPV6_NOLINKSPEED)


def _address():
    return IfThenElse(_is_ipv6, Bytes(16), Bytes(4))


def interface_entry(version):
    fields = [
        "type" / Int16ul,
        # Any other type is fatal for libscap, even in V2 where it could be skipped.
        Check(lambda ctx: ctx.type in tuple(IfType)),
        "namelen" / Rebuild(Int16ul, len_(this.name)),
        # raw network-order bytes
        "addr" / _address(),
        "netmask" / _address(),
        "bcast" / _address(),
        "linkspeed" / If(lambda ctx: ctx.type in (IfType.IPV4, IfType.IPV6), Int64ul),
        "name" / Bytes(this.namelen),   # not NUL-terminated
    ]
    if version >= 2:
        fields.append("rest" / Raw(GreedyBytes))
    return Struct(*fields)


def interface_list(version):
    entry = interface_entry(version)
    if version >= 2:
        entry = LengthPrefixedEntry(entry, includes_self=False)
    return Struct(
        "entries" / EntriesWhileRoom(entry),
        "padding" / Raw(GreedyBytes),
    )


INTERFACE_LIST = {1: interface_list(1), 2: interface_list(2)}
