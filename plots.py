"""Pictures of a capture, as Altair (Vega-Lite) charts: `scaptool plot KIND CAPTURE ...` saves
them; in a notebook the functions return the chart, which draws itself.

timeline  one lane per thread over time: each system call a bar from its start to its end
          (its exit event's time minus its latency), coloured by sysdig's category of it; a
          red cross on each failed call; a triangle on each line written to a log, its text
          shown on hover. around=FILTER, window_ms=MS: only the time from MS before the first
          event the filter matches to MS after the last, the matches marked by a rule.
io        bytes read and written over time per process (in time bins), and the files and
          connections that moved the most.
latency   system-call latency over time as a heat map: time bins across, latency bins (powers
          of ten) up, the number of calls as the colour; sysdig's spectrogram as a picture.

The data is summed up by Polars before Vega-Lite sees it (io and latency draw bins, not
events), so a large capture makes a chart of the same size; a timeline draws each call, so it
refuses more than MAX_TIMELINE_CALLS of them: narrow it with a filter or around.
"""
import os

import polars as pl

from scaptool.query import api
from scaptool.scap.errors import ScapError

KINDS = ("timeline", "io", "latency")
MAX_TIMELINE_CALLS = 20_000
TIME_BINS = 120
TOP_FDS = 15

_CALL_FIELDS = ["evt.num", "evt.time", "evt.rawtime", "thread.tid", "proc.name", "evt.type",
                "evt.category", "evt.latency", "evt.failed", "evt.res", "evt.dir", "fd.name"]


class PlotError(ScapError):
    """The chart cannot be drawn as asked (too many calls for a timeline, an unknown kind or
    output)."""


def _alt():
    import altair as alt
    alt.data_transformers.disable_max_rows()   # (our own bound is MAX_TIMELINE_CALLS)
    return alt


def _calls(capture, filter, fields=_CALL_FIELDS):
    """The exit events (a system call each, with its latency) the filter selects."""
    where = "evt.dir=<" if not filter else f"evt.dir=< and ({filter})"
    return api.frame(capture, fields, where)


def timeline(capture, filter=None, *, around=None, window_ms=1000):
    """One lane per thread: its calls as bars, failures as crosses, log lines as triangles."""
    alt = _alt()
    calls = _calls(capture, filter)
    hits = None
    if around:
        hits = api.frame(capture, ["evt.rawtime", "evt.time", "thread.tid", "proc.name"],
                         around)
        if not hits.height:
            raise PlotError(f"nothing matches --around {around!r}")
        lo = hits["evt.rawtime"].min() - window_ms * 10**6
        hi = hits["evt.rawtime"].max() + window_ms * 10**6
        calls = calls.filter(pl.col("evt.rawtime").is_between(lo, hi))
    if calls.height > MAX_TIMELINE_CALLS:
        raise PlotError(f"{calls.height} system calls are too many to draw one by one (at most "
                        f"{MAX_TIMELINE_CALLS}): narrow them with a filter or --around")
    lanes = pl.format("{} ({})", pl.col("proc.name").fill_null("<NA>"), pl.col("thread.tid"))
    # times as ms after a base (the first match, or the first call): Vega-Lite's own times
    # stop at the millisecond, and a story's calls take microseconds
    base = int(hits["evt.rawtime"].min()) if hits is not None else \
        int(calls["evt.rawtime"].min() or 0)
    calls = calls.with_columns(
        lanes.alias("thread"), _after(base, pl.col("evt.rawtime")).alias("end_ms"),
        (_after(base, pl.col("evt.rawtime")) - pl.col("evt.latency") / 10**6).alias("start_ms"),
        (pl.col("evt.latency") / 1000).alias("latency_us"))
    order = calls.group_by("thread").agg(pl.col("evt.rawtime").min()).sort("evt.rawtime")
    lane = alt.Y("thread:N", sort=order["thread"].to_list(), title=None)
    scale = alt.Scale() if hits is None else \
        alt.Scale(domain=[_after(base, lo), _after(base, hi)])
    when = alt.X("start_ms:Q", title=_axis_title(base, hits is not None), scale=scale)
    tooltip = ["evt\\.num:Q", "evt\\.type:N", "evt\\.res:N", "latency_us:Q",
               "fd\\.name:N"]
    colour = alt.Color("evt\\.category:N", title="category",
                       scale=alt.Scale(scheme="category20"))
    bars = alt.Chart(calls).mark_bar(height=12).encode(when, alt.X2("end_ms:Q"), lane, colour,
                                                       tooltip=tooltip)
    # (a call too short to be seen as a bar is a tick at its end)
    ticks = alt.Chart(calls).mark_tick(thickness=1, size=12, opacity=0.7).encode(
        alt.X("end_ms:Q"), lane, colour, tooltip=tooltip)
    failed = alt.Chart(calls.filter(pl.col("evt.failed"))).mark_point(
        shape="cross", color="red", size=60, filled=True).encode(
        alt.X("end_ms:Q"), lane, tooltip=tooltip)
    layers = [bars, ticks, failed]
    logs = _log_lines(capture, calls)
    if logs.height:
        logs = logs.with_columns(_after(base, pl.col("evt.rawtime")).alias("end_ms"))
        layers.append(alt.Chart(logs).mark_point(
            shape="triangle-down", color="black", size=120, filled=True, yOffset=-10).encode(
            alt.X("end_ms:Q"), lane, tooltip=["line:N", "fd\\.name:N"]))
    if hits is not None:
        marks = hits.select(_after(base, pl.col("evt.rawtime")).alias("end_ms"))
        layers.append(alt.Chart(marks).mark_rule(color="black", strokeDash=[4, 3]).encode(
            alt.X("end_ms:Q")))
    threads = calls["thread"].n_unique()
    return alt.layer(*layers).properties(
        width=900, height=max(60, 24 * threads),
        title=_title(capture, "system calls per thread", filter, around))


