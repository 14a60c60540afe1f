"""The common fd-table events applied in bulk, between the rare ones (used by query.fds).

sysdig's fd state is a replay of events in order, but most of the events that change it do
not depend on that state: an open, socket, pipe, accept, eventfd... exit creates an entry
computed from its own parameters (and its enter's), a close removes one, a getsockopt only
sets the thread's lastevent_fd. Only the thread model (which table a thread uses, its cwd)
and whether a close finds its fd come from the state. The thread model changes only at rare
events (clone, execve, chdir, fchdir), which FdState still replays one by one together with
the events that read or patch existing entries (dup, fcntl F_DUPFD, bind, connect,
sendto/recvfrom, openat relative to a directory fd). So the common events between two
replayed ones form a *batch* that sees one fixed thread model, and a batch is applied with
array operations: per (table, fd) key, each create's version ends at the key's next create
(at its row) or close (at the row after it, as sysdig removes closed fds before the next
event); only the entries still open after the batch become table objects for the replay.
A replayed row ends the batch before it only when the two share state (its thread, its
table, the cwd it changes, the thread it creates: CommonEvents.must_apply_before), so most
batches run across many replayed rows.

This module first decodes every common event's effect at once (:class:`CommonEvents`), then
applies batches of them to FdState's machine (CommonEvents.apply).
"""
import functools

import numpy as np
import polars as pl

from scaptool.query import fds as F
from scaptool.query import paths
from scaptool.scap import eventtable

# what an action does to its (table, fd) key
CREATE, CLOSE = 1, 2
# where a create's fd name comes from: fixed; an absolute path that only becomes
# /PATH_TOO_LONG if the thread's cwd is long (open, creat); a relative path joined to the cwd
NAME_FIXED, NAME_ABS_CWD, NAME_REL = 0, 1, 2

_FIELDS = ("type", "name", "sip", "sport", "dip", "dport", "l4proto", "role", "dev",
           "connected", "ino", "openflags")


def _ints(capture, name, rows):
    """(values, ok) of the integer param called `name` at `rows`, as _Params.int reads it:
    little-endian signed of 1, 2, 4 or 8 bytes; ok is False where absent or of another size."""
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    return F.decode_ints(capture, *F.param_slices_at(capture, name, rows))


