"""Merge captures into one: their events interleaved by time in one section, whose tables hold
every source's processes, fds, users and interfaces (`scaptool merge A B ... -w OUT`).

Why one section with reconciled tables, not a section per source: a reader takes a section's
tables, then its events, and starts afresh at the next section, so events in sections of their
own cannot interleave. One section needs one process table, and two machines use the same
thread ids (pid 1 is on every machine): the ids of a later machine that an earlier one uses
are given new, unused numbers, everywhere they appear: its process list (tid, pid, ptid,
session and group leaders), its fd lists, the thread of each event, and the event parameters
that name a host thread (clone's child, kill's target, execve's tid/pid/ptid, switch's next...:
the PID parameters, but for vtid/vpid, which are the namespace's own). Captures of one machine
(same hostname and boot time: rotated files, say) share their ids, as they share the threads;
a thread in the tables of two of them is listed once, as the first has it.

What cannot be reconciled is said, not guessed: users are one table by uid in a reader, so a
uid that two machines name differently keeps the first machine's name (`conflicts` lists
them); the machine block is the first capture's (its hostname, CPUs and boot time); the
interface list is the union of all.
"""
import numpy as np

from . import blocktypes as bt
from .errors import ScapError
from .events import V1_HEADER, V2_HEADER
from .eventtable import PT, libs
from .param_table import ParamTable
from .writer import Writer

# PID parameters that are a namespace's own numbers, not the host's: never renumbered
_NAMESPACE_IDS = {"vtid", "vpid"}
# process-list fields that hold host thread ids (-1 or 0: none)
_PL_IDS = ("tid", "pid", "ptid", "sid", "vpgid", "pgid")


class MergeError(ScapError):
    """The captures cannot be merged as given."""


def merge(paths, out, *, compress=False):
    """Merge the captures at `paths` into `out` (written to a temporary name, renamed at the
    end). Returns a Merged: events written, the ids renumbered per capture, and conflicts."""
    from . import open as open_capture
    if len(paths) < 2:
        raise MergeError("merge takes two captures or more")
    captures = []
    try:
        for path in paths:
            captures.append(open_capture(path))
        sources = [_Source(c) for c in captures]
        _renumber(sources)
        merged = Merged(renumbered=[len(s.mapping) for s in sources])
        with Writer(out, compress=compress) as writer:
            writer.write_section_header()
            for block in _tables(sources, merged):
                writer.write(block)
            merged.events = _write_events(writer, sources)
        return merged
    finally:
        for c in captures:
            c.close()


class Merged:
    def __init__(self, renumbered):
        self.renumbered = renumbered   # per capture: the thread ids given new numbers
        self.conflicts = []            # lines: what could not be kept as the source had it
        self.events = 0


class _Source:
    """One capture to merge: its tables (parsed), its machine, the ids it uses."""

    def __init__(self, capture):
        from . import metadata
        if len(capture.sections) != 1:
            raise MergeError(f"a capture of {len(capture.sections)} sections: merge takes "
                             "captures of one section (as sysdig and Falco write them)",
                             path=capture.path)
        self.capture = capture
        buffer, section = capture.section_metadata(0)
        self.blocks = [(btype, body) for btype, body in metadata.parsed_blocks(buffer, section)
                       if btype in metadata._UPGRADES]
        machine = next((body for btype, body in self.blocks if btype == bt.MI), {})
        self.machine = (machine.get("hostname"), machine.get("boot_ts_epoch")) \
            if machine else (id(self),)
        self.mapping = {}
        self._params = None

    def pid_params(self):
        """(flat indexes into the ParamTable, the table) of every host-id PID parameter."""
        if self._params is None:
            h = self.capture.headers
            table = ParamTable(self.capture.buffer, h)
            wanted = _pid_param_positions()
            event = np.repeat(np.arange(len(h), dtype=np.int64), table.nparams)
            k = np.arange(len(event), dtype=np.int64) - table.first[event]
            types = np.asarray(h.type, dtype=np.int64)[event]
            is_pid = wanted[np.minimum(types, len(wanted) - 1), np.minimum(k, 31)] & (k < 32)
            flat = np.flatnonzero(is_pid & (table.lengths == 8))
            self._params = (flat, table)
        return self._params

    def ids(self):
        """Every host thread id this capture names (positive ones)."""
        found = [np.asarray(self.capture.headers.tid, dtype=np.int64)]
        for btype, body in self.blocks:
            if btype in bt.PROCESS_LISTS:
                found.append(np.array([e.get(n) for e in body.entries for n in _PL_IDS
                                       if e.get(n) is not None], dtype=np.int64))
            elif btype in (bt.FDL_V1, bt.FDL_V2):
                found.append(np.array([body.tid], dtype=np.int64))
        flat, table = self.pid_params()
        found.append(_int64_at(self.capture.buffer, table.offsets[flat]))
        ids = np.unique(np.concatenate(found))
        return ids[ids > 0]


