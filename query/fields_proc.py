"""Process, thread and a few event fields of sysdig 0.29.3 beyond the core catalog.

Thread state comes from the versions of query.threads (the replay of clone, execve, setsid,
rlimit... events, plus the placeholder threads sysdig makes up), looked up as of each event
for the event's own thread and for its main thread (tid = pid); each lookup is one as-of join,
computed once per capture and shared by the fields here. Memory counters also change on
scheduler switches and brk/mmap/munmap exits, which are many: they are merged by an as-of join
over those events (see _memory_updates), not replayed.
"""
import numpy as np
import polars as pl

from scaptool.scap import eventtable

from .field_catalog import field
from .field_common import fake_container_rows, event_sections

# -- lookups of thread versions ---------------------------------------------------------------


def _lookup(data, who):
    """(alive, version index) per event for the event's own thread ('own') or its main thread
    ('main': the thread whose tid is the own thread's pid); cached on `data`."""
    cache = data.__dict__.setdefault("_proc_lookups", {})
    if who in cache:
        return cache[who]
    versions = data.thread_versions
    if who == "own":
        key = pl.Series(np.asarray(data.headers.tid), dtype=pl.Int64)
    else:
        alive, _ = _lookup(data, "own")
        key = pl.select(pl.when(pl.Series(alive)).then(_gather(data, "own", "pid"))) \
            .to_series()
    events = pl.DataFrame({"section": event_sections(data), "row": np.arange(len(data)),
                           "key": key})
    right = (versions.with_row_index("_v")
             .select("section", pl.col("tid").alias("key"), "row", pl.col("_v").cast(pl.Int64))
             .sort("row"))
    joined = events.join_asof(right, on="row", by=["section", "key"], strategy="backward",
                              check_sortedness=False)
    v = joined["_v"]
    alive = versions["alive"].gather(v).fill_null(False).to_numpy() \
        & v.is_not_null().to_numpy()
    cache[who] = (alive, v)
    return cache[who]


def _gather(data, who, column):
    """A version column for every event (null where the thread is not in the table)."""
    alive, v = _lookup(data, who)
    values = data.thread_versions[column].gather(v)
    return values.set(pl.Series(~alive), None) if not alive.all() else values


def _is_main(data):
    """The event's thread is its process's main thread (tid = pid)."""
    pid = _gather(data, "own", "pid").to_numpy()
    return pid == np.asarray(data.headers.tid)


def _of_main(data, column, missing):
    """`column` of the event's main thread: its own when it is one, the main thread's when
    that is in the table, else `missing` (get_main_thread makes up an empty thread)."""
    own_alive, _ = _lookup(data, "own")
    main_alive, _ = _lookup(data, "main")
    own, main = _gather(data, "own", column), _gather(data, "main", column)
    is_main = pl.Series(_is_main(data))
    return pl.select(pl.when(~pl.Series(own_alive)).then(None)
                     .when(is_main).then(own)
                     .when(pl.Series(main_alive)).then(main)
                     .otherwise(pl.lit(missing, dtype=own.dtype))).to_series()


def _fake_rows(data):
    """Container events: sysdig gives each a thread made for it alone (init()'s values)."""
    return fake_container_rows(data)


def _with_fake(data, series, value):
    fake = _fake_rows(data)
    if not fake.any():
        return series
    return series.scatter(np.flatnonzero(fake), pl.Series([value] * int(fake.sum()),
                                                          dtype=series.dtype))


def _state_field(name, type_, kind, description, **options):
    """Registers a thread-state field computed over all events; the decorated function gets
    `data` (and the argument) and returns a Series."""
    def register(compute):
        def full(data, arg):
            return compute(data, arg).alias(name)
        return field(name, type_, kind, description, **options)(full)
    return register


# -- process ------------------------------------------------------------------------------------

@_state_field("proc.env", "CHARBUF", "string",
              "the environment variables of the process, separated by spaces")
def _proc_env(data, arg):
    # the environment is kept per process, in its main thread (get_env)
    env = _of_main(data, "env", []).list.join(" ")
    return _with_fake(data, env, "")


@_state_field("proc.nthreads", "UINT32", "uint",
              "the number of threads of the process, the main thread included")
def _proc_nthreads(data, arg):
    return _with_fake(data, (_of_main(data, "nchilds", 0) + 1).cast(pl.UInt32), 1)


@_state_field("proc.nchilds", "UINT32", "uint",
              "the number of threads of the process, the main thread excluded")
def _proc_nchilds(data, arg):
    return _with_fake(data, _gather(data, "own", "nchilds").cast(pl.UInt32), 0)


@_state_field("proc.sid", "INT64", "int", "the session id of the process")
def _proc_sid(data, arg):
    return _with_fake(data, _gather(data, "own", "sid"), -1)


@_state_field("proc.vpgid", "INT64", "int",
              "the process group id of the process, as seen from its pid namespace")
def _proc_vpgid(data, arg):
    return _with_fake(data, _gather(data, "own", "vpgid"), -1)


@_state_field("proc.tty", "INT32", "int",
              "the controlling terminal of the process (0 for none)")
def _proc_tty(data, arg):
    return _with_fake(data, _gather(data, "own", "tty"), 0)


@_state_field("proc.fdlimit", "INT64", "int", "the maximum number of fds the process can open")
def _proc_fdlimit(data, arg):
    return _with_fake(data, _of_main(data, "fdlimit", -1), -1)


@_state_field("proc.is_exe_writable", "BOOL", "bool",
              "true if the executable file of the process is writable by its user")
def _proc_is_exe_writable(data, arg):
    return _with_fake(data, _gather(data, "own", "exe_writable"), False)