def _after(base, ns):
    """ms after `base` (ns since the epoch) of a time or a column of times (negative
    before it: evt.rawtime is unsigned)."""
    if isinstance(ns, pl.Expr):
        ns = ns.cast(pl.Int64)
    return (ns - base) / 10**6


def _axis_title(base, from_match):
    import datetime
    moment = datetime.datetime.fromtimestamp(base // 10**9, datetime.timezone.utc)
    when = f"{moment:%Y-%m-%d %H:%M:%S}.{base % 10**9:09d} UTC"
    return f"ms after {'the first match, ' if from_match else ''}{when}"


def _log_lines(capture, calls):
    """Lines written to logs by the calls shown (as spy_logs shows them)."""
    from scaptool.query.sql import _logs
    if not calls.height:
        return pl.DataFrame()
    lines = _logs(capture)
    shown = calls.select("evt.num", "thread")
    return lines.join(shown, on="evt.num", how="inner").select(
        pl.col("evt.time").dt.epoch("ns").alias("evt.rawtime"), "thread", "fd.name", "line")


def io(capture, filter=None):
    """Bytes read and written over time per process, and the files and connections that
    moved the most."""
    alt = _alt()
    moved = _calls(capture, filter, ["evt.rawtime", "proc.name", "fd.name", "evt.rawres",
                                     "evt.is_io_read", "evt.is_io_write"])
    moved = moved.filter((pl.col("evt.is_io_read") | pl.col("evt.is_io_write"))
                         & (pl.col("evt.rawres") > 0)).with_columns(
        pl.when(pl.col("evt.is_io_read")).then(pl.lit("read")).otherwise(pl.lit("written"))
        .alias("direction"))
    if not moved.height:
        raise PlotError("no bytes were read or written by the events selected")
    moved_binned, base = _time_bins(moved)
    binned = moved_binned.group_by("bin_start", "proc.name", "direction").agg(
        pl.col("evt.rawres").sum().alias("bytes")).sort("bin_start")
    over_time = alt.Chart(binned).mark_line(point=True, interpolate="step-after").encode(
        alt.X("bin_start:Q", title=_axis_title(base, False)),
        alt.Y("bytes:Q", title="bytes per bin"),
        alt.Color("proc\\.name:N", title="process"),
        alt.StrokeDash("direction:N"),
        tooltip=["proc\\.name:N", "direction:N", "bytes:Q", "bin_start:Q"],
    ).properties(width=900, height=260, title=_title(capture, "bytes over time per process",
                                                     filter))
    per_fd = moved.group_by("fd.name", "direction").agg(pl.col("evt.rawres").sum()
                                                        .alias("bytes"))
    top = per_fd.group_by("fd.name").agg(pl.col("bytes").sum()).sort("bytes", descending=True) \
        .head(TOP_FDS)["fd.name"]
    per_fd = per_fd.filter(pl.col("fd.name").is_in(top.to_list()))
    by_fd = alt.Chart(per_fd).mark_bar().encode(
        alt.X("bytes:Q", title="bytes"),
        alt.Y("fd\\.name:N", sort=top.to_list(), title=None),
        alt.Color("direction:N"),
        tooltip=["fd\\.name:N", "direction:N", "bytes:Q"],
    ).properties(width=900, title=f"the {len(top)} files and connections that moved the most")
    return alt.vconcat(over_time, by_fd)


def latency(capture, filter=None):
    """Calls per time bin and latency bin (powers of ten of ns), as colour."""
    alt = _alt()
    calls = _calls(capture, filter, ["evt.rawtime", "evt.latency"]).filter(
        pl.col("evt.latency") > 0)
    if not calls.height:
        raise PlotError("no system call with a latency among the events selected")
    decades = calls.with_columns(pl.col("evt.latency").log10().floor().cast(pl.Int32)
                                 .alias("decade"))
    decades, base = _time_bins(decades)
    binned = decades.group_by("bin_start", "bin_end", "decade").agg(
        pl.len().alias("calls")).with_columns(
        pl.col("decade").map_elements(_decade_label, return_dtype=pl.String).alias("latency"))
    order = [_decade_label(d) for d in range(int(binned["decade"].max()), -1, -1)]
    return alt.Chart(binned).mark_rect().encode(
        alt.X("bin_start:Q", title=_axis_title(base, False)),
        alt.X2("bin_end:Q"),
        alt.Y("latency:O", sort=order, title="latency"),
        alt.Color("calls:Q", scale=alt.Scale(scheme="inferno", type="log"), title="calls"),
        tooltip=["latency:O", "calls:Q", "bin_start:Q"],
    ).properties(width=900, height=300, title=_title(capture, "system-call latency", filter))


def _decade_label(decade):
    units = [(9, "s"), (6, "ms"), (3, "us"), (0, "ns")]
    for power, unit in units:
        if decade >= power:
            return f"{10 ** (decade - power)}{unit}+"
    return "0ns+"


def _time_bins(frame):
    """(frame with bin_start/bin_end: ms after its first time, of TIME_BINS equal bins over
    its time span, the base in ns)."""
    lo, hi = int(frame["evt.rawtime"].min()), int(frame["evt.rawtime"].max())
    width = max(1, -(-(hi - lo + 1) // TIME_BINS))
    start = (pl.col("evt.rawtime") - lo) // width * width
    return frame.with_columns((start / 10**6).alias("bin_start"),
                              ((start + width) / 10**6).alias("bin_end")), lo


def _title(capture, what, filter=None, around=None):
    name = os.path.basename(getattr(capture, "path", capture))
    parts = [f"{name}: {what}"]
    if filter:
        parts.append(f"where {filter}")
    if around:
        parts.append(f"around {around}")
    return " ".join(parts)


def save(chart, out):
    """Write the chart: .html (one file, with Vega's scripts inside: it opens offline), .png
    or .svg (drawn without a browser). Written under a temporary name, then renamed."""
    from scaptool.scap.writer import Temporary, check_output
    out = os.fspath(out)
    kind = os.path.splitext(out)[1].lower()
    if kind not in (".html", ".png", ".svg"):
        raise PlotError("cannot tell what to draw from the name: end it in .html, .png or .svg",
                        path=out)
    check_output(out)
    if kind == ".html":
        data = chart.to_html(inline=True).encode()
    else:
        import vl_convert
        spec = chart.to_json()
        data = vl_convert.vegalite_to_png(spec, scale=2) if kind == ".png" else \
            vl_convert.vegalite_to_svg(spec).encode()
    temporary = Temporary(out)
    try:
        with os.fdopen(os.dup(temporary.fd), "wb") as f:
            f.write(data)
        temporary.publish()
    except OSError as e:
        temporary.discard()
        from scaptool.scap.errors import WriteError
        raise WriteError(f"cannot write: {e.strerror}", path=out) from None
    finally:
        os.close(temporary.fd)
