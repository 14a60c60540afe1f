"""`scaptool explain CAPTURE FILTER`: the explain chisel as a command of its own, with
options where the chisel has positional arguments (`-c explain "RANGE_MS json" FILTER`)."""
import click


@click.command("explain")
@click.argument("capture", type=click.Path(dir_okay=False))
@click.argument("filter_words", nargs=-1, required=True, metavar="FILTER...")
@click.option("--window", "window_ms", type=click.IntRange(min=0), default=1000,
              show_default=True, metavar="MS",
              help="How far before and after each event to look, in milliseconds.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per event: verdict, request, peers, failures, lines.")
def explain(capture, filter_words, window_ms, as_json):
    """Tell what went wrong behind each event FILTER matches (typically a vague log line):
    a verdict naming the most likely cause, then what the thread did for the request the
    event belongs to: the servers it called and what they answered, the failures that
    matter, the processes it started. Other requests it served are counted, not told."""
    from .read import read
    arguments = f"{window_ms} json" if as_json else str(window_ms)
    read.main(args=["-r", capture, "-c", "explain", arguments, " ".join(filter_words)],
              prog_name="scaptool explain", standalone_mode=False)