@_state_field("proc.duration", "RELTIME", "time", "ns since the process (thread) started")
def _proc_duration(data, arg):
    # only threads whose clone sysdig saw have a start time
    clone_ts = _gather(data, "own", "clone_ts")
    ts = pl.Series(data.headers.ts.astype(np.int64))
    out = pl.select(pl.when(clone_ts != 0).then(ts - clone_ts)).to_series()
    return _with_fake(data, out, None)


@_state_field("thread.cgroups", "CHARBUF", "string",
              "all the cgroups of the thread, as subsystem=path separated by spaces")
def _thread_cgroups(data, arg):
    groups = _gather(data, "own", "cgroups")
    out = pl.select(pl.when(groups.list.len() > 0).then(groups.list.join(" "))).to_series()
    return _with_fake(data, out, None)


@_state_field("thread.cgroup", "CHARBUF", "string",
              "the cgroup of the thread for one subsystem: thread.cgroup.cpuacct", arg="required")
def _thread_cgroup(data, arg):
    name = _cgroup_name(arg)
    groups = _gather(data, "own", "cgroups")
    # the path of the first entry of that subsystem (entries are 'subsys=path', the path
    # after the last '=')
    prefix = name + "="
    picked = groups.list.eval(
        pl.when(pl.element().str.starts_with(prefix)
                & ~pl.element().str.slice(len(prefix)).str.contains("=", literal=True))
        .then(pl.element().str.slice(len(prefix)))).list.drop_nulls().list.first()
    return _with_fake(data, picked, None)


def _cgroup_name(arg):
    """thread.cgroup.NAME: sysdig takes the letters and underscores after the dot."""
    text = arg or ""
    end = 0
    while end < len(text) and (text[end].isalpha() or text[end] == "_"):
        end += 1
    return text[:end]


# -- user --------------------------------------------------------------------------------------

@_state_field("user.loginname", "CHARBUF", "string", "the name of the audit user (auid)")
def _user_loginname(data, arg):
    # the users list has the auid as an unsigned number
    loginuid = data.thread_columns(["user.loginuid"])["user.loginuid"].cast(pl.Int64) \
        & 0xFFFFFFFF
    users = data.capture.users
    if users.height == 0:
        return pl.Series([None] * len(data), dtype=pl.String)
    table = (users.select(pl.col("section").cast(pl.Int32), pl.col("uid").cast(pl.Int64),
                          "name").unique(["section", "uid"], keep="first", maintain_order=True))
    frame = pl.DataFrame({"section": event_sections(data), "uid": loginuid})
    return frame.join(table, on=["section", "uid"], how="left", maintain_order="left")["name"]


# -- memory counters ---------------------------------------------------------------------------
#
# sysdig sets a thread's counters when it creates it (process list, clone, a made-up thread: 0)
# and on execve; a scheduler switch (the 6-parameter one) then sets the page faults of the
# thread switched out and the sizes of its main thread; brk, mmap, mmap2 and munmap exits set
# the sizes of their own thread. Per event, the counters are those of the last of these
# updates of its thread: an as-of join over the updates, ordered by row (on the same row the
# event's own update comes after the thread's creation by that event).
#
# Those four kinds of events do not modify state as sysdig classes events: with a filter,
# sysdig runs it *before* parsing them and does not parse the ones it rejects, so their
# updates are lost. Printed (-p, -j: per_row), the events shown are the ones the filter kept,
# in order: only the updates of the events printed so far (this batch and the ones before)
# count. In a filter (compute) the value is the one before the event's own update, with every
# update counted; sysdig's answer there also depends on which earlier update events the
# filter kept, which a field cannot know (see the module notes in the tests).

_SIZES = ("vmsize", "vmrss", "vmswap")
_FAULTS = ("pfmajor", "pfminor")
_PARAM = {"vmsize": "vm_size", "vmrss": "vm_rss", "vmswap": "vm_swap", "pfmajor": "pgft_maj",
          "pfminor": "pgft_min"}


def _ids(names, enter=None, nparams=None):
    return [e.id for e in eventtable.sysdig_0293() if e.name in names
            and (enter is None or e.is_enter == enter)
            and (nparams is None or len(e.params) == nparams)]


def _memory_updates(data, group):
    """The updates of the counters of `group` (_SIZES or _FAULTS): a frame of section, tid,
    key (2 * row, + 1 for an event's own update), the counters, and `event` (the row of an
    event update, -1 for a thread's creation or execve)."""
    cache = data.__dict__.setdefault("_proc_memory_updates", {})
    if group in cache:
        return cache[group]
    data.memory["memory counters"] = True   # read in chunks: carry them (carry_memory)
    versions = data.thread_versions
    # keys are positions in the whole reading (query.chunks.reading_rows), so that updates
    # carried from the chunks before keep their order with this chunk's
    from .chunk_memory import reading_rows
    created = versions.filter(pl.col("alive") & pl.col("mem_row").is_not_null())
    created = (created.with_columns(pl.Series("mem_row", reading_rows(
                   data, created["mem_row"].to_numpy()), dtype=pl.Int64))
               .select("section", "tid", (pl.col("mem_row") * 2).alias("key"), *group,
                       pl.lit(_CREATED, pl.Int64).alias("event"))
               .unique(["section", "tid", "key"], keep="last", maintain_order=True))
    types = np.asarray(data.headers.type)
    tids = np.asarray(data.headers.tid).astype(np.int64)
    sections = event_sections(data)
    own_alive, _ = _lookup(data, "own")
    updates = [created]

    def add(rows, owner):
        if not len(rows):
            return
        frame = {"section": sections[rows], "tid": owner,
                 "key": reading_rows(data, rows) * 2 + 1, "event": rows}
        for c in group:
            frame[c] = data.capture.param(_PARAM[c], rows=rows).cast(pl.Int64, strict=False)
        updates.append(pl.DataFrame(frame).select(created.columns).cast(created.schema))

    carried = _carried_memory(data, group, created)
    if carried is not None:
        updates.append(carried)
    switch = np.flatnonzero(np.isin(types, _ids(("switch",), nparams=6)) & own_alive)
    if group is _FAULTS:
        add(switch, tids[switch])
    else:
        # the switch's sizes go to the main thread (as the table has it at that event)
        main_alive, _ = _lookup(data, "main")
        pid = _gather(data, "own", "pid").to_numpy()
        ok = switch[_is_main(data)[switch] | main_alive[switch]]
        add(ok, pid[ok].astype(np.int64))
        mapped = np.flatnonzero(np.isin(types, _ids(("brk", "mmap", "mmap2", "munmap"),
                                                    enter=False, nparams=4)) & own_alive)
        add(mapped, tids[mapped])
    cache[group] = pl.concat(updates).sort("key")
    return cache[group]


