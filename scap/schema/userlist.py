"""User list blocks (UL V1 0x206, V2 0x220): users and groups, told apart by `kind`.

kind 0 is a user; libscap reads any other value as a group (writers use 1).
"""
from construct import GreedyBytes, Int8ul, Int32ul, Struct

from .common import EntriesWhileRoom, LengthPrefixedEntry, Raw, TaggedUnion, lstr

KIND_USER = 0
KIND_GROUP = 1

USER = Struct("uid" / Int32ul, "gid" / Int32ul, "name" / lstr, "homedir" / lstr, "shell" / lstr)
GROUP = Struct("gid" / Int32ul, "name" / lstr)


def user_entry(version):
    tail = Struct("rest" / Raw(GreedyBytes)) if version >= 2 else None
    entry = TaggedUnion(Struct("kind" / Int8ul), "kind", {KIND_USER: USER}, default=GROUP,
                        tail=tail)
    return LengthPrefixedEntry(entry, includes_self=True) if version >= 2 else entry


def user_list(version):
    return Struct(
        "entries" / EntriesWhileRoom(user_entry(version)),
        "padding" / Raw(GreedyBytes),
    )


USER_LIST = {1: user_list(1), 2: user_list(2)}
