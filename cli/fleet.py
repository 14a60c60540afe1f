"""What `scaptool sql` and `scaptool export` share for many captures: the options that say where
the work runs (--jobs, --cluster), the captures their names stand for (globs, folders), and a
report per capture on standard error: a bar of captures done on a terminal, and a line for
each capture that failed (its error) or was cut short, whatever standard error is."""
import sys

import click


def options(command):
    """--jobs and --cluster, on a click command."""
    command = click.option(
        "--cluster", metavar="ADDRESS",
        help="Run the work on a Dask cluster: its scheduler's address (tcp://HOST:8786). "
             "Its workers read the captures by the same names: a shared path, or a URL "
             "(s3://...) they can reach.")(command)
    # (no -j: sysdig's -j is JSON output)
    return click.option(
        "--jobs", type=click.IntRange(min=1), metavar="N",
        help="Read the captures in N local worker processes (default: one per CPU when "
             "there is more than 32 MB of capture; 1: in this process).")(command)


def expand(names):
    """The captures the names stand for, and whether they are a set of them (several names,
    a glob or a folder): then results say which capture and host each row came from."""
    from scaptool.query import fleet
    from scaptool.scap.errors import ScapError
    import os
    many = len(names) > 1 or any(fleet.is_many(n) for n in names)
    try:
        paths = fleet.expand(names)
    except fleet.FleetError as e:
        raise ScapError(str(e)) from None
    for path in paths:
        if "://" not in path and not os.path.exists(path):
            raise ScapError("no such file", path=path)
    return paths, many


class Report:
    """on_done for query.fleet.run: progress over the captures, and their failures."""

    def __init__(self, total, verb):
        self.failed = 0
        self.bar = None
        if total > 1 and _isatty(sys.stderr):
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit=" captures", desc=verb, file=sys.stderr,
                            leave=False, dynamic_ncols=True)

    def __call__(self, done, finished, total):
        from scaptool.scap.errors import error_line
        for line in done.warnings:
            self._say(f"scaptool: warning: {error_line(line)}")
        if done.error is not None:
            self.failed += 1
            self._say(f"scaptool: {error_line(done.error)}")
        if self.bar is not None:
            self.bar.update(1)

    def _say(self, line):
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            click.echo(line, err=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