# `event` of an update that is not an event's own: a thread made or changed (a version), the
# last update of the chunks before (query.chunks) as a filter saw it, as the printed lines did
_CREATED, _CARRIED_READ, _CARRIED_PRINTED = -1, -2, -3


def _carried_memory(data, group, created):
    """The last updates of the chunks before this one (query.chunks), as update rows placed
    where their events were (rows before this chunk map below its own)."""
    carry = getattr(data.capture, "carry_in", None)
    found = carry.parts.get(("memory", group)) if carry is not None else None
    if not found:
        return None
    rows = [(0, tid, key, *values, event)
            for event, per_tid in found.items() for tid, (key, values) in per_tid.items()]
    return pl.DataFrame(rows, schema=created.schema, orient="row")


def carry_memory(data, parts):
    """At the end of a chunk: each thread's last update of the counters, as a filter saw them
    (every update) and as the printed lines did (the updates of printed events only)."""
    if not data.memory.get("memory counters"):
        return
    printed = data.memory.get("memory printed", {})
    for group in (_SIZES, _FAULTS):
        stream = _memory_updates(data, group)
        applied = printed.get(group, (None, np.zeros(0, dtype=np.int64)))[1]
        if printed.get(("chunk", group)) != getattr(data.capture, "lo", None):
            applied = np.zeros(0, dtype=np.int64)   # nothing printed in this chunk
        out = {}
        for event, keep in (
                (_CARRIED_READ, pl.col("event") != _CARRIED_PRINTED),
                (_CARRIED_PRINTED, pl.col("event").is_in([_CREATED, _CARRIED_PRINTED])
                 | pl.col("event").is_in(applied))):
            last = stream.filter(keep).group_by("tid", maintain_order=True).last()
            out[event] = {tid: (key, tuple(values))
                          for tid, key, *values in last.select("tid", "key", *group).iter_rows()}
        parts[("memory", group)] = out


