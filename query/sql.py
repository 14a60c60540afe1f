"""SQL over captures, on DuckDB: `scaptool sql "SELECT ..." CAPTURE...` and scaptool.sql().

The tables a query can name, each made only when the query names it:

events       one row per event sysdig prints, one column per field the query names, quoted
             as the filter language spells it ("proc.name", "evt.arg.fd"), and the fields
             of sysdig's default line too when it names none or selects * (SELECT *, e.*).
             Only those fields are computed: each catalog field is a column when named.
threads      one row per version of a thread's state: "thread.tid" and what sysdig knows of
             it ("proc.pid", "proc.ppid", "proc.name", "proc.exepath", "proc.args",
             "user.name", "container.id"), valid_from and valid_to, the events seen.
processes    the same per process ("proc.pid").
fds          one row per version of a process's fd ("proc.pid", "fd.num"): "fd.name",
             "fd.type", valid_from and valid_to (its close, or the next version), events.
connections  the fds that are IPv4/IPv6 sockets, with their endpoints ("fd.l4proto",
             "fd.cip", "fd.cport", "fd.sip", "fd.sport") and the bytes read and written.
logs         one row per line written to a log file, as spy_logs shows them: who wrote it
             ("thread.tid", "proc.pid", "proc.name"), where ("fd.name"), when ("evt.time",
             "evt.num") and the `line`.
syslog       one row per message sent to syslog: "syslog.facility.str",
             "syslog.severity.str", "syslog.message" and who sent it, when.

A version's valid_from is the first event that shows the state, valid_to the first that shows
the next one (or, for threads and processes, their exit; for fds, their close); null when it
lasts to the end of the capture. The events are sysdig's (those it prints), so a state no
printed event shows does not appear.

With several captures every table has a `capture` column first (the path as given).
"""
import os
import re

import polars as pl

from .export import EXPORT_FIELDS, _capture_frames
from .fields import UnknownFieldError, lookup

TABLES = ("events", "threads", "processes", "fds", "connections", "logs", "syslog")
# (and `captures`: one row per capture read, its hostname and the error that stopped it)

_THREAD_STATE = ["proc.pid", "proc.ppid", "proc.name", "proc.exepath", "proc.args",
                 "user.name", "container.id"]
_FD_STATE = ["fd.name", "fd.type"]
_ENDPOINTS = ["fd.l4proto", "fd.cip", "fd.cport", "fd.sip", "fd.sport"]
# what the state tables are made from: one pass over the events
_STATE_FIELDS = ["evt.time", "evt.type", "evt.dir", "evt.failed", "evt.rawres",
                 "evt.is_io_read", "evt.is_io_write", "thread.tid", "fd.num",
                 *_THREAD_STATE, *_FD_STATE, *_ENDPOINTS]
_LOG_FIELDS = ["evt.num", "evt.time", "thread.tid", "proc.pid", "proc.name", "fd.name",
               "evt.buffer"]
_SYSLOG_FIELDS = ["evt.num", "evt.time", "thread.tid", "proc.pid", "proc.name",
                  "syslog.facility", "syslog.facility.str", "syslog.severity",
                  "syslog.severity.str", "syslog.message"]

_QUOTED = re.compile(r'"((?:[^"]|"")+)"')
_WORD = re.compile(r"\b([A-Za-z_]+)\b")


class SqlError(Exception):
    """The query failed: DuckDB's message, in one line."""


def fields_named(query):
    """The catalog fields a query names: its quoted identifiers that are field names."""
    names = []
    for quoted in _QUOTED.findall(query):
        name = quoted.replace('""', '"')
        try:
            lookup(name)
        except UnknownFieldError:
            continue
        names.append(name)
    return list(dict.fromkeys(names))


_STAR = re.compile(r"(?:\bselect\s+(?:distinct\s+)?|,\s*|\b\w+\.)\*", re.I)