def _pid_param_positions():
    """[event id, parameter index] -> is a host thread id (PID, not vtid/vpid)."""
    table = libs()
    wanted = np.zeros((table.max_id + 2, 32), dtype=bool)
    for info in table:
        for k, param in enumerate(info.params[:32]):
            if param.type in (PT.PID, PT.PID32) and param.name not in _NAMESPACE_IDS:
                wanted[info.id, k] = param.type == PT.PID   # (PID32: 4 bytes, none here)
    return wanted


def _int64_at(buf, offsets):
    if not len(offsets):
        return np.zeros(0, dtype=np.int64)
    idx = offsets[:, None] + np.arange(8)
    return np.asarray(buf)[idx].copy().view("<i8").ravel()


def _renumber(sources):
    """Give each machine's thread ids that an earlier machine uses new numbers, above every
    id in use."""
    used = np.zeros(0, dtype=np.int64)
    by_machine = {}
    for source in sources:
        by_machine.setdefault(source.machine, []).append(source)
    ids_of = {m: np.unique(np.concatenate([s.ids() for s in group]))
              for m, group in by_machine.items()}
    top = max([int(ids.max()) for ids in ids_of.values() if len(ids)] + [0])
    for machine, group in by_machine.items():
        ids = ids_of[machine]
        taken = np.intersect1d(ids, used)
        mapping = {int(old): top + 1 + k for k, old in enumerate(taken)}
        top += len(taken)
        for source in group:
            source.mapping = mapping
        used = np.union1d(used, ids)
        if mapping:
            used = np.union1d(used, np.fromiter(mapping.values(), dtype=np.int64))


def _mapped(values, mapping):
    """values (int64 array) with the mapping's keys replaced."""
    if not mapping or not len(values):
        return values
    keys = np.fromiter(mapping.keys(), dtype=np.int64)
    news = np.fromiter(mapping.values(), dtype=np.int64)
    order = np.argsort(keys)
    keys, news = keys[order], news[order]
    at = np.clip(np.searchsorted(keys, values), 0, len(keys) - 1)
    return np.where(keys[at] == values, news[at], values)


