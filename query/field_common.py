"""Per-event facts that several field modules compute from (query.fields and fields_*):
the section of each event, the thread versions, sysdig's "no thread" and "failed" rules, the
event table's flags per type. Below the field modules, so that none imports another."""
import numpy as np
import polars as pl

from scaptool.scap import eventtable, sysdig0293
from scaptool.scap.eventtable import EF


def flag_per_type(flag):
    return sysdig0293.has_flag(flag)


def info_per_type(attribute):
    values = sysdig0293.per_type(attribute)
    return np.array(values + [0] * (65536 - len(values)), dtype=np.int64)


def table_column(data, source, name):
    table = getattr(data, source)
    if table is None or name not in table.columns:
        return pl.Series(name, [None] * len(data), dtype=pl.String)
    return table[name]


def thread_versions_of(data):
    return data.thread_versions


def event_sections(data):
    starts = [s.first_event for s in data.capture.sections] or [0]
    return (np.searchsorted(np.asarray(starts), np.arange(len(data)), side="right") - 1) \
        .astype(np.int32)


def no_thread_mask(data):
    """Events whose evt->m_tinfo is NULL in sysdig: no thread after the event, or a clone exit
    in a child that only this event creates (the child's clone exit when the caller's exit did
    not create it: reset() looks clone exits up without creating the thread)."""
    none = data.thread_columns(["proc.pid"])["proc.pid"].is_null().to_numpy()
    from .threads import CLONE_NAMES, _as_of
    ids = [e.id for e in eventtable.sysdig_0293() if e.name in CLONE_NAMES and not e.is_enter]
    rows = np.flatnonzero(np.isin(data.headers.type, ids) & ~none)
    if len(rows):
        events = pl.DataFrame({"section": event_sections(data)[rows], "row": rows - 1,
                               "key": data.headers.tid[rows].astype(np.int64)})
        before = _as_of(events, thread_versions_of(data), "key", ("pid",), "v.")["v.alive"].to_numpy()
        none[rows[~before]] = True
    return none


def failed_mask(data):
    """sysdig's extract_error_count: a `res` parameter < 0, or (no `res`) the `fd` of an exit
    that creates one < 0. Null where there is neither."""
    res = data.param("res")
    res = pl.Series([None] * len(data), dtype=pl.Int64) if res.dtype == pl.Null \
        else res.cast(pl.Int64, strict=False)
    fd = data.param("fd")
    fd = pl.Series([None] * len(data), dtype=pl.Int64) if fd.dtype == pl.Null \
        else fd.cast(pl.Int64, strict=False)
    creates = pl.Series(flag_per_type(EF.CREATES_FD)[data.headers.type]
                        & (data.headers.type % 2 == 1))
    return pl.select(pl.when(res.is_not_null()).then(res < 0)
                     .when(creates & fd.is_not_null()).then(fd < 0)).to_series()


def fake_container_rows(data):
    from .threads import _container_json_ids
    return np.isin(data.headers.type, _container_json_ids()) & (data.capture.counted)


def first_timestamp(data):
    """-t r counts from the first event sysdig reads (it never sees types it does not know),
    container events excepted: they do not set it."""
    if "first_ts" in data.memory:   # read in chunks: found in an earlier one
        return data.memory["first_ts"]
    h = data.headers
    counted = data.capture.counted & ~np.isin(h.type, list(sysdig0293.LEADING_STATE_TYPES))
    first = np.flatnonzero(counted)
    return int(h.values_at("ts", first[:1])[0]) if len(first) else 0