def _memory_at(data, group, rows, keys, applied=None):
    """The counters of `group` for the events `rows`, as of the join `keys`; `applied`: the
    event rows whose own updates count (None: all, as a filter sees them)."""
    stream = _memory_updates(data, group)
    if applied is None:
        stream = stream.filter(pl.col("event") != _CARRIED_PRINTED)
    else:
        stream = stream.filter(pl.col("event").is_in([_CREATED, _CARRIED_PRINTED])
                               | pl.col("event").is_in(applied))
    from .chunk_memory import reading_rows
    keys = np.asarray(keys, dtype=np.int64)
    events = pl.DataFrame({"section": event_sections(data)[rows],
                           "tid": np.asarray(data.headers.tid).astype(np.int64)[rows],
                           "key": reading_rows(data, keys // 2) * 2 + keys % 2,
                           "_q": np.arange(len(rows))}).sort("key")
    joined = events.join_asof(stream.drop("event"), on="key", by=["section", "tid"],
                              strategy="backward", check_sortedness=False).sort("_q")
    own_alive, _ = _lookup(data, "own")
    alive = pl.Series(own_alive[rows])
    fake = pl.Series(_fake_rows(data)[rows])
    # no thread: no value; a container event's made-up thread: zeros
    return joined.select([pl.when(fake).then(0).when(alive).then(pl.col(c)).alias(c)
                          for c in group])


def _modifies_state(types):
    from .field_common import flag_per_type
    from scaptool.scap.eventtable import EF
    return flag_per_type(EF.MODIFIES_STATE)[types]


def _memory_in_filter(data, group):
    """Filters: the counters when sysdig runs the filter (before parsing the event, for
    events that do not modify state)."""
    cache = data.__dict__.setdefault("_proc_memory_filter", {})
    if group not in cache:
        rows = np.arange(len(data), dtype=np.int64)
        keys = rows * 2 + _modifies_state(np.asarray(data.headers.type)).astype(np.int64)
        cache[group] = _memory_at(data, group, rows, keys)
    return cache[group]


def _memory_printed(data, group, rows):
    """-p / -j: the counters after each printed event, counting the updates of the events
    printed so far only (the ones a filter dropped were never parsed)."""
    rows = np.asarray(rows, dtype=np.int64)
    # (in a reading by chunks, the updates printed in the chunks before come carried)
    memory = data.memory.setdefault("memory printed", {})
    last, seen = memory.get(group, (-1, np.zeros(0, dtype=np.int64)))
    lo = getattr(data.capture, "lo", None)
    if len(rows) and (rows[0] <= last or memory.get(("chunk", group)) != lo):
        seen = np.zeros(0, dtype=np.int64)   # a new pass over the events, or a new chunk
    memory[("chunk", group)] = lo
    events = _memory_updates(data, group)["event"].to_numpy()
    events = events[events >= 0]
    applied = np.concatenate([seen, rows[np.isin(rows, events)]])
    if len(rows):
        memory[group] = (int(rows[-1]), applied)
    return _memory_at(data, group, rows, rows * 2 + 1, applied)


def _memory_field(name, group, column, description, main_only=False):
    def finish(values, data, rows):
        values = values.cast(pl.UInt64)
        if not main_only:
            return values.alias(name)
        # thread.vmsize/vmrss: the main thread's own counter, 0 for the other threads
        main = pl.Series((_is_main(data) | _fake_rows(data))[rows])
        return pl.select(pl.when(values.is_null()).then(None).when(main).then(values)
                         .otherwise(0)).to_series().cast(pl.UInt64).alias(name)

    def per_row(data, arg, rows):
        rows = np.asarray(rows, dtype=np.int64)
        return finish(_memory_printed(data, group, rows)[column], data, rows)

    @field(name, "UINT64", "uint", description, per_row=per_row)
    def compute(data, arg):
        return finish(_memory_in_filter(data, group)[column], data, slice(None))
    return compute


_memory_field("proc.vmsize", _SIZES, "vmsize", "total virtual memory of the process (kb)")
_memory_field("proc.vmrss", _SIZES, "vmrss", "resident non-swapped memory of the process (kb)")
_memory_field("proc.vmswap", _SIZES, "vmswap", "swapped memory of the process (kb)")
_memory_field("thread.pfmajor", _FAULTS, "pfmajor", "major page faults since the thread started")
_memory_field("thread.pfminor", _FAULTS, "pfminor", "minor page faults since the thread started")
_memory_field("thread.vmsize", _SIZES, "vmsize",
              "for a main thread, the virtual memory of its process (kb); 0 for others", True)
_memory_field("thread.vmrss", _SIZES, "vmrss",
              "for a main thread, the resident memory of its process (kb); 0 for others", True)


# -- event fields ------------------------------------------------------------------------------

def _type_is_id(arg):
    """evt.type.is.NAME or evt.type.is.NUMBER: the event ids it matches. A name matches the
    first enter/exit pair of that name in 0.29.3's table (older versions only, for events
    with several); a number matches that id alone."""
    from .field_catalog import FormatError
    text = arg or ""
    if text.isdigit() and int(text) < 1 << 32:
        return (int(text),)
    for e in eventtable.sysdig_0293():
        if e.name == text:
            return (e.id, e.id + 1)
    raise FormatError(f"filter error: unknown event type in evt.type.is.{text}")


def _evt_type_is_printed(data, arg, rows):
    # a UINT32 field without a print format: sysdig prints <NA> for every event
    _type_is_id(arg)
    return pl.Series("evt.type.is", [None] * len(rows), dtype=pl.String)


@field("evt.type.is", "UINT32", "uint",
       "1 for events of the named type (evt.type.is.open), else 0; filters only (printed <NA>)",
       "required", per_row=_evt_type_is_printed)
def _evt_type_is(data, arg):
    ids = _type_is_id(arg)
    return pl.Series("evt.type.is", np.isin(data.headers.type, ids).astype(np.uint32))


@field("evt.time.iso8601", "CHARBUF", "string",
       "event time in ISO 8601, UTC, with ns: 2016-08-04T16:17:57.881730713+0000")
def _evt_time_iso8601(data, arg):
    ts = np.asarray(data.headers.ts).astype(np.int64)
    stamp = pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("ns"))
    text = stamp.dt.strftime("%Y-%m-%dT%H:%M:%S.%9f") + "+0000"
    return text.alias("evt.time.iso8601")


@field("evt.wait_latency", "RELTIME", "time",
       "for exits of events that wait (sleep, select, poll...), the time spent waiting (ns)")
def _evt_wait_latency(data, arg):
    from .field_common import flag_per_type, no_thread_mask
    from scaptool.scap.eventtable import EF
    types = data.headers.type
    waits = flag_per_type(EF.WAITS)[types] & (types % 2 == 1)
    latency = np.asarray(data.latency).astype(np.int64)
    # with no thread sysdig has no latency to give: 0
    value = np.where(no_thread_mask(data), 0, latency)
    out = pl.Series("evt.wait_latency", value, dtype=pl.Int64)
    return out.set(pl.Series(~waits), None)


# PPM_O_CREAT, PPM_O_TMPFILE, and PPM_S_IXUSR | PPM_S_IXGRP | PPM_S_IXOTH
_O_CREAT, _O_TMPFILE, _EXEC_BITS = 4, 8192, 0o111


@field("evt.is_open_exec", "BOOL", "bool",
       "true for open/openat/creat events that create a file with execute permission")
def _evt_is_open_exec(data, arg):
    types = np.asarray(data.headers.type)
    # the events sysdig 0.29.3 looks at: open exit, the old openat's enter, openat exit
    # (their flags and mode), creat exit (its mode)
    opens = np.isin(types, [3, 102, 307])
    creat = types == _ids(("creat",), enter=False)[0]
    flags = data.param("flags")
    mode = data.param("mode")
    if mode.dtype == pl.Null:
        return pl.Series("evt.is_open_exec", np.zeros(len(data), dtype=bool))
    flags = flags.cast(pl.Int64, strict=False) if flags.dtype != pl.Null else \
        pl.Series([None] * len(data), dtype=pl.Int64)
    mode = mode.cast(pl.Int64, strict=False)
    created = ((flags & (_O_CREAT | _O_TMPFILE)) != 0).fill_null(False)
    executable = ((mode & _EXEC_BITS) != 0).fill_null(False)
    return ((pl.Series(opens) & created | pl.Series(creat)) & executable) \
        .alias("evt.is_open_exec")


