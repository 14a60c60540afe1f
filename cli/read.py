"""`scaptool [read] -r FILE ...`: sysdig's reading options."""
import click

import scap
from query.summary import capture_summary


@click.command("read", context_settings={"ignore_unknown_options": False})
@click.option("-r", "--read", "path", metavar="FILE", required=True,
              help="Read events from this capture (plain or gzip-compressed).")
@click.option("-w", "--write", "out", metavar="OUT",
              help="Write the events to a capture in the current format instead of printing.")
@click.option("-z", "--compress", is_flag=True, help="With -w: write a gzip-compressed capture.")
@click.option("-S", "--summary", is_flag=True,
              help="Print the event summary (counts by event type) when the capture ends.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print events (with -S: the table only).")
@click.argument("filter_words", nargs=-1)
def read(path, out, compress, summary, quiet, filter_words):
    """Read a capture the way `sysdig -r` does."""
    if filter_words:
        raise click.UsageError("filter expressions are not supported yet: "
                               f"{' '.join(filter_words)!r}")
    capture = scap.open(path)
    if out:
        scap.write_capture(out, capture, compress=compress)
    elif not quiet:
        raise click.UsageError("printing events is not supported yet; use -S -q, -w, or "
                               "`scaptool info`")
    if summary:
        click.echo(capture_summary(capture), nl=False)