def selects_everything(query):
    """Does the query ask for every column of a table (SELECT *, t.*)? count(*) does not."""
    return bool(_STAR.search(_QUOTED.sub('""', query)))


def tables_named(query):
    """The tables of ours that the query may read (any word that is one of their names,
    outside quotes and strings: making one too many only costs time)."""
    bare = re.sub(r"'(?:[^']|'')*'", "''", _QUOTED.sub('""', query))
    words = {w.lower() for w in _WORD.findall(bare)}
    return [t for t in TABLES if t in words]


def sql(query, captures, *, all_events=False, jobs=None, cluster=None, on_done=None,
        capture_column=None):
    """Run a DuckDB query over the captures' tables; a Polars DataFrame.

    captures: a path, or several; a glob or folder names every capture it matches (see
    query.fleet: they are read in parallel, by local worker processes, or by a Dask cluster
    at `cluster`). capture_column: `capture` and `hostname` columns first in every table; by
    default when there are several captures or a glob or folder. A capture that cannot be
    read is left out with a ScapWarning (its error, in one line), and its row in the table
    `captures` (capture, hostname, error) says why; a lone capture raises its error."""
    relation, connection = _run(query, captures, all_events, jobs, cluster, on_done,
                                capture_column)
    try:
        return relation.pl() if relation is not None else pl.DataFrame()
    finally:
        connection.close()


def _run(query, captures, all_events, jobs=None, cluster=None, on_done=None,
         capture_column=None):
    import duckdb

    from . import fleet
    captures = [captures] if isinstance(captures, (str, os.PathLike)) else list(captures)
    many = len(captures) > 1 or any(fleet.is_many(c) for c in captures)
    captures = fleet.expand(captures)
    if capture_column is None:
        capture_column = many
    wanted = tables_named(query)
    fields = fields_named(query)
    if selects_everything(query) or not fields:
        fields = list(dict.fromkeys([*EXPORT_FIELDS, *fields]))
    tables = make_tables(captures, wanted, fields, all_events=all_events, jobs=jobs,
                         cluster=cluster, on_done=on_done, capture_column=capture_column,
                         lone_raises=not many)
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")   # (times come back in UTC, as they went)
    for name, table in tables.items():
        connection.register(name, table)
    try:
        return connection.sql(query), connection
    except duckdb.Error as e:
        connection.close()
        raise SqlError(_one_line(e)) from None


def _one_line(error):
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    rest = [line.strip() for line in text.splitlines()[1:] if line.strip().startswith("LINE")]
    return " ".join([first, *rest])


def make_tables(captures, wanted, fields, *, all_events=False, jobs=None, cluster=None,
                on_done=None, capture_column=None, lone_raises=True):
    """name -> Arrow table, for each of `wanted` (names in TABLES), and `captures` (one row
    per capture: capture, hostname, error). The captures are read in parallel (query.fleet:
    jobs, cluster, on_done) and their tables put together in the captures' order."""
    import warnings

    from scaptool.scap.errors import ScapError, ScapWarning

    from . import fleet
    if capture_column is None:
        capture_column = len(captures) > 1
    per_capture = {name: [] for name in wanted}
    summary = []
    for done in fleet.run(capture_tables, captures, wanted, fields, all_events, jobs=jobs,
                          cluster=cluster, on_done=on_done):
        for line in done.warnings:
            warnings.warn(ScapWarning(line), stacklevel=3)
        if done.error is not None:
            if lone_raises and len(captures) == 1:
                raise ScapError(done.error)
            warnings.warn(ScapWarning(done.error), stacklevel=3)
            summary.append((os.fspath(done.path), None, done.error))
            continue
        hostname, made = done.value
        summary.append((os.fspath(done.path), hostname, None))
        for name, table in made.items():
            if capture_column:
                table = table.select(pl.lit(os.fspath(done.path)).alias("capture"),
                                     pl.lit(hostname, dtype=pl.String).alias("hostname"),
                                     pl.all())
            per_capture[name].append(table)
    out = {}
    for name, parts in per_capture.items():
        if not parts:   # (every capture failed: the table has its columns, no rows)
            parts = [_empty_table(name, fields, capture_column)]
        out[name] = _arrow(pl.concat(parts, how="vertical_relaxed"))
    out["captures"] = _arrow(pl.DataFrame(summary, schema={"capture": pl.String,
                                                           "hostname": pl.String,
                                                           "error": pl.String}, orient="row"))
    return out