# -- evt.count.error.*: 1 for failed events, by what they failed on ---------------------------

_FILE_FD = ("file", "directory")
_WRITE_EXIT = 9     # PPME_SYSCALL_WRITE_X
_NET_FD = ("ipv4", "ipv6", "unix")


def _error_kinds(data, printing):
    """Per event: failed or not, 'file', 'net' or 'other' by the event's fd (without one:
    open/creat/openat exits are file, accept/connect exits net, memory events 'memory'), and
    whether the event is of the memory category.

    Filters (not `printing`) run before sysdig parses an exit event that does not modify
    state, and only the parsers give an exit its fd (the write exit excepted: it looks its fd
    up early, to spot tracer writes); such exits have no fd there."""
    cache = data.__dict__.setdefault("_proc_error_kinds", {})
    if printing not in cache:
        cache[printing] = _error_kinds_of(data, printing)
    return cache[printing]


def _error_kinds_of(data, printing):
    from .field_common import failed_mask, info_per_type
    failed = failed_mask(data).fill_null(False)
    types = np.asarray(data.headers.type)
    fd_type = data.fds["fd.type"] if data.fds is not None else \
        pl.Series([None] * len(data), dtype=pl.String)
    exits = types % 2 == 1
    if not printing:
        early = exits & ~_modifies_state(types) & (types != _WRITE_EXIT)
        fd_type = fd_type.set(pl.Series(early), None)
    file_types = np.isin(types, _ids(("open", "creat", "openat"), enter=False))
    net_types = np.isin(types, _ids(("accept", "accept4", "connect"), enter=False))
    by_type = np.where(file_types, "file", np.where(net_types, "net", "other"))
    by_type = np.where(exits, by_type, "other")
    category = info_per_type("category")[types] & ~int(eventtable._SOURCE_BITS)
    memory = category == int(eventtable.EC.MEMORY)
    # 'other': an fd of another kind, or no fd and neither a file/net creator nor memory
    by_type = np.where(memory & (by_type == "other"), "memory", by_type)
    kind = pl.select(
        pl.when(fd_type.is_in(_FILE_FD)).then(pl.lit("file"))
        .when(fd_type.is_in(_NET_FD)).then(pl.lit("net"))
        .when(fd_type.is_not_null()).then(pl.lit("other"))
        .otherwise(pl.Series(by_type))).to_series()
    return failed, kind, memory


def _count_error_field(suffix, description, pick):
    name = "evt.count.error." + suffix

    def value(data, printing):
        failed, kind, memory = _error_kinds(data, printing)
        hit = failed & pick(kind, pl.Series(memory))
        return pl.select(pl.when(hit).then(pl.lit(1, pl.UInt32))).to_series().alias(name)

    @field(name, "UINT32", "uint", description,
           per_row=lambda data, arg, rows: value(data, True).gather(rows))
    def compute(data, arg):
        return value(data, False)
    return compute


_count_error_field("file", "1 for failed events on files", lambda k, m: k == "file")
_count_error_field("net", "1 for failed events on network sockets", lambda k, m: k == "net")
_count_error_field("memory", "1 for failed memory events", lambda k, m: m)
_count_error_field("other", "1 for the other failed events", lambda k, m: k == "other")


# -- evt.abspath: the path of a *at syscall made absolute with its dirfd ----------------------

# event id -> (dirfd, path) parameter names: [first/src pair, second/dst pair]
_ABSPATH = {
    177: [("olddirfd", "oldpath"), ("newdirfd", "newpath")],    # renameat exit
    319: [("olddirfd", "oldpath"), ("newdirfd", "newpath")],    # renameat2 exit
    181: [("linkdirfd", "linkpath")],                           # symlinkat exit
    102: [("dirfd", "name")],                                   # openat enter (old)
    307: [("dirfd", "name")],                                   # openat exit
    106: [("olddir", "oldpath"), ("newdir", "newpath")],        # linkat enter (old)
    311: [("olddir", "oldpath"), ("newdir", "newpath")],        # linkat exit
    110: [("dirfd", "name")],                                   # unlinkat enter (old)
    303: [("dirfd", "name")],                                   # unlinkat exit
    305: [("dirfd", "path")],                                   # mkdirat exit
    313: [("dirfd", "filename")],                               # fchmodat exit
}
AT_FDCWD = -100


def _abspath_pair(arg):
    """evt.abspath (0) and evt.abspath.src (1) take the first pair, evt.abspath.dst (2) the
    second one of events that have two."""
    if arg in (None, "", "src"):
        return 0
    if arg == "dst":
        return 1
    from .field_catalog import FormatError
    raise FormatError(f"evt.abspath.{arg}: use evt.abspath, evt.abspath.src or evt.abspath.dst")


def _text_column(series):
    """A path parameter as text: up to its first NUL; bytes that are not UTF-8 decoded
    with replacement (one by one: they are rare)."""
    if series.dtype != pl.Binary:
        return series.cast(pl.String)
    text = series.cast(pl.String, strict=False)
    bad = (text.is_null() & series.is_not_null()).to_numpy()
    if bad.any():
        fixed = [bytes(b).decode("utf-8", "replace") for b in series.filter(pl.Series(bad))]
        text = text.scatter(np.flatnonzero(bad), pl.Series(fixed, dtype=pl.String))
    return text.str.split_exact("\0", 1).struct.field("field_0")