def _tables(sources, merged):
    """The merged section's metadata blocks, current versions: the first machine block, the
    interfaces and users of all, then each capture's process and fd lists, renumbered."""
    from construct import Container

    from . import metadata
    first = sources[0]
    blocks = [metadata.upgrade(bt.MI, body) for btype, body in first.blocks if btype == bt.MI]
    interfaces, seen_if = [], set()
    users, seen_users = [], {}
    for source in sources:
        renamed = []
        for btype, body in source.blocks:
            if btype in (bt.IL_V1, bt.IL_V2):
                for entry in metadata._UPGRADES[btype][1](body).entries:
                    key = (entry.get("name"), entry.get("addr"), entry.get("type"))
                    if key not in seen_if:
                        seen_if.add(key)
                        interfaces.append(entry)
            elif btype in (bt.UL_V1, bt.UL_V2):
                for entry in metadata._UPGRADES[btype][1](body).entries:
                    group = entry.get("uid") is None   # (a group's entry has no uid)
                    key = ("group" if group else "uid",
                           entry.get("gid") if group else entry.get("uid"))
                    name = entry.get("name")
                    if key not in seen_users:
                        seen_users[key] = name
                        users.append(entry)
                    elif seen_users[key] != name:
                        renamed.append(f"{key[0]} {key[1]} is {_text(name)} here, "
                                       f"{_text(seen_users[key])} before")
        if renamed:
            merged.conflicts.append(
                f"{source.capture.path}: {len(renamed)} users and groups are named otherwise "
                f"in a capture before it, whose names the merged capture shows "
                f"({'; '.join(renamed[:3])}{'; ...' if len(renamed) > 3 else ''})")
    if interfaces:
        blocks.append(metadata.upgrade(bt.IL_V2, Container(entries=interfaces, padding=b"")))
    if users:
        blocks.append(metadata.upgrade(bt.UL_V2, Container(entries=users, padding=b"")))
    listed = {}   # machine -> thread ids whose process / fd list is written
    for source in sources:
        threads, fd_lists = listed.setdefault(source.machine, (set(), set()))
        for btype, body in source.blocks:
            if btype in bt.PROCESS_LISTS:
                entries = []
                for entry in metadata._UPGRADES[btype][1](body).entries:
                    if entry.tid in threads:
                        continue
                    threads.add(entry.tid)
                    for name in _PL_IDS:
                        value = entry.get(name)
                        if value is not None and value in source.mapping:
                            entry[name] = source.mapping[value]
                    entries.append(entry)
                if entries:
                    blocks.append(metadata.upgrade(bt.PL_V9, Container(entries=entries,
                                                                      padding=b"")))
            elif btype in (bt.FDL_V1, bt.FDL_V2):
                if body.tid in fd_lists:
                    continue
                fd_lists.add(body.tid)
                body = metadata._UPGRADES[btype][1](body)
                body = Container(body, tid=source.mapping.get(body.tid, body.tid)) \
                    if "tid" in body else body
                blocks.append(metadata.upgrade(bt.FDL_V2, body))
    return blocks


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _write_events(writer, sources):
    """Every source's events, in time order (a tie: the earlier capture first), their thread
    ids renumbered; the bytes of each event copied, its PID parameters rewritten."""
    columns = {name: [] for name in ("ts", "tid", "cpu", "type", "start", "length",
                                     "nparams", "flags", "source")}
    buffers, base = [], 0
    for k, source in enumerate(sources):
        c = source.capture
        h = c.headers
        buf = np.asarray(c.buffer)
        if source.mapping:   # the PID parameters rewritten in a copy of the bytes
            buf = buf.copy()
            flat, table = source.pid_params()
            offsets = table.offsets[flat]
            values = _int64_at(buf, offsets)
            new = _mapped(values, source.mapping)
            changed = np.flatnonzero(new != values)
            if len(changed):
                idx = offsets[changed][:, None] + np.arange(8)
                buf[idx] = new[changed].astype("<i8").view(np.uint8).reshape(-1, 8)
        header = np.where(h.lens_start - h.record == V2_HEADER, V2_HEADER, V1_HEADER)
        quirk = (header == V1_HEADER) & np.isin(h.type, (280, 286))
        columns["ts"].append(np.asarray(h.ts, dtype=np.uint64))
        columns["tid"].append(_mapped(np.asarray(h.tid, dtype=np.int64), source.mapping))
        columns["cpu"].append(np.asarray(h.cpu, dtype=np.uint16))
        columns["type"].append(np.asarray(h.type, dtype=np.int64))
        columns["start"].append(np.asarray(h.lens_start, dtype=np.int64) + base)
        columns["length"].append(h.length.astype(np.int64) - header - np.where(quirk, 3, 0))
        columns["nparams"].append(np.asarray(h.nparams, dtype=np.int64))
        columns["flags"].append(np.asarray(h.dump_flags, dtype=np.uint32))
        columns["source"].append(np.full(len(h), k, dtype=np.int64))
        buffers.append(buf)
        base += len(buf)
    col = {name: np.concatenate(parts) for name, parts in columns.items()}
    order = np.lexsort((np.arange(len(col["ts"])), col["source"], col["ts"]))
    payload = np.concatenate(buffers)
    writer.write_events(col["ts"][order], col["tid"][order], col["cpu"][order],
                        col["type"][order], payload, col["start"][order],
                        col["length"][order], col["nparams"][order], col["flags"][order])
    return len(order)


