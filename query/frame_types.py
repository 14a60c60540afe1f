"""The dtypes of the notebook API's frames: catalog fields as values, not as printed text.

The engine computes every field as sysdig prints and compares it (query.fields): times as
clock text, a few numbers as text, integers in whatever width was handy. Frames (query.api)
hold values instead: one table from sysdig's type names to Polars dtypes, and two short lists
of the fields whose printed text stands for a value of another type. Filters keep sysdig's
meaning: frame(filter=...) evaluates them on the engine's columns, and filter_expr over a frame
turns these columns back into the text sysdig compares (filter_view). One difference remains:
evt.deltatime of an event older than the one before is the negative difference in a frame, where
sysdig compares the unsigned value it wrapped to.
"""
import datetime
import functools

import polars as pl

# sysdig's type name (FieldDef.type, as `scaptool -l` lists it) -> the dtype of a frame column.
# Integers are 64-bit: sysdig's width varies from field to field (INT16 for a CPU number, INT32
# for a device) and one width per sign keeps arithmetic and joins between fields free of casts.
DTYPES = {
    "INT16": pl.Int64, "INT32": pl.Int64, "INT64": pl.Int64,
    "RELTIME": pl.Int64,    # ns (whole seconds for the .s fields): differences can be negative
    "UINT32": pl.UInt64, "UINT64": pl.UInt64,
    "ABSTIME": pl.UInt64,   # evt.rawtime*: the numbers; evt.time and evt.datetime are Datetimes
    "PORT": pl.UInt16,
    "DOUBLE": pl.Float64,
    "BOOL": pl.Boolean,
    "CHARBUF": pl.String, "IPADDR": pl.String, "IPNET": pl.String,
    "BYTEBUF": pl.Binary,   # the bytes as captured; api.text() decodes them
}
# "DYNAMIC" (evt.rawarg.NAME) is the parameter's own type: only the capture can tell.

TIMESTAMP = pl.Datetime("ns", "UTC")

# Fields sysdig prints as text of the event's timestamp (in the local zone, with the offset it
# has now, as sysdig does; iso8601 in UTC). In frames: the timestamp itself, as TIMESTAMP.
# name -> (truncated to the second, the text's strftime format, local time)
CLOCKS = {
    "evt.time": (False, "%H:%M:%S.%9f", True),
    "evt.time.s": (True, "%H:%M:%S", True),
    "evt.datetime": (False, "%Y-%m-%d %H:%M:%S.%9f", True),
    "evt.datetime.s": (True, "%Y-%m-%d %H:%M:%S", True),
    "evt.time.iso8601": (False, "%Y-%m-%dT%H:%M:%S.%9f+0000", False),
}

# Fields whose type is a number that sysdig prints, and so the engine computes, as text: frames
# parse it. name -> the base the text is written in. (tests/test_frame_types.py checks that no
# other numeric field comes out of the engine as text.)
NUMBERS_AS_TEXT = {"proc.fdusage": 10, "fd.dev": 16, "proc.apid": 10}


def frame_dtype(definition):
    """The dtype of a field's frame column (definition: a query.fields.FieldDef); None for
    the fields whose dtype only the capture can tell (evt.rawarg.NAME)."""
    if definition.name in CLOCKS:
        return TIMESTAMP
    dtype = DTYPES.get(definition.type)
    if dtype is None:
        return None
    return pl.List(dtype) if definition.kind in ("list", "any") else dtype


def clock_column(name, timestamps):
    """A CLOCKS field's frame column from the events' timestamps (ns since the epoch)."""
    # (a timestamp past 2262, which only damage makes, has no Datetime: null)
    column = pl.Series(name, timestamps, dtype=pl.UInt64).cast(pl.Int64, strict=False) \
        .cast(TIMESTAMP)
    return column.dt.truncate("1s") if CLOCKS[name][0] else column


def as_frame_column(series, definition):
    """A field's engine column (query.fields) as its frame column."""
    dtype = frame_dtype(definition)
    if dtype is None or series.dtype == dtype:
        return series
    base = NUMBERS_AS_TEXT.get(definition.name)
    if base is not None and series.dtype != pl.Null:
        return series.to_frame().select(_parsed(pl.col(series.name), dtype, base)).to_series()
    if _integers(series.dtype) and _integers(dtype):
        # the same bits: an unsigned difference that wrapped (evt.deltatime of an event older
        # than the one before) becomes the negative difference it stands for
        return series.cast(dtype, wrap_numerical=True)
    return series.cast(dtype)


def _integers(dtype):
    return dtype.is_integer() or (isinstance(dtype, pl.List) and dtype.inner.is_integer())


def _parsed(text, dtype, base):
    if isinstance(dtype, pl.List):
        return text.list.eval(_parsed(pl.element(), dtype.inner, base))
    if dtype.is_integer():
        return text.str.to_integer(base=base).cast(dtype)
    return text.cast(dtype)


def filter_view(name, definition):
    """What filter_expr compares for the field reference `name` (a column of a frame): the
    column itself, or for CLOCKS and NUMBERS_AS_TEXT the text the engine computes. A column
    that holds that text already (a frame built some other way) is compared as it is."""
    column = pl.col(name)
    if definition.name in CLOCKS:
        return column.map_batches(functools.partial(_clock_text, *CLOCKS[definition.name][1:]),
                                  return_dtype=pl.String, is_elementwise=True)
    base = NUMBERS_AS_TEXT.get(definition.name)
    if base is not None:
        dtype = pl.List(pl.String) if definition.kind in ("list", "any") else pl.String
        return column.map_batches(functools.partial(_number_text, base), return_dtype=dtype,
                                  is_elementwise=True)
    return column


def _clock_text(text_format, local, series):
    if not series.dtype.is_temporal():
        return series
    if series.dtype.time_zone is not None:
        series = series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    if local:
        from .render import local_offset_seconds
        series = series + datetime.timedelta(seconds=local_offset_seconds())
    return series.dt.strftime(text_format)


def _number_text(base, series):
    inner = series.dtype.inner if isinstance(series.dtype, pl.List) else series.dtype
    if not inner.is_numeric():
        return series
    if base == 16:  # upper-case digits, no prefix, as sysdig's PF_HEX (fd.dev: few values)
        def text(values):
            return [None if v is None else format(v, "X") for v in values]
        if isinstance(series.dtype, pl.List):
            return pl.Series(series.name, [None if v is None else text(v)
                                           for v in series.to_list()], dtype=pl.List(pl.String))
        return pl.Series(series.name, text(series.to_list()), dtype=pl.String)
    # decimal: Polars writes an integer, or a float parsed from one-decimal text, as sysdig did
    return series.cast(pl.List(pl.String) if isinstance(series.dtype, pl.List) else pl.String)