def _needs_folding(path):
    """Paths that paths.concatenate would change (anything but a plain absolute path)."""
    return ~(path.str.starts_with("/") & ~path.str.contains("//", literal=True)
             & ~path.str.contains("/./", literal=True) & ~path.str.contains("/../", literal=True)
             & ~path.str.ends_with("/") & ~path.str.ends_with("/.")
             & ~path.str.ends_with("/..")) | (path == "/") \
        | path.str.contains(r"[^\x20-\x7e]")


@field("evt.abspath", "CHARBUF", "string",
       "the absolute path a *at syscall works on (renameat, openat, unlinkat...), its dirfd "
       "resolved; evt.abspath.src / evt.abspath.dst for the two paths of renameat and linkat",
       "optional")
def _evt_abspath(data, arg):
    from . import fds, paths
    which = _abspath_pair(arg)
    out = pl.Series("evt.abspath", [None] * len(data), dtype=pl.String)
    types = np.asarray(data.headers.type)
    own_alive, _ = _lookup(data, "own")
    state = None
    for etype, pairs in _ABSPATH.items():
        rows = np.flatnonzero((types == etype) & own_alive)
        if not len(rows):
            continue
        dirfd_name, path_name = pairs[min(which, len(pairs) - 1)]
        dirfd = data.capture.param(dirfd_name, rows=rows).cast(pl.Int64, strict=False)
        path = _text_column(data.capture.param(path_name, rows=rows))
        ok = (dirfd.is_not_null() & path.is_not_null()).to_numpy()
        rows, dirfd, path = rows[ok], dirfd.filter(pl.Series(ok)), path.filter(pl.Series(ok))
        if not len(rows):
            continue
        cwd = data.thread_columns(["proc.cwd"])["proc.cwd"].gather(rows)
        # a dirfd is looked up in the thread's fd table as it is after the event; sysdig
        # always appends a '/' to its name (and knows no name: <UNKNOWN>/)
        if state is None:
            state = fds.fd_state(data.capture)
        vid = state.lookup(rows, dirfd.fill_null(AT_FDCWD).to_numpy())
        names = state.versions["name"].gather(np.maximum(vid, 0)) if len(state.versions) \
            else pl.Series([None] * len(rows), dtype=pl.String)
        names = names.set(pl.Series(vid < 0), None)
        base = pl.select(
            pl.when(path.str.starts_with("/")).then(pl.lit(""))
            .when(dirfd == AT_FDCWD).then(cwd)
            .when(names.is_not_null()).then(names + "/")
            .otherwise(pl.lit("<UNKNOWN>/"))).to_series()
        joined = pl.select(pl.when(base.str.ends_with("/") | (base == "")).then(base + path)
                           .otherwise(base + "/" + path)).to_series()
        fold = _needs_folding(joined).to_numpy()
        if fold.any():
            texts = joined.to_list()
            bases, names_ = base.to_list(), path.to_list()
            for k in np.flatnonzero(fold):  # only paths with ./.. or doubled slashes
                texts[k] = paths.concatenate(bases[k] or ".", names_[k])
            joined = pl.Series(texts, dtype=pl.String)
        out = out.scatter(rows, joined)
    return out


# -- proc.sname: the name of the session leader -------------------------------------------------

def _threads_at(data, rows, keys, columns):
    """The threads `keys` (tids; null: none) as sysdig's table has them at event `rows`:
    (alive, {column: Series})."""
    versions = data.thread_versions
    keys = pl.Series(keys, dtype=pl.Int64)
    events = pl.DataFrame({"section": event_sections(data)[rows], "row": rows.astype(np.int64),
                           "key": keys, "_q": np.arange(len(rows))}).sort("row")
    right = (versions.with_row_index("_v")
             .select("section", pl.col("tid").alias("key"), "row", pl.col("_v").cast(pl.Int64))
             .sort("row"))
    joined = events.join_asof(right, on="row", by=["section", "key"], strategy="backward",
                              check_sortedness=False).sort("_q")
    v = joined["_v"]
    alive = (versions["alive"].gather(v).fill_null(False)
             & v.is_not_null() & keys.is_not_null()).to_numpy()
    out = {}
    for c in columns:
        values = versions[c].gather(v)
        out[c] = values.set(pl.Series(~alive), None) if len(values) else values
    return alive, out


@_state_field("proc.sname", "CHARBUF", "string",
              "the name of the session leader: the process whose pid is proc.sid, or (gone) "
              "the eldest ancestor with the same session id")
