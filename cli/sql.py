"""`scaptool sql "SELECT ..." CAPTURE...`: SQL over captures' tables, on DuckDB (query/sql.py
says which tables there are and what they hold)."""
import sys

import click

from . import fleet, polars_import, read

FORMATS = ("table", "csv", "json", "ndjson")


@click.command("sql", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("query", required=False)
@click.argument("captures", nargs=-1, metavar="CAPTURE...")
@click.option("--examples", is_flag=True, help="Print example queries and the questions "
              "they answer, and exit.")
@fleet.options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True,
              help="table: aligned columns; csv; json: one array of objects; ndjson: an "
                   "object per line.")
def sql(query, captures, fmt, examples, jobs, cluster):
    """Run QUERY (DuckDB's SQL) over the captures. Tables: events (one column per field the
    query names, quoted as the filter language spells it: "proc.name"), threads, processes,
    fds and connections (versions of their state, valid_from to valid_to), logs (the lines
    spy_logs shows) and syslog.

    A CAPTURE may be a glob ('captures/**/*.scap', quoted) or a folder: every capture it
    names is read, in parallel (--jobs, --cluster), and each table gets `capture` and
    `hostname` columns first. The table `captures` has a row per capture: its hostname, and
    the error that stopped it. A capture that fails is reported on standard error, the
    others go on, and the exit status is 1.

    \b
    scaptool sql 'SELECT "proc.name", count(*) AS n FROM events GROUP BY 1 ORDER BY n DESC' t.scap
    scaptool sql 'SELECT hostname, count(*) FROM events GROUP BY 1' 'captures/**/*.scap'
    """
    import warnings

    from scaptool.scap.errors import ScapWarning
    if examples:
        from scaptool.query.sql_examples import EXAMPLES
        for question, text in EXAMPLES.values():
            click.echo(f"-- {question}\n{text};\n")
        return
    if not query or not captures:
        raise click.UsageError("give a query and at least one capture")
    paths, many = fleet.expand(captures)
    polars_import.load()
    import duckdb  # noqa: F401

    from scaptool.query import sql as sql_query
    read._imports_done()   # (the imports, out of the collector's sight)
    report = fleet.Report(len(paths), "reading")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScapWarning)   # (the report said them)
            result = sql_query.sql(query, paths, jobs=jobs, cluster=cluster,
                                   on_done=report, capture_column=many)
    except sql_query.SqlError as e:
        from scaptool.scap.errors import error_line
        click.echo(f"scaptool: sql: {error_line(e)}", err=True)
        sys.exit(2)
    finally:
        report.close()
    _print(result, fmt)
    if report.failed:
        sys.exit(1)


def _print(frame, fmt):
    out = sys.stdout
    if fmt == "csv":
        out.write(_texts(frame).write_csv())
    elif fmt == "ndjson":
        out.write(_texts(frame, lists=False).write_ndjson())
    elif fmt == "json":
        out.write(_texts(frame, lists=False).write_json() + "\n")
    else:
        out.write(aligned(_texts(frame)))


def aligned(frame):
    """The rows under their column names, each column as wide as its widest value: numbers
    to the right, the rest to the left, NULL for a missing value, the values whole."""
    import polars as pl
    columns = []
    for name, dtype in frame.schema.items():
        column = frame[name]
        if isinstance(dtype, pl.Datetime):   # (str() of a datetime stops at microseconds)
            column = column.dt.to_string("%Y-%m-%d %H:%M:%S%.9f")
        values = ["NULL" if v is None else _terminal_safe(str(v)) for v in column.to_list()]
        width = max([len(name), *map(len, values)])
        right = dtype.is_numeric()
        columns.append([(name.rjust if right else name.ljust)(width),
                        "-" * width] + [(v.rjust if right else v.ljust)(width) for v in values])
    if not columns:
        return ""
    lines = ["  ".join(cells).rstrip() for cells in zip(*columns)]
    return "\n".join(lines) + "\n"


def _texts(frame, lists=True):
    """Byte columns as text; lists joined where CSV has none (as export writes them)."""
    from scaptool.query.export import as_text
    return as_text(frame, lists)


def _terminal_safe(text):
    """A capture's text cannot drive the terminal: its control characters print as '.'."""
    return _CONTROLS.sub(".", text)


# what query.format.defused shows as '.' (a terminal acts on them), in Python's syntax
_CONTROLS = __import__("re").compile("[\x05\x07\x08\x0b-\x0f\x1b\x80-\x9f]")
