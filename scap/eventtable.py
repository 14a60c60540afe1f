"""The event table: what each event id is called and which parameters it carries.

The facts live in data/events_*.tsv (written by tools/make_tables.py from the libs sources). Two
tables ship: libs HEAD (454 ids) to decode current files, and the one Debian's sysdig 0.29.3 was
built with (336 ids), whose names, types and print formats decide how 0.29.3 renders a param.
"""
import enum
import functools
import pathlib
from dataclasses import dataclass

import numpy as np

DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"


class PT(enum.IntEnum):
    """Parameter types (enum ppm_param_type)."""
    NONE = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    CHARBUF = 9
    BYTEBUF = 10
    ERRNO = 11
    SOCKADDR = 12
    SOCKTUPLE = 13
    FD = 14
    PID = 15
    FDLIST = 16
    FSPATH = 17
    SYSCALLID = 18
    SIGTYPE = 19
    RELTIME = 20
    ABSTIME = 21
    PORT = 22
    L4PROTO = 23
    SOCKFAMILY = 24
    BOOL = 25
    IPV4ADDR = 26
    DYN = 27
    FLAGS8 = 28
    FLAGS16 = 29
    FLAGS32 = 30
    UID = 31
    GID = 32
    DOUBLE = 33
    SIGSET = 34
    CHARBUFARRAY = 35
    CHARBUF_PAIR_ARRAY = 36
    IPV4NET = 37
    IPV6ADDR = 38
    IPV6NET = 39
    IPADDR = 40
    IPNET = 41
    MODE = 42
    FSRELPATH = 43
    ENUMFLAGS8 = 44
    ENUMFLAGS16 = 45
    ENUMFLAGS32 = 46
    FD32 = 47
    PID32 = 48


class PF(enum.IntEnum):
    """Print formats (enum ppm_print_format). The C name of PADDED_DEC is PF_10_PADDED_DEC."""
    NA = 0
    DEC = 1
    HEX = 2
    PADDED_DEC = 3
    ID = 4
    DIR = 5
    OCT = 6


class EC(enum.IntEnum):
    """Event categories. Values below 64 are exclusive kinds; 64 and up are bits added to them."""
    UNKNOWN = 0
    OTHER = 1
    FILE = 2
    NET = 3
    IPC = 4
    MEMORY = 5
    PROCESS = 6
    SLEEP = 7
    SYSTEM = 8
    SIGNAL = 9
    USER = 10
    TIME = 11
    PROCESSING = 12
    IO_READ = 32
    IO_WRITE = 33
    IO_OTHER = 34
    WAIT = 64
    SCHEDULER = 128
    INTERNAL = 256
    SYSCALL = 512
    TRACEPOINT = 1024
    PLUGIN = 2048
    METAEVENT = 4096
    ITER = 8192


class EF(enum.IntFlag):
    """Event flags (enum ppm_event_flags)."""
    NONE = 0
    CREATES_FD = 1
    DESTROYS_FD = 2
    USES_FD = 4
    READS_FROM_FD = 8
    WRITES_TO_FD = 16
    MODIFIES_STATE = 32
    UNUSED = 64
    WAITS = 128
    SKIPPARSERESET = 256
    OLD_VERSION = 512
    DROP_SIMPLE_CONS = 1024
    LARGE_PAYLOAD = 2048
    CONVERTER_MANAGED = 4096


# C-style module names (PT_FD, PF_HEX, EC_FILE, EF_USES_FD ...) for readers coming from the C headers
for _enum, _prefix in ((PT, "PT_"), (PF, "PF_"), (EC, "EC_"), (EF, "EF_")):
    globals().update({_prefix + m.name: m for m in _enum})
PF_10_PADDED_DEC = PF.PADDED_DEC

# HEAD tags each event with where it comes from; 0.29.3's evt.category never saw these bits
_SOURCE_BITS = EC.SYSCALL | EC.TRACEPOINT | EC.PLUGIN | EC.METAEVENT | EC.ITER
_IO_CATEGORIES = (EC.IO_READ, EC.IO_WRITE, EC.IO_OTHER)

# evt.category text of sysdig 0.29.3 (libsinsp filterchecks.cpp, TYPE_CATEGORY). It switches on
# the whole category value, so a kind combined with a bit would print 'unknown'.
_CATEGORY_TEXT = {
    EC.UNKNOWN: "unknown", EC.OTHER: "other", EC.FILE: "file", EC.NET: "net", EC.IPC: "IPC",
    EC.MEMORY: "memory", EC.PROCESS: "process", EC.SLEEP: "sleep", EC.SYSTEM: "system",
    EC.SIGNAL: "signal", EC.USER: "user", EC.TIME: "time", EC.PROCESSING: "processing",
    EC.WAIT: "wait", EC.SCHEDULER: "scheduler", EC.INTERNAL: "internal",
}


@dataclass(frozen=True)
class ParamInfo:
    name: str
    type: int
    fmt: int
    extra: object = None  # flags table name (str), dirfd param index (int) or DYN table name (str)