def _proc_sname(data, arg):
    n = len(data)
    rows = np.arange(n, dtype=np.int64)
    own_alive, _ = _lookup(data, "own")
    sid = _gather(data, "own", "sid")
    # the session leader, if it is in the table (no thread is made up for it)
    leader_alive, leader = _threads_at(data, rows, sid, ("comm",))
    out = pl.Series("proc.sname", [None] * n, dtype=pl.String)
    found = own_alive & leader_alive
    out = out.scatter(np.flatnonzero(found),
                      leader["comm"].filter(pl.Series(found)).fill_null("<NA>"))
    # otherwise: from the main thread (made up when missing: no session, no parent), up the
    # parents while they share its session id (traverse_parent_state, loops cut short)
    fake = _fake_rows(data)
    todo = np.flatnonzero(own_alive & ~leader_alive & ~fake)
    if fake.any():
        # a container event's made-up thread has no session and no parent: its own name
        names = data.thread_columns(["proc.name"])["proc.name"]
        out = out.scatter(np.flatnonzero(fake), names.filter(pl.Series(fake)))
    if not len(todo):
        return out
    main_alive, _ = _lookup(data, "main")
    is_main = _is_main(data)
    cols = ("sid", "comm", "ptid")
    own_cols = {c: _gather(data, "own", c).gather(todo) for c in cols}
    main_cols = {c: _gather(data, "main", c).gather(todo) for c in cols}
    use_own = pl.Series(is_main[todo])
    has_main = pl.Series(main_alive[todo])
    mt = {c: pl.select(pl.when(use_own).then(own_cols[c]).when(has_main).then(main_cols[c])
                       .otherwise(pl.lit({"sid": -1, "comm": None, "ptid": -1}[c],
                                         dtype=own_cols[c].dtype))).to_series()
          for c in cols}
    session = mt["sid"].to_numpy()
    name = mt["comm"].fill_null("<NA>")

    def parent(alive, values):
        keys = pl.select(pl.when(pl.Series(alive)).then(values["ptid"])).to_series()
        a, v = _threads_at(data, todo, keys, cols)
        v["tid"] = keys
        return a, v

    slow_alive, slow = parent(np.ones(len(todo), dtype=bool), mt)
    fast_alive, fast = parent(slow_alive, slow)
    active = np.ones(len(todo), dtype=bool)
    for _ in range(4096):
        active &= slow_alive & (slow["tid"].fill_null(-1).to_numpy() != -1)
        if not active.any():
            break
        same = slow["sid"].fill_null(-2).to_numpy() == session
        name = pl.select(pl.when(pl.Series(active & same)).then(slow["comm"].fill_null("<NA>"))
                         .otherwise(name)).to_series()
        active &= same
        slow_alive, slow = parent(slow_alive & active, slow)
        slow_tid = slow["tid"].fill_null(-2).to_numpy()
        for _step in range(2):
            fast_alive, fast = parent(fast_alive & active, fast)
            loop = slow_alive & ((fast_alive & (fast["tid"].fill_null(-3).to_numpy() == slow_tid))
                                 | (slow_tid == slow["ptid"].fill_null(-4).to_numpy()))
            active &= ~loop
    return out.scatter(todo, name)


# -- thread.exectime / thread.totexectime ------------------------------------------------------
#
# Both keep state in the field itself, over the events it is evaluated on (in -p: the printed
# ones, in order): per CPU, the time of the last scheduler switch seen; a switch's exectime is
# the time since the previous switch on its CPU (0 for the first), any other event's is 0.
# totexectime adds them up per thread object (a thread made anew starts from 0) and has no
# value for events without a thread.

_SWITCH_IDS = None


def _switch_ids():
    global _SWITCH_IDS
    if _SWITCH_IDS is None:
        _SWITCH_IDS = np.asarray(_ids(("switch",), enter=True), dtype=np.int64)
    return _SWITCH_IDS


class _ExecTime:
    """The running state of one exectime/totexectime field instance."""

    def __init__(self):
        self.last_row = -1    # in the whole reading (query.chunks.reading_rows)
        self.cpu_last = {}    # cpu -> ts of the last switch seen on it
        self.totals = {}      # (section, tid, born in the reading) -> total so far

    def copy(self):
        other = _ExecTime()
        other.last_row, other.cpu_last, other.totals = \
            self.last_row, dict(self.cpu_last), dict(self.totals)
        return other

    def advance(self, data, rows):
        """exectime and totexectime (null without a thread) of `rows`, after the rows seen."""
        from .chunk_memory import reading_rows
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and reading_rows(data, rows[:1])[0] <= self.last_row:
            self.__init__()   # asked again from the start: a new pass over the events
        types = np.asarray(data.headers.type)[rows]
        ts = np.asarray(data.headers.ts).astype(np.int64)[rows]
        cpu = np.asarray(data.headers.cpu).astype(np.int64)[rows]
        switch = np.flatnonzero(np.isin(types, _switch_ids()))
        exectime = np.zeros(len(rows), dtype=np.int64)
        if len(switch):
            frame = pl.DataFrame({"k": switch, "cpu": cpu[switch], "ts": ts[switch]})
            frame = frame.with_columns(pl.col("ts").shift(1).over("cpu").alias("prev"))
            carried = frame["cpu"].replace_strict(self.cpu_last, default=None,
                                                  return_dtype=pl.Int64)
            prev = frame["prev"].fill_null(carried)
            exectime[switch] = pl.select(pl.when(prev.is_null() | (prev == 0)).then(0)
                                         .otherwise(frame["ts"] - prev)).to_series().to_numpy()
            last = frame.group_by("cpu").agg(pl.col("ts").last())
            self.cpu_last.update(zip(last["cpu"].to_list(), last["ts"].to_list()))
        # per thread object, the running total
        own_alive, _ = _lookup(data, "own")
        alive = own_alive[rows]
        born = _gather(data, "own", "born").gather(rows)
        born = pl.Series(np.where(born.is_null().to_numpy(), -(1 << 62),
                                  reading_rows(data, born.fill_null(0).to_numpy())),
                         dtype=pl.Int64).set(born.is_null(), None)
        frame = pl.DataFrame({"section": _reading_sections(data)[rows],
                              "tid": np.asarray(data.headers.tid).astype(np.int64)[rows],
                              "born": born, "x": exectime, "alive": alive})
        keyed = frame.with_columns(pl.col("x").cum_sum().over(["section", "tid", "born"])
                                   .alias("run"))
        if self.totals:
            base = pl.DataFrame({"section": [k[0] for k in self.totals],
                                 "tid": [k[1] for k in self.totals],
                                 "born": [k[2] for k in self.totals],
                                 "base": list(self.totals.values())},
                                schema={"section": keyed["section"].dtype, "tid": pl.Int64,
                                        "born": pl.Int64, "base": pl.Int64})
            keyed = keyed.join(base, on=["section", "tid", "born"], how="left",
                               maintain_order="left")
            keyed = keyed.with_columns((pl.col("run") + pl.col("base").fill_null(0))
                                       .alias("run"))
        ends = keyed.filter(pl.col("alive")).group_by(["section", "tid", "born"]) \
            .agg(pl.col("run").last())
        self.totals.update({(s, t, b): r for s, t, b, r in ends.iter_rows()})
        if len(rows):
            self.last_row = int(reading_rows(data, rows[-1:])[0])
        total = keyed.select(pl.when(pl.col("alive")).then(pl.col("run"))).to_series()
        # a container event's made-up thread: sysdig 0.29.3 aborts there ("invalid thread
        # state ID0"), a bug not copied: no value
        total = total.set(pl.Series(_fake_rows(data)[rows]), None)
        return exectime, total