def _texts(capture, name, rows):
    """The text of param `name` at each row (_Params.text: cut at NUL, "" where absent),
    decoded for all rows at once: the values are gathered into one array, cut at their
    first NUL, and turned into strings by pyarrow when all are ASCII (else by Python's
    lenient UTF-8 decoding, as _text does)."""
    import pyarrow as pa
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return []
    offsets, lengths, present = F.param_slices_at(capture, name, rows)
    lengths = np.where(present, lengths, 0)
    data = _gathered(np.asarray(capture.buffer), offsets, lengths)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    zeros = np.flatnonzero(data == 0)
    z = np.searchsorted(zeros, starts)
    first = zeros[np.minimum(z, len(zeros) - 1)] if len(zeros) else ends
    cut = np.where((z < len(zeros)) & (first < ends), first, ends) - starts
    text = _gathered(data, starts, cut)
    bounds = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(cut, out=bounds[1:])
    if (text < 0x80).all():
        return pa.LargeStringArray.from_buffers(len(rows), pa.py_buffer(bounds),
                                                pa.py_buffer(text.tobytes())).to_pylist()
    raw = text.tobytes()
    return [raw[a:b].decode("utf-8", "replace")
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def _folded(paths_):
    """paths.normalize of each path (an object array), computed once per distinct path."""
    if not len(paths_):
        return []
    column = pl.Series(paths_.tolist(), dtype=pl.String)
    uniq = column.unique()
    folded = pl.Series([paths.normalize(p) for p in uniq.to_list()], dtype=pl.String)
    return column.replace_strict(uniq, folded).to_numpy().astype(object)


_OPEN, _CREAT, _OPENAT = 1, 2, 3


@functools.cache
def _open_flavours():
    """Per event id: open, creat or openat(2) (the parsers differ a little)."""
    table = eventtable.libs()
    out = np.zeros(65536, dtype=np.int8)
    for i in range(len(table)):
        out[i] = {"open": _OPEN, "creat": _CREAT, "openat": _OPENAT,
                  "openat2": _OPENAT}.get(table[i].name, 0)
    return out


def _gathered(buf, offsets, lengths):
    """The bytes buf[offsets[i]:offsets[i] + lengths[i]] of every i, end to end."""
    ends = np.cumsum(lengths)
    idx = np.repeat(offsets - (ends - lengths), lengths) + np.arange(int(ends[-1]) if
                                                                       len(ends) else 0)
    return buf[idx]


class CommonEvents:
    """The effects of the common fd events of a capture, decoded for all of them at once.

    * ``replay``: the rows FdState must still replay one by one (rare kinds, and common ones
      that read the table, like an openat relative to a directory fd);
    * actions, sorted by (row, sub): ``a_row``, ``a_sub`` (a pipe's two fds), ``a_op``
      (CREATE/CLOSE), ``a_fd`` (-1 for a close: its fd is the thread's lastevent_fd),
      ``a_tpl`` (the created entry, an index into the templates), ``a_name_kind`` and
      ``a_path`` (a name joined to the thread's cwd when the batch is applied);
    * per row that sets lastevent_fd: ``s_row``, ``s_fd``;
    * failed-open names: set at once in FdState.null_path where they need no cwd (start),
      else ``n_row``/``n_path``, joined to the cwd when their batch is applied.
    """

    def __init__(self, state, rows):
        self.state = state
        cap = state.capture
        kinds = state.kinds[rows]
        self.tpl = {k: [] for k in _FIELDS}
        actions = []      # (rows, subs, ops, fds, tpls, name_kinds, paths)
        sets = []         # (rows, fds)
        replay = [self._can_change(rows[~np.isin(kinds, _COMMON)])]
        self._nulls = []  # (rows, fixed names or None, paths to join to the cwd)
        self._odd = []    # common rows the replay handles after all

        fcntl = rows[kinds == F.K_FCNTL_X]
        replay.append(self._dup_fcntls(fcntl))
        opens = rows[kinds == F.K_OPEN_X]
        replay.append(self._opens(opens, actions, sets))
        self._closes(rows[kinds == F.K_CLOSE_X], actions)
        self._sockets(rows[kinds == F.K_SOCKET_X], actions, sets)
        self._pairs(rows[kinds == F.K_PIPE_X], F.FIFO, actions, sets)
        self._pairs(rows[kinds == F.K_SOCKETPAIR_X], F.UNIX_SOCK, actions, sets)
        self._singles(rows[kinds == F.K_SINGLE_X], actions, sets)
        self._accepts(rows[kinds == F.K_ACCEPT_X], actions, sets)
        got = rows[kinds == F.K_GETSOCKOPT_X]
        fd, ok = _ints(cap, "fd", got)
        sets.append((got[ok], fd[ok]))

        self.replay = np.sort(np.concatenate(replay + self._odd)).astype(np.int64)
        cols = [np.concatenate([np.asarray(a[k]) for a in actions]) if actions else
                np.zeros(0) for k in range(8)]
        order = np.lexsort((cols[1], cols[0])) if len(cols[0]) else np.zeros(0, np.int64)
        self.a_row = cols[0][order].astype(np.int64)
        self.a_sub = cols[1][order].astype(np.int64)
        self.a_op = cols[2][order].astype(np.int64)
        self.a_fd = cols[3][order].astype(np.int64)
        self.a_tpl = cols[4][order].astype(np.int64)
        self.a_name_kind = cols[5][order].astype(np.int64)
        self.a_path = np.asarray(cols[6], dtype=object)[order] if len(order) else \
            np.zeros(0, dtype=object)
        self.a_plen = cols[7][order].astype(np.int64)
        s_rows = np.concatenate([s[0] for s in sets]).astype(np.int64) if sets else \
            np.zeros(0, np.int64)
        s_fds = np.concatenate([s[1] for s in sets]).astype(np.int64) if sets else \
            np.zeros(0, np.int64)
        order = np.argsort(s_rows, kind="stable")
        self.s_row, self.s_fd = s_rows[order], s_fds[order]
        self.tpl_arrays = {k: np.asarray(v, dtype=object) for k, v in self.tpl.items()}

    # -- templates of created entries
    def _templates(self, **cols):
        """Append created entries (columns of equal length); their template indices."""
        n = len(next(iter(cols.values())))
        start = len(self.tpl["type"])
        defaults = {"name": "", "sip": None, "sport": 0, "dip": None, "dport": 0, "l4proto": 0,
                    "role": F.ROLE_NONE, "dev": 0, "connected": False, "ino": 0,
                    "openflags": 0}
        for k in _FIELDS:
            v = cols.get(k)
            if v is None:
                self.tpl[k].extend([defaults[k]] * n)
            else:
                self.tpl[k].extend(v.tolist() if isinstance(v, np.ndarray) else list(v))
        return np.arange(start, start + n, dtype=np.int64)

    # -- per kind
    def _dup_fcntls(self, rows):
        """fcntl exits change nothing unless their stored enter's command is F_DUPFD*."""
        stored = self.state.stored[rows]
        cmd, ok = _ints(self.state.capture, "cmd", np.maximum(stored, 0))
        dup = (stored >= 0) & ok & np.isin(cmd, (F.PPM_FCNTL_F_DUPFD,
                                                  F.PPM_FCNTL_F_DUPFD_CLOEXEC))
        return self._can_change(rows[dup])

    def _can_change(self, rows):
        """The rows of replayed kinds that pass the checks FdState._apply makes before it
        looks at any state (a successful call, paired where it must be, a non-empty address
        or tuple): the others return at once, so they need no replay (nor a batch boundary).
        Most sendto/recvfrom exits carry no tuple, and most are dropped here."""
        st, cap = self.state, self.state.capture
        kinds = st.kinds[rows]
        res, ok = _ints(cap, "res", rows)
        paired = st.enter[rows] >= 0
        success = ok & (res >= 0)
        keep = np.ones(len(rows), dtype=bool)
        for kind in (F.K_CLONE_X, F.K_EXECVE_X, F.K_CHDIR_X):
            keep[kinds == kind] = success[kinds == kind]
        for kind in (F.K_DUP_X, F.K_FCNTL_X, F.K_FCHDIR_X):
            keep[kinds == kind] = (success & paired)[kinds == kind]

        def filled(name, at):
            _, lengths, present = F.param_slices_at(cap, name, np.maximum(at, 0))
            return (at >= 0) & present & (lengths > 0)
        for kind, name, source in ((F.K_BIND_X, "addr", rows), (F.K_RECVFROM_X, "tuple", rows),
                                   (F.K_SENDTO_X, "tuple", st.stored[rows]),
                                   (F.K_CONNECT_X, "tuple", rows),
                                   (F.K_CONNECT_E, "addr", rows)):
            sel = kinds == kind
            if not sel.any():
                continue
            if kind == F.K_CONNECT_E:   # (an enter: no result, no pairing)
                keep[sel] = filled(name, source[sel])
                continue
            done = success[sel]
            if kind == F.K_CONNECT_X:   # a connect in progress already names its socket
                done = done | ok[sel] & (res[sel] == -F.EINPROGRESS)
            keep[sel] = done & paired[sel] & filled(name, source[sel])
        return rows[keep]

    def _opens(self, rows, actions, sets):
        """Open-like exits (FdState._apply, K_OPEN_X); returns the rows that need the table
        (a relative path under a directory fd)."""
        st, cap = self.state, self.state.capture
        flavour = _open_flavours()[st.types[rows]]
        is_creat = flavour == _CREAT
        is_at = flavour == _OPENAT
        old = st.types[rows] == 103
        stored = st.stored[rows]
        keep = ~old | (stored >= 0)          # an old openat without its enter: nothing
        rows, is_creat, is_at, old, stored = (
            rows[keep], is_creat[keep], is_at[keep], old[keep], stored[keep])
        e = np.maximum(stored, 0)
        fd, fd_ok = _ints(cap, "fd", rows)
        xpath = _texts(cap, "name", rows)
        epath = _texts(cap, "name", np.where(stored >= 0, stored, rows))
        xflags, xflags_ok = _ints(cap, "flags", rows)
        eflags, eflags_ok = _ints(cap, "flags", e)
        xdirfd, xdirfd_ok = _ints(cap, "dirfd", rows)
        edirfd, edirfd_ok = _ints(cap, "dirfd", e)
        dev, _ = _ints(cap, "dev", rows)
        has_e = stored >= 0
        epath_s = pl.Series(epath, dtype=pl.String)
        use_e = old | has_e & ((epath_s != "") & (epath_s != "(NULL)")).to_numpy()
        path_s = pl.select(pl.when(pl.Series(use_e)).then(epath_s)
                           .otherwise(pl.Series(xpath, dtype=pl.String))).to_series()
        path = path_s.to_numpy().astype(object)
        # flags: None counts as 0 everywhere they are used
        flags = np.where(use_e, np.where(eflags_ok, eflags, 0), np.where(xflags_ok, xflags, 0))
        flags = np.where(is_creat, 0, flags)
        # dirfd: AT_FDCWD for open/creat; None (absent) resolves like AT_FDCWD
        dirfd_known = np.where(use_e, edirfd_ok, xdirfd_ok)
        dirfd = np.where(use_e, edirfd, xdirfd)
        at = is_at | old
        dirfd = np.where(at & dirfd_known, dirfd, F.AT_FDCWD)
        absolute = path_s.str.starts_with("/").to_numpy()
        # the byte length counts towards sysdig's path size limit (paths.too_long)
        plen = path_s.str.len_bytes().to_numpy().astype(np.int64)
        fixed = absolute & at
        needs_table = ~fixed & (dirfd != F.AT_FDCWD)
        self._replay_opens = rows[needs_table]
        ok = ~needs_table
        rows, path, flags, absolute, fixed, fd, fd_ok, dev, is_oc, plen = (
            rows[ok], path[ok], flags[ok], absolute[ok], fixed[ok], fd[ok], fd_ok[ok], dev[ok],
            ~at[ok], plen[ok])
        # an absolute path's name is the path folded (once per distinct path), or
        # /PATH_TOO_LONG: openat* join it to ".", open/creat to the cwd (NAME_ABS_CWD: decided
        # when the batch is applied)
        fixed_names = np.full(len(path), None, dtype=object)
        fixed_names[absolute] = _folded(path[absolute])
        too_long = fixed & (plen + len(".") + 2 > paths.MAX_PATH)
        fixed_names[too_long] = paths.TOO_LONG
        # a failed open names its path (open/creat: as given when absolute), else the full name
        null_fixed = np.where(is_oc & absolute, path, fixed_names)
        self._nulls.append((rows, null_fixed, path))
        made = fd_ok & (fd >= 0)
        tpl = self._templates(
            type=np.where(flags[made] & F.PPM_O_DIRECTORY, F.DIRECTORY, F.FILE_V2),
            name=fixed_names[made], openflags=flags[made], dev=dev[made] & 0xFFFFFFFF)
        kind = np.where(fixed, NAME_FIXED, np.where(absolute, NAME_ABS_CWD, NAME_REL))
        actions.append((rows[made], np.zeros(made.sum()), np.full(made.sum(), CREATE),
                        fd[made], tpl, kind[made], path[made], plen[made]))
        sets.append((rows[made], fd[made]))
        return self._replay_opens

    def _closes(self, rows, actions):
        """Close exits: only paired and successful ones can remove their fd."""
        res, ok = _ints(self.state.capture, "res", rows)
        rows = rows[ok & (res >= 0) & (self.state.enter[rows] >= 0)]
        n = len(rows)
        actions.append((rows, np.zeros(n), np.full(n, CLOSE), np.full(n, -1),
                        np.full(n, -1), np.zeros(n), np.full(n, None, dtype=object),
                        np.zeros(n)))

    def _creates(self, rows, fds, tpl, actions, sets, sub=0):
        n = len(rows)
        actions.append((rows, np.full(n, sub), np.full(n, CREATE), fds, tpl,
                        np.full(n, NAME_FIXED), np.full(n, None, dtype=object), np.zeros(n)))

    def _sockets(self, rows, actions, sets):
        st, cap = self.state, self.state.capture
        fd, ok = _ints(cap, "fd", rows)
        e = st.stored[rows]
        ok &= (fd >= 0) & (e >= 0)
        rows, fd, e = rows[ok], fd[ok], e[ok]
        dom, dom_ok = _ints(cap, "domain", e)
        typ, typ_ok = _ints(cap, "type", e)
        pro, pro_ok = _ints(cap, "proto", e)
        entries = {}
        keep, tpl_rows = [], []
        for k, key in enumerate(zip(np.where(dom_ok, dom, 0).tolist(),
                                    np.where(typ_ok, typ, 0).tolist(),
                                    np.where(pro_ok, pro, 0).tolist())):
            if key not in entries:
                entries[key] = F._socket_entry(*key)
            if entries[key] is not None:
                keep.append(k)
                tpl_rows.append(entries[key])
        keep = np.asarray(keep, dtype=np.int64)
        if not len(keep):
            return
        tpl = self._templates(type=[x.type for x in tpl_rows],
                              l4proto=[x.l4proto for x in tpl_rows])
        self._creates(rows[keep], fd[keep], tpl, actions, sets)
        sets.append((rows[keep], fd[keep]))

    def _pairs(self, rows, type_, actions, sets):
        cap = self.state.capture
        res, ok = _ints(cap, "res", rows)
        rows = rows[ok & (res >= 0)]
        fd1, ok1 = _ints(cap, "fd1", rows)
        fd2, ok2 = _ints(cap, "fd2", rows)
        # a missing fd number: the replay's table would key it by None; leave those to it
        good = ok1 & ok2
        self._odd.append(rows[~good])
        rows, fd1, fd2 = rows[good], fd1[good], fd2[good]
        ino = np.zeros(len(rows), np.int64)
        if type_ == F.FIFO:
            ino, ino_ok = _ints(cap, "ino", rows)
            ino = np.where(ino_ok, ino, 0)
        self._creates(rows, fd1, self._templates(type=np.full(len(rows), type_), ino=ino),
                      actions, sets, sub=0)
        self._creates(rows, fd2, self._templates(type=np.full(len(rows), type_), ino=ino),
                      actions, sets, sub=1)
        sets.append((rows, fd2))

    def _singles(self, rows, actions, sets):
        st = self.state
        p0 = st.param0[rows]
        made = p0 >= 0
        rows, fd = rows[made], p0[made]
        names = eventtable.libs()
        types = [F._SINGLE_TYPE[names[int(t)].name] for t in st.types[rows]]
        self._creates(rows, fd, self._templates(type=types), actions, sets)
        sets.append((rows, fd))

    def _accepts(self, rows, actions, sets):
        cap = self.state.capture
        fd, ok = _ints(cap, "fd", rows)
        ok &= fd >= 0
        rows, fd = rows[ok], fd[ok]
        sets.append((rows, fd))
        raws = F._Params(cap, rows, ()) if len(rows) else None
        made, entries = [], []
        for k, r in enumerate(rows.tolist()):
            raw = raws.raw("tuple", r)
            tup = F._sock_tuple(raw)
            entry = F._accepted(tup, raw) if tup is not None else None
            if entry is not None:
                made.append(k)
                entries.append(entry)
        if not made:
            return
        made = np.asarray(made, dtype=np.int64)
        tpl = self._templates(**{k: [getattr(x, k) for x in entries] for k in _FIELDS})
        self._creates(rows[made], fd[made], tpl, actions, sets)

    # -- applying a batch
    def start(self, machine):
        """Effects that need no state: lastevent_fd sets, failed-open names without a cwd."""
        st = self.state
        machine.set_fd.update(zip(self.s_row.tolist(), self.s_fd.tolist()))
        rows = np.concatenate([n[0] for n in self._nulls]) if self._nulls else np.zeros(0)
        fixed = np.concatenate([n[1] for n in self._nulls]) if self._nulls else np.zeros(0)
        path = np.concatenate([n[2] for n in self._nulls]) if self._nulls else np.zeros(0)
        rows = rows.astype(np.int64)
        have = np.not_equal(fixed, None) if len(fixed) else np.zeros(0, dtype=bool)
        st.null_path.update(zip(rows[have].tolist(), fixed[have].tolist()))
        order = np.argsort(rows[~have], kind="stable")
        self.n_row, self.n_path = rows[~have][order], path[~have][order]
        self.blocks = []
        self._joined = {}
        # rows with any common effect, and what the ones not applied yet depend on
        self.v_rows = np.unique(np.concatenate([self.a_row, self.s_row, self.n_row]))
        self._scanned = 0           # index into v_rows: pending rows looked at so far
        self._tids, self._owners, self._pids = set(), set(), set()

    # -- when a replayed row must wait for the common events before it
    def must_apply_before(self, m, r, P):
        """Do the common events not applied yet (those before row r) and the replayed row r
        touch the same state? If not, r can be replayed first and the batch grows on: fewer,
        larger batches. The state a replayed row reads or changes: its thread's lastevent_fd
        and table (and the table's entries), the thread model of the threads it creates or
        execs, the cwd of its process; pending events depend on their threads' table owner,
        pid (the cwd's holder) and cwd, and change their tables and lastevent_fds."""
        st = self.state
        th = m.threads
        end = int(np.searchsorted(self.v_rows, r))
        if end > self._scanned:
            new = np.unique(st.tids[self.v_rows[self._scanned:end]]).tolist()
            self._scanned = end
            for t in new:
                if t not in self._tids:
                    self._tids.add(t)
                    self._owners.add(th.owner(t))
                    self._pids.add(th.pid.get(t, t))
        if not self._tids:
            return False
        tid = int(st.tids[r])
        kind = int(st.kinds[r])
        if kind == F.K_CHDIR_X:     # the cwd of the process, nothing else
            return th.main(tid) in self._pids
        if kind == F.K_EXECVE_X:
            # the thread's own table from now on, and its pid: do they change?
            if tid not in th.known or tid not in self._tids:
                return False
            pid = P.int("pid", r)
            main = pid if pid in th.known or pid == tid else None
            return tid != th.owner(tid) or main != th.main(tid)
        if kind == F.K_CLONE_X:
            res = P.int("res", r)
            flags = P.int("flags", r) or 0
            thread = bool(flags & F.PPM_CL_CLONE_THREAD)
            if res == 0:
                child, parent = tid, P.int("pid" if thread else "ptid", r)
            else:
                child, parent = res, tid
            return (child in self._tids or child in self._owners or child in self._pids or
                    not thread and th.owner(parent) in self._owners)
        # the others read (and may change) the thread's lastevent_fd and table entries
        return tid in self._tids or th.owner(tid) in self._owners or \
            kind == F.K_FCHDIR_X and th.main(tid) in self._pids

    def applied(self, r):
        """The pending events before row r were applied."""
        self._scanned = int(np.searchsorted(self.v_rows, r))
        self._tids, self._owners, self._pids = set(), set(), set()

    def _cwd_name(self, cwd, path):
        key = (cwd, path)
        name = self._joined.get(key)
        if name is None:
            name = self._joined[key] = paths.open_path(cwd, path)
        return name

    def apply(self, m, lo, hi):
        """Apply the common events of rows [lo, hi) (no replayed row among them) to the
        machine `m`, whose thread model holds for all of them."""
        st = self.state
        th = m.threads
        n0, n1 = np.searchsorted(self.n_row, [lo, hi])
        for r, p in zip(self.n_row[n0:n1].tolist(), self.n_path[n0:n1].tolist()):
            st.null_path[r] = self._cwd_name(th.get_cwd(int(st.tids[r])), p)
        s0, s1 = np.searchsorted(self.s_row, [lo, hi])
        a0, a1 = np.searchsorted(self.a_row, [lo, hi])
        if a1 > a0:
            self._apply_actions(m, a0, a1, s0, s1)
        if s1 > s0:
            # each thread's last setting in the batch is what later replayed rows see
            s_rows = self.s_row[s0:s1]
            tids = st.tids[s_rows]
            last = len(tids) - 1 - np.unique(tids[::-1], return_index=True)[1]
            st._overrides.update(zip(tids[last].tolist(),
                                     zip(s_rows[last].tolist(), self.s_fd[s0:s1][last].tolist())))

    def _close_fds(self, rows, s0, s1):
        """The fd each close removes: the thread's lastevent_fd (FdState._lastevent_fd), with
        the settings by earlier exits of this batch taken into account."""
        st = self.state
        le = st._last_enter[rows]
        fd = np.where(le >= 0, st._enter_value[np.maximum(le, 0)], 0)
        tids = st.tids[rows]
        utids, inv = np.unique(tids, return_inverse=True)
        before = [st._overrides.get(t, (-1, 0)) for t in utids.tolist()]
        over_row = np.array([b[0] for b in before], dtype=np.int64)[inv.reshape(-1)]
        over_val = np.array([b[1] for b in before], dtype=np.int64)[inv.reshape(-1)]
        if s1 > s0:
            s_rows = self.s_row[s0:s1]
            s_tids = st.tids[s_rows]
            _, inv = np.unique(np.concatenate([s_tids, tids]), return_inverse=True)
            span = int(max(s_rows.max(), rows.max())) + 2
            skey = inv[:len(s_rows)].astype(np.int64) * span + s_rows
            order = np.argsort(skey, kind="stable")
            skey_sorted = skey[order]
            ckey = inv[len(s_rows):].astype(np.int64) * span + rows
            pos = np.searchsorted(skey_sorted, ckey) - 1
            same = (pos >= 0) & (skey_sorted[np.maximum(pos, 0)] // span ==
                                 inv[len(s_rows):])
            hit = order[np.maximum(pos, 0)]
            over_row = np.where(same, s_rows[hit], over_row)
            over_val = np.where(same, self.s_fd[s0:s1][hit], over_val)
        return np.where(over_row > le, over_val, fd)

    def _apply_actions(self, m, a0, a1, s0, s1):
        st = self.state
        th = m.threads
        rows = self.a_row[a0:a1]
        ops = self.a_op[a0:a1]
        fds = self.a_fd[a0:a1].copy()
        closing = ops == CLOSE
        if closing.any():
            fds[closing] = self._close_fds(rows[closing], s0, s1)
        tids = st.tids[rows]
        utids, inv = np.unique(tids, return_inverse=True)
        owners = np.array([th.owner(t) for t in utids.tolist()], dtype=np.int64)[inv]
        n = len(rows)
        order = np.lexsort((np.arange(n), fds, owners))
        o_owner, o_fd, o_op, o_row = owners[order], fds[order], ops[order], rows[order]
        first = np.ones(n, dtype=bool)
        first[1:] = (o_owner[1:] != o_owner[:-1]) | (o_fd[1:] != o_fd[:-1])
        last = np.ones(n, dtype=bool)
        last[:-1] = first[1:]
        # does the key have a table entry before the batch? (one look per key)
        firsts = np.flatnonzero(first)
        tables = m.tables
        existed = np.array([fd in tables.get(owner, ()) for owner, fd in
                            zip(o_owner[firsts].tolist(), o_fd[firsts].tolist())], dtype=bool)
        # where each create's version ends: the next create's row, or the next close's + 1
        nxt = np.minimum(np.arange(n) + 1, n - 1)
        end = np.where(o_op[nxt] == CREATE, o_row[nxt], o_row[nxt] + 1)
        # entries from before the batch end at their key's first action
        gone = firsts[existed]
        for owner, fd, e in zip(o_owner[gone].tolist(), o_fd[gone].tolist(),
                                end_first(o_op, o_row, gone)):
            m._close_version(tables[owner][fd], e)
        creates = o_op == CREATE
        closed = creates & ~last
        tpl = self.a_tpl[a0:a1][order]
        names = self._names(order, a0, tids, th, tpl)
        if closed.any():
            # the template's other fields are gathered once, at the end (versions())
            sel = np.flatnonzero(closed)
            self.blocks.append((o_owner[sel], o_fd[sel], o_row[sel], end[sel], names[sel],
                                tpl[sel]))
        # the keys' state after the batch: a live entry, or none
        a = self.tpl
        ends = np.flatnonzero(last)
        for owner, fd, op, t, name, row in zip(
                o_owner[ends].tolist(), o_fd[ends].tolist(), o_op[ends].tolist(),
                tpl[ends].tolist(), names[ends].tolist(), o_row[ends].tolist()):
            if op == CREATE:
                entry = F._Fd(a["type"][t], name, a["sip"][t], a["sport"][t], a["dip"][t],
                              a["dport"][t], a["l4proto"][t], a["role"][t], a["ino"][t],
                              a["openflags"][t], a["dev"][t], a["connected"][t])
                tables.setdefault(owner, {})[fd] = entry
                m._record(owner, fd, entry, row)
            else:
                table = tables.get(owner)
                if table is not None:
                    table.pop(fd, None)

    def _names(self, order, a0, tids, th, tpl):
        """Each create's fd name (in `order`): fixed, or its path joined to the thread's cwd."""
        names = np.full(len(tpl), None, dtype=object)
        made = tpl >= 0                  # closes have no template
        names[made] = self.tpl_arrays["name"][tpl[made]]
        kinds = self.a_name_kind[a0:a0 + len(order)][order]
        if not (kinds != NAME_FIXED).any():
            return names
        utids, inv = np.unique(tids[order], return_inverse=True)
        cwds = [th.get_cwd(t) for t in utids.tolist()]
        cwd_len = np.array([len((c or "").encode("utf-8", "surrogateescape")) for c in cwds],
                           dtype=np.int64)[inv]
        plen = self.a_plen[a0:a0 + len(order)][order]
        # paths.too_long: directory, name, its NUL and one more byte past the limit
        long = (kinds == NAME_ABS_CWD) & (cwd_len + plen + 2 > paths.MAX_PATH)
        names[long] = paths.TOO_LONG
        need = np.flatnonzero(kinds == NAME_REL)
        if len(need):
            ps = self.a_path[a0:a0 + len(order)][order][need].tolist()
            names[need] = [self._cwd_name(cwds[i], p) for i, p in zip(inv[need].tolist(), ps)]
        return names


def end_first(ops, rows, firsts):
    """Where an entry from before a batch ends: at its key's first action (a create's row,
    or the row after a close)."""
    return np.where(ops[firsts] == CREATE, rows[firsts], rows[firsts] + 1).tolist()


# the kinds CommonEvents decodes (others are replayed)
_COMMON = (F.K_OPEN_X, F.K_CLOSE_X, F.K_SOCKET_X, F.K_SOCKETPAIR_X, F.K_PIPE_X, F.K_SINGLE_X,
           F.K_ACCEPT_X, F.K_GETSOCKOPT_X, F.K_FCNTL_X)


def closed_versions(common):
    """The versions the batches closed, as a frame with FdState.versions' columns."""
    import polars as pl
    b = common.blocks
    if not b:
        return None
    tpl = np.concatenate([x[5] for x in b])
    a = common.tpl_arrays
    return pl.DataFrame({
        "owner": pl.Series(np.concatenate([x[0] for x in b]), dtype=pl.Int64),
        "fd": pl.Series(np.concatenate([x[1] for x in b]), dtype=pl.Int64),
        "start": pl.Series(np.concatenate([x[2] for x in b]), dtype=pl.Int64),
        "end": pl.Series(np.concatenate([x[3] for x in b]), dtype=pl.Int64),
        "type": pl.Series(a["type"][tpl].tolist(), dtype=pl.Int8),
        "name": pl.Series(np.concatenate([x[4] for x in b]).tolist(), dtype=pl.String),
        "sip": pl.Series(a["sip"][tpl].tolist(), dtype=pl.String),
        "sport": pl.Series(a["sport"][tpl].tolist(), dtype=pl.Int64),
        "dip": pl.Series(a["dip"][tpl].tolist(), dtype=pl.String),
        "dport": pl.Series(a["dport"][tpl].tolist(), dtype=pl.Int64),
        "l4proto": pl.Series(a["l4proto"][tpl].tolist(), dtype=pl.Int8),
        "role": pl.Series(a["role"][tpl].tolist(), dtype=pl.Int8),
        "dev": pl.Series(a["dev"][tpl].tolist(), dtype=pl.UInt32),
        "connected": pl.Series(a["connected"][tpl].tolist(), dtype=pl.Boolean),
    })