def capture_tables(path, wanted, fields, all_events=False):
    """One capture's tables (wanted, of TABLES), as Polars frames, and its machine's hostname:
    (hostname, {name: frame}). What a fleet task runs where the capture is."""
    machine = {}
    made = {}
    state_wanted = [t for t in ("threads", "processes", "fds", "connections") if t in wanted]
    event_fields = fields or list(EXPORT_FIELDS)
    if "events" in wanted or state_wanted:
        names = (event_fields if "events" in wanted else []) + \
            (_STATE_FIELDS if state_wanted else [])
        names = list(dict.fromkeys(names))
        frame = _frame(path, names, None, all_events, machine)
        if "events" in wanted:
            made["events"] = frame.select(event_fields)
        if state_wanted:
            made.update(_state_tables(frame.select(_STATE_FIELDS), state_wanted))
    if "logs" in wanted:
        made["logs"] = _logs(path, machine)
    if "syslog" in wanted:
        made["syslog"] = _frame(path, _SYSLOG_FIELDS, "syslog.facility exists", False, machine)
    if not machine:   # (no table read the capture: its header blocks say)
        from .fleet import machine_of
        machine = machine_of(path)
    return machine.get("hostname"), made


def _empty_table(name, fields, capture_column):
    """A table of ours with no row (its columns, where they are known up front)."""
    from .export import _empty
    columns = {"events": fields or list(EXPORT_FIELDS), "logs": _LOG_FIELDS[:-1],
               "syslog": _SYSLOG_FIELDS}.get(name)
    frame = _empty(columns, False) if columns is not None else pl.DataFrame()
    if name == "logs":
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("line"))
    if capture_column:
        frame = frame.select(pl.lit(None, dtype=pl.String).alias("capture"),
                             pl.lit(None, dtype=pl.String).alias("hostname"), pl.all())
    return frame


def _arrow(frame):
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def _frame(path, names, filter, all_events, machine=None):
    """The rows of one capture; `machine` (a dict) gets the capture's machine info."""
    parts = list(_capture_frames(path, names, filter, all_events, None, machine))
    if parts:
        return pl.concat(parts)
    from .export import _empty
    return _empty(names, False)


def _logs(path, machine=None):
    """spy_logs' rows: each successful write to a log file, split into its lines."""
    from scaptool.chisels.logs import LOG_FILES, SUCCESSFUL_WRITE
    frame = _frame(path, _LOG_FIELDS, f"({LOG_FILES}) and {SUCCESSFUL_WRITE}", False,
                   machine)
    from .render import ascii_text
    texts = [ascii_text(raw).split("\n") if raw is not None else []
             for raw in frame["evt.buffer"].to_list()]   # (spy_logs' own reading of them)
    lines = frame.drop("evt.buffer").with_columns(
        pl.Series("line", texts, dtype=pl.List(pl.String))).explode("line")
    return lines.filter(pl.col("line").str.len_bytes() > 0)


