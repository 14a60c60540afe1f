"""`scaptool export CAPTURE... -o OUT [-f FIELD ...] [FILTER]`: captures as Parquet, Arrow,
CSV or NDJSON tables (query/export.py says what the columns are)."""
import os
import sys

import click

from . import fleet, polars_import, read

_CAPTURE_ENDINGS = (".scap", ".scap.gz", ".gz", ".scap.zst")


def split_captures(words):
    """(captures, filter text): the leading words that name captures (files that exist, or
    names a capture has), then the filter, as sysdig puts a filter after its options."""
    from scaptool.query.fleet import is_many
    captures = []
    for k, word in enumerate(words):
        if os.path.exists(word) or word.endswith(_CAPTURE_ENDINGS) or \
                (is_many(word) and word.rstrip("/").endswith(_CAPTURE_ENDINGS + ("*",))):
            captures.append(word)
        else:
            return captures, " ".join(words[k:])
    return captures, ""


def _fields(given):
    """-f proc.name -f fd.name, or -f proc.name,fd.name: the names, in order."""
    from scaptool.query.export import EXPORT_FIELDS
    names = [name.strip() for words in given for name in words.split(",") if name.strip()]
    return names or list(EXPORT_FIELDS)


@click.command("export", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("words", nargs=-1, required=True, metavar="CAPTURE... [FILTER]")
@click.option("-o", "--output", "out", required=True, metavar="OUT",
              help="Where to write: OUT.parquet, OUT.arrow (Arrow IPC), OUT.csv or "
                   "OUT.ndjson; a folder (OUT/) is a Parquet dataset.")
@click.option("-f", "--field", "fields", multiple=True, metavar="FIELD",
              help="A field to export, as the filter language names it (repeat it, or give "
                   "several separated by commas). Default: the fields of sysdig's default "
                   "line: evt.num, evt.time, evt.cpu, proc.name, thread.tid, evt.dir, "
                   "evt.type, evt.info.")
@click.option("--all-events", is_flag=True,
              help="Every event, those sysdig does not print too (state-only events, "
                   "dropped enter events).")
@fleet.options
def export(words, out, fields, all_events, jobs, cluster):
    """Write the events of one or more captures (those the filter selects) as a table, one
    column per field named after it, typed: evt.time a timestamp in ns UTC, numbers as
    integers, byte buffers as bytes (as text in CSV and NDJSON). With several captures a
    `capture` column says which each row came from, and `hostname` which machine. The
    captures are read a chunk at a time: memory stays bounded whatever their size. Nothing is
    at OUT until the export is complete.

    A CAPTURE may be a glob ('captures/**/*.scap', quoted) or a folder: the captures it names
    are read in parallel (--jobs, --cluster). One that fails is reported on standard error
    and left out, the others go on, and the exit status is 1.
    """
    polars_import.load()
    from scaptool.query import export as exporting
    read._imports_done()   # (the imports, out of the collector's sight)
    from scaptool.query.fields import UnknownFieldError
    from scaptool.scap.errors import ScapError
    import warnings

    from scaptool.scap.errors import ScapWarning
    names, filter_text = split_captures(words)
    if not names:   # (the first word is neither a file nor a capture's name)
        raise ScapError("no such file", path=words[0])
    captures, many = fleet.expand(names)
    fields = _fields(fields)
    for name in fields:
        try:
            exporting.lookup(name)
        except UnknownFieldError:
            raise click.ClickException(f"-f {name}: no such field (scaptool -l lists them)") \
                from None
    if not many:
        read._watch_progress(captures[0])
        try:
            exporting.export(captures, out, fields, filter_text or None,
                             all_events=all_events,
                             on_chunk=lambda chunk: chunk.report("exporting", len(chunk)))
        finally:
            read._progress_done()
        return
    report = fleet.Report(len(captures), "exporting")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScapWarning)   # (the report said them)
            exporting.export(captures, out, fields, filter_text or None,
                             all_events=all_events, capture_column=True, jobs=jobs,
                             cluster=cluster, on_done=report)
    finally:
        report.close()
    if report.failed:
        sys.exit(1)