# Sub-types of DYN params: the u8 on disk indexes these (driver/dynamic_params_table.c, same in
# 0.29.3 and HEAD). keyctl's table (HEAD only) was not available to us: its values decode as bytes.
DYN_TABLES = {
    "sockopt_dynamic_param": (
        ParamInfo("", PT.BYTEBUF, PF.HEX), ParamInfo("", PT.ERRNO, PF.DEC),
        ParamInfo("", PT.UINT32, PF.DEC), ParamInfo("", PT.UINT64, PF.DEC),
        ParamInfo("", PT.RELTIME, PF.DEC),
    ),
    "ptrace_dynamic_param": (ParamInfo("", PT.UINT64, PF.HEX), ParamInfo("", PT.SIGTYPE, PF.DEC)),
    "bpf_dynamic_param": (ParamInfo("", PT.FD, PF.DEC), ParamInfo("", PT.ERRNO, PF.DEC)),
}


@dataclass(frozen=True)
class EventInfo:
    id: int
    name: str
    category: int
    flags: int
    params: tuple

    @property
    def direction(self):
        return ">" if self.id % 2 == 0 else "<"

    @property
    def is_enter(self):
        return self.id % 2 == 0

    @property
    def nparams(self):
        return len(self.params)

    @property
    def large_payload(self):
        """Param lengths are u32 instead of u16 on disk."""
        return bool(self.flags & EF.LARGE_PAYLOAD)

    @property
    def old_version(self):
        return bool(self.flags & EF.OLD_VERSION)

    @property
    def unused(self):
        return bool(self.flags & EF.UNUSED)

    @property
    def internal(self):
        return bool(self.category & EC.INTERNAL)

    @property
    def category_name(self):
        """sysdig 0.29.3's evt.category text; None for I/O events, whose text comes from their fd
        (file/net/ipc/unknown) and so needs fd state."""
        category = self.category & ~_SOURCE_BITS
        if category in _IO_CATEGORIES:
            return None
        return _CATEGORY_TEXT.get(category, "unknown")


# (the same parameter and flag texts recur across the ~800 rows of the two tables: each is
# parsed once; ParamInfo is frozen, so rows can share one)
@functools.cache
def _parse_param(text):
    name, ptype, fmt, *extra = text.split(":")
    ptype = PT[ptype]
    fmt = PF.PADDED_DEC if fmt == "10_PADDED_DEC" else PF[fmt]
    value = extra[0] if extra else None
    if value is not None and ptype == PT.FSRELPATH:
        value = int(value)
    return ParamInfo(name, ptype, fmt, value)


@functools.cache
def _bits(enum_cls, text):
    value = 0
    for name in filter(None, text.split("|")):
        value |= enum_cls[name]
    return int(value)


def parse_event_rows(text):
    """EventInfo for each row of an events_*.tsv file."""
    events = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        evid, name, category, flags, params = line.split("\t")
        events.append(EventInfo(
            id=int(evid), name=name, category=_bits(EC, category), flags=_bits(EF, flags),
            params=tuple(_parse_param(p) for p in params.split(", ") if p),
        ))
    return events


class EventTable:
    """Event id -> EventInfo, plus per-id numpy columns for the vectorized reader."""

    def __init__(self, events, version):
        self.version = version
        self._events = tuple(events)
        if [e.id for e in self._events] != list(range(len(self._events))):
            raise ValueError("event ids must be dense from 0")
        self.nparams = np.array([e.nparams for e in self._events], dtype=np.int32)
        self.large_payload = np.array([e.large_payload for e in self._events], dtype=bool)
        self.enter = np.array([e.is_enter for e in self._events], dtype=bool)
        self.category = np.array([e.category for e in self._events], dtype=np.int32)
        self.flags = np.array([e.flags for e in self._events], dtype=np.int32)
        self._by_name = {}
        for e in self._events:
            self._by_name.setdefault(e.name, []).append(e.id)

    @classmethod
    def from_file(cls, path, version):
        return cls(parse_event_rows(pathlib.Path(path).read_text()), version)

    @property
    def max_id(self):
        """PPM_EVENT_MAX: ids at or above it are unknown to this table."""
        return len(self._events)

    def __len__(self):
        return len(self._events)

    def __getitem__(self, evid):
        if not 0 <= evid < len(self._events):
            raise KeyError(evid)
        return self._events[evid]

    def __iter__(self):
        return iter(self._events)

    def __contains__(self, evid):
        return isinstance(evid, int) and 0 <= evid < len(self._events)

    def ids_named(self, name):
        """All ids (every version, both directions) whose display name is name."""
        return tuple(self._by_name.get(name, ()))

    def __repr__(self):
        return f"<EventTable {self.version} {len(self)} ids>"


@functools.cache
def libs():
    """The table of current falcosecurity/libs (HEAD snapshot, 454 ids)."""
    return EventTable.from_file(DATA_DIR / "events_libs.tsv", "libs")


@functools.cache
def sysdig_0293():
    """The table Debian's sysdig 0.29.3 was built with (336 ids)."""
    return EventTable.from_file(DATA_DIR / "events_0293.tsv", "0293")


def table_for(version):
    return {"libs": libs, "0293": sysdig_0293}[version]()


def _type_text(ptype):
    return "DYNAMIC" if ptype == PT.DYN else PT(ptype).name


def listed_events(table):
    """The events `sysdig -L` shows: none unused, old-version or internal."""
    return [e for e in table if not (e.unused or e.old_version or e.internal)]


def format_event_list(table):
    """The text of `sysdig -L` for this table, one line per event, newline-terminated."""
    lines = []
    for e in listed_events(table):
        params = ", ".join(f"{_type_text(p.type)} {p.name}" for p in e.params)
        lines.append(f"{e.direction} {e.name}({params})")
    return "".join(line + "\n" for line in lines)
