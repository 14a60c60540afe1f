"""`scaptool plot KIND CAPTURE [FILTER] -o OUT.html|.png|.svg`: a capture as a picture
(plots.py says what each kind draws)."""
import os

import click

from . import polars_import, read


@click.command("plot", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("kind", type=click.Choice(["timeline", "io", "latency"]))
@click.argument("capture")
@click.argument("filter_words", nargs=-1, metavar="[FILTER]")
@click.option("-o", "--output", "out", required=True, metavar="OUT",
              help="OUT.html (opens in a browser, offline too), OUT.png or OUT.svg.")
@click.option("--around", metavar="FILTER",
              help="timeline: only the time around the events this filter matches, marked.")
@click.option("--window", "window_ms", type=click.IntRange(min=0), default=1000,
              show_default=True, metavar="MS",
              help="timeline --around: how far before the first match and after the last.")
def plot(kind, capture, filter_words, out, around, window_ms):
    """Draw a capture: timeline (each thread's system calls over time, failures and log lines
    marked), io (bytes read and written over time per process, and per file or connection)
    or latency (a heat map of system-call latency over time).

    \b
    scaptool plot timeline story.scap -o story.html --around "evt.buffer contains 'Database error'"
    """
    from scaptool.scap.errors import ScapError
    if not os.path.exists(capture):
        raise ScapError("no such file", path=capture)
    if around and kind != "timeline":
        raise click.UsageError("--around draws a timeline only")
    polars_import.load()
    from scaptool import plots
    read._imports_done()   # (the imports, out of the collector's sight)
    filter_text = " ".join(filter_words) or None
    if kind == "timeline":
        chart = plots.timeline(capture, filter_text, around=around, window_ms=window_ms)
    else:
        chart = getattr(plots, kind)(capture, filter_text)
    plots.save(chart, out)
