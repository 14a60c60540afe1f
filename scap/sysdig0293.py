"""The rules of Debian's sysdig 0.29.3 that the file format does not state: the one place the
rest of the engine asks.

A capture says which events happened; what sysdig 0.29.3 makes of them depends on the libs it
was built with (event table of 336 ids, PPM_SC codes below 329) and on how it opens a file:

* which events it reads at all (ids it knows), and so numbers (evt.num counts those only);
* which it hides: internal types (procinfo, container, ...), state-only copies (flag bit 0
  of the EVF blocks), and the container events leading a section, which it consumes while
  the file is opened;
* which table names and types an event's parameters (its own, for the ids it knows: current
  libs renamed or appended some, and 0.29.3 reads only what its table lists);
* which events leave a thread's last enter and latency alone (EF_SKIPPARSERESET, as its
  table flags them, plus the scheduler switch).

Everything here is per event id, cached as numpy lookup arrays over the 16-bit id space.
"""
import functools

import numpy as np

from . import eventtable
from .eventtable import EC, EF

#: sysdig 0.29.3 knows event ids below this; it skips (and does not number) the others
EVENT_MAX = 336
#: number of PPM_SC syscall codes it knows (the -S table's generic entries)
SC_MAX = 329
#: container events sysdig consumes while it opens a file, when they lead a section (the
#: user/group events of later libs have ids >= EVENT_MAX and never reach it)
LEADING_STATE_TYPES = frozenset({228, 272, 324})


def table():
    """Its event table (names, parameters, flags, categories of the 336 ids)."""
    return eventtable.sysdig_0293()


def counted(types):
    """Per event: does sysdig read it (and give it an evt.num)?"""
    return np.asarray(types) < EVENT_MAX


def event_numbers(types):
    """evt.num of every event: 1, 2... over the events read, 0 for the others."""
    keep = counted(types)
    num = np.cumsum(keep, dtype=np.uint32 if len(keep) < 1 << 32 else np.uint64)
    num *= keep  # in place: a capture's worth of memory is not allocated twice
    return num


@functools.cache
def internal_types():
    """Per event id: never printed (internal category, or an id it does not know)."""
    old = table()
    internal = np.zeros(65536, dtype=bool)
    internal[EVENT_MAX:] = True
    for i in range(len(old)):
        internal[i] = bool(old[i].category & EC.INTERNAL)
    return internal


@functools.cache
def skips_reset():
    """Per event id: does sysdig skip its per-thread reset for it (EF_SKIPPARSERESET)?
    Current libs dropped the flag from some events (the switch among them): 0.29.3's table
    decides for the ids it knows."""
    old, new = table(), eventtable.libs()
    flags = new.flags.copy()
    flags[:len(old)] = old.flags
    skips = np.zeros(65536, dtype=bool)
    skips[:len(new)] = (flags & int(EF.SKIPPARSERESET)) != 0
    # the scheduler switch is not flagged, but sysdig's reset leaves the thread's last enter
    # and latency alone for it too (evt.latency of a switch is its thread's last latency)
    skips[list(new.ids_named("switch"))] = True
    return skips


def leading_state_runs(types, starts, state_types=LEADING_STATE_TYPES, event_max=EVENT_MAX):
    """[(first, end)] of the run of container events (and events it does not read) leading
    each section that starts at one of `starts`: sysdig consumes them while it opens the
    file. Found without looking at the rest of the capture."""
    t = np.asarray(types).ravel()
    n = len(t)
    starts = sorted(set(int(a) for a in starts if 0 <= a < n))
    ends = starts[1:] + [n]
    state = np.array(sorted(state_types))
    runs = []
    for a, b in zip(starts, ends):
        # the leading run is short: look at growing windows instead of the whole capture
        pos, step = a, 256
        while pos < b:
            window = t[pos:min(b, pos + step)]
            passive = np.isin(window, state) | (window >= event_max)
            first = np.flatnonzero(~passive)
            if len(first):
                runs.append((a, pos + int(first[0])))
                break
            pos += step
            step *= 2
        else:
            runs.append((a, b))
    return runs


@functools.cache
def reads_param(name, old_name=None):
    """Per event id: does 0.29.3 read the parameter current libs call `name` (its own table
    places a parameter of that name at the same position, within its own parameter count)?
    `old_name`: what 0.29.3 calls it, where libs renamed it (execve's pgid became vpgid)."""
    from .capture import _params_by_name
    old = table()
    out = np.zeros(65536, dtype=bool)
    for event_id, k, _ in _params_by_name().get(name, ()):
        if event_id < len(old):
            params = old[event_id].params
            out[event_id] = k < len(params) and params[k].name == (old_name or name)
    return out


def event_info(event_id):
    """The table entry sysdig's rules use for an event id: 0.29.3's own for the ids it
    knows, current libs' for later ones (which it skips, but a capture writer or the -L
    listing of current events still needs)."""
    old = table()
    return old[event_id] if event_id < len(old) else eventtable.libs()[event_id]


def per_type(attribute):
    """[event_info(i).attribute for every id current libs know] (flags, category...)."""
    return [getattr(event_info(i), attribute) for i in range(len(eventtable.libs()))]


@functools.cache
def has_flag(flag):
    """Per event id (bool over the 16-bit id space): event_info(id) has the EF flag."""
    out = np.zeros(65536, dtype=bool)
    flags = np.asarray(per_type("flags"), dtype=np.int64)
    out[:len(flags)] = (flags & int(flag)) != 0
    return out