def _versions(frame, key, state, ends=None, breaks=None):
    """Runs of events with the same `state` per `key`, in time order: key, state,
    valid_from, valid_to, events. `ends`: a bool column; an event where it holds ends its
    version (valid_to is its time). `breaks`: the event after one where it holds starts a
    new version even with the same state (an fd number closed, then reused)."""
    order = frame.with_row_index("_order").sort([*key, "evt.time", "_order"])
    new = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift(1)) for c in state])
    first = pl.int_range(pl.len()) == 0
    starts = (first | new).over(key) if not breaks else \
        (first | new | pl.col(breaks).shift(1).fill_null(False)).over(key)
    runs = order.with_columns(starts.alias("_new")) \
        .with_columns(pl.col("_new").cum_sum().over(key).alias("_version"))
    aggregate = [pl.col(c).first() for c in state] + [
        pl.col("evt.time").min().alias("valid_from"),
        pl.len().cast(pl.UInt64).alias("events")]
    if ends:
        aggregate.append(pl.col("evt.time").filter(pl.col(ends)).min().alias("_end"))
    out = runs.group_by([*key, "_version"]).agg(aggregate).sort([*key, "_version"])
    after = pl.col("valid_from").shift(-1).over(key)
    valid_to = pl.coalesce(pl.col("_end"), after) if ends else after
    return out.with_columns(valid_to.alias("valid_to")) \
        .select([*key, *state, "valid_from", "valid_to", "events"])


def _state_tables(frame, wanted):
    made = {}
    exits = (pl.col("evt.type") == "procexit")
    if "threads" in wanted:
        made["threads"] = _versions(frame.filter(pl.col("thread.tid").is_not_null())
                                    .with_columns(exits.alias("_exit")),
                                    ["thread.tid"], _THREAD_STATE, ends="_exit")
    if "processes" in wanted:
        main_exit = exits & (pl.col("thread.tid") == pl.col("proc.pid"))
        made["processes"] = _versions(frame.filter(pl.col("proc.pid").is_not_null())
                                      .with_columns(main_exit.alias("_exit")),
                                      ["proc.pid"], [c for c in _THREAD_STATE
                                                     if c != "proc.pid"], ends="_exit")
    if "fds" in wanted or "connections" in wanted:
        closes = (pl.col("evt.type") == "close") & (pl.col("evt.dir") == "<") & \
            ~pl.col("evt.failed").fill_null(False)
        fd_rows = frame.filter(pl.col("fd.num").is_not_null() & (pl.col("fd.num") >= 0)
                               & pl.col("proc.pid").is_not_null()) \
            .with_columns(closes.alias("_close"))
        if "fds" in wanted:
            made["fds"] = _versions(fd_rows, ["proc.pid", "fd.num"], _FD_STATE,
                                    ends="_close", breaks="_close")
        if "connections" in wanted:
            made["connections"] = _connections(fd_rows)
    return made


def _connections(fd_rows):
    sockets = fd_rows.filter(pl.col("fd.type").is_in(["ipv4", "ipv6"]))
    moved = pl.when(pl.col("evt.dir") == "<").then(pl.col("evt.rawres").clip(lower_bound=0)) \
        .otherwise(0)
    sockets = sockets.with_columns(
        pl.when(pl.col("evt.is_io_read").fill_null(False)).then(moved).otherwise(0)
        .alias("_in"),
        pl.when(pl.col("evt.is_io_write").fill_null(False)).then(moved).otherwise(0)
        .alias("_out"))
    versions = _versions(sockets, ["proc.pid", "fd.num"], [*_FD_STATE, *_ENDPOINTS],
                         ends="_close", breaks="_close")
    # the bytes of each version: the events from its start to (before) the next one's
    key = ["proc.pid", "fd.num"]
    spans = versions.select([*key, "valid_from"]).with_row_index("_v")
    joined = sockets.sort([*key, "evt.time"]).join_asof(
        spans.sort([*key, "valid_from"]), left_on="evt.time", right_on="valid_from", by=key,
        strategy="backward", check_sortedness=False)
    totals = joined.group_by("_v").agg(pl.col("_in").sum().cast(pl.Int64).alias("bytes_in"),
                                       pl.col("_out").sum().cast(pl.Int64).alias("bytes_out"))
    return versions.with_row_index("_v").join(totals, on="_v", how="left") \
        .with_columns(pl.col("bytes_in").fill_null(0), pl.col("bytes_out").fill_null(0)) \
        .sort("_v").drop("_v")