def _reading_sections(data):
    """The section of each event in the whole reading (a chunk's: its capture's section)."""
    sections = event_sections(data)
    index = getattr(data.capture, "section_index", None)
    return sections if index is None else np.full(len(data), index, dtype=sections.dtype)


def _exec_state(data, key):
    # the printed events' state goes on from one batch, and chunk, to the next
    return data.memory.setdefault(("printed", key), _ExecTime())


def _counted_rows(data):
    return np.flatnonzero(data.capture.counted)


def _exectime_field(name, which, description):
    def per_row(data, arg, rows):
        exectime, total = _exec_state(data, name).advance(data, rows)
        if which == "exectime":
            return pl.Series(name, exectime, dtype=pl.Int64)
        return total.alias(name)

    @field(name, "RELTIME", "time", description, per_row=per_row)
    def compute(data, arg):
        # filters see every event sysdig reads, in order (from the chunks before, in a
        # reading by chunks)
        from .chunk_memory import carried_end, carried_start
        rows = _counted_rows(data)
        key = ("read", name)
        start = carried_start(data, key, _ExecTime())
        state = start.copy()
        exectime, total = state.advance(data, rows)
        carried_end(data, key, start, state)
        values = exectime if which == "exectime" else total
        out = pl.Series(name, [None] * len(data), dtype=pl.Int64)
        return out.scatter(rows, pl.Series(values, dtype=pl.Int64))
    return compute


_exectime_field("thread.exectime", "exectime",
                "for scheduler switches, the CPU time of the thread switched out (ns since the "
                "previous switch on that CPU); 0 for other events")
_exectime_field("thread.totexectime", "total",
                "the CPU time of the thread so far (its exectime summed over the events seen)")


# -- proc.fdopencount / proc.fdusage: the size of the process's fd table ----------------------

def _open_fds(data):
    """Per event, the number of entries in its process's fd table (the main thread's) after
    the event; null without a thread."""
    cache = data.__dict__
    if "_proc_open_fds" in cache:
        return cache["_proc_open_fds"]
    from . import fds
    versions = fds.fd_state(data.capture).versions
    n = len(data)
    # +1 where an entry appears, -1 where it goes: a running count per table owner
    steps = pl.concat([
        versions.select(pl.col("owner"), (pl.col("start") * 2).alias("key"),
                        pl.lit(1, pl.Int64).alias("d")),
        versions.select(pl.col("owner"), (pl.col("end") * 2).alias("key"),
                        pl.lit(-1, pl.Int64).alias("d")),
    ]).group_by(["owner", "key"]).agg(pl.col("d").sum()).sort(["owner", "key"]) \
        .with_columns(pl.col("d").cum_sum().over("owner").alias("count")).sort("key")
    main = _of_main_tid(data)
    events = pl.DataFrame({"owner": main, "key": np.arange(n, dtype=np.int64) * 2 + 1})
    joined = events.join_asof(steps.select("owner", "key", "count"), on="key", by="owner",
                              strategy="backward", check_sortedness=False)
    out = joined["count"].fill_null(0)
    own_alive, _ = _lookup(data, "own")
    out = out.set(pl.Series(~own_alive), None)
    cache["_proc_open_fds"] = out
    return out


def _of_main_tid(data):
    """The tid of each event's main thread (its pid)."""
    return _gather(data, "own", "pid")


@_state_field("proc.fdopencount", "UINT64", "uint", "the number of open fds of the process")
def _proc_fdopencount(data, arg):
    return _with_fake(data, _open_fds(data).cast(pl.UInt64), 0)


def _fd_usage(data):
    """get_fd_usage_pct_d: open fds as a percentage of the fd limit (0 without a limit)."""
    limit = _of_main(data, "fdlimit", -1).cast(pl.Float64)
    count = _open_fds(data).cast(pl.Float64)
    return pl.select(pl.when(limit.is_null() | count.is_null()).then(None)
                     .when(limit <= 0).then(0.0)
                     .when(count <= limit).then(count * 100 / limit)
                     .otherwise(100.0)).to_series()


@_state_field("proc.fdusage", "DOUBLE", "string",
              "open fds as a percentage of the fd limit, printed with one decimal (sysdig "
              "0.29.3 refuses comparisons on it; here they compare that text)")
def _proc_fdusage(data, arg):
    usage = _with_fake(data, _fd_usage(data), 0.0)
    # printf's %.1f of each distinct value (few: open counts over a few limits)
    distinct = usage.drop_nulls().unique().to_list()
    return usage.replace_strict(distinct, [f"{v:.1f}" for v in distinct], default=None,
                                return_dtype=pl.String)
