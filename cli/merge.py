"""`scaptool merge A.scap B.scap ... -w OUT.scap`: several captures as one, their events
interleaved by time (scap/merge.py says how the tables are reconciled)."""
import click


@click.command("merge", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("-w", "--write", "out", required=True, metavar="OUT",
              help="The merged capture (nothing is there until it is complete).")
@click.option("-z", "--compress", is_flag=True, help="Write it gzip-compressed.")
def merge(captures, out, compress):
    """Merge captures into one, their events in time order, so that sysdig and scaptool read
    it with every event's process, fd and user names as in its own capture. Thread ids that
    two machines both use are given new numbers in the later machine's events (captures of
    one machine, same hostname and boot time, keep theirs). A glob or folder names several
    captures. Reading them one after the other instead, each with its own state, is
    `scaptool -r A -r B` (as sysdig does).

    \b
    scaptool merge node-a.scap node-b.scap node-c.scap -w fleet.scap
    """
    from scaptool.scap import merge as merging
    from scaptool.scap.errors import error_line
    from scaptool.scap.writer import check_output

    from . import fleet
    paths, _ = fleet.expand(captures)
    check_output(out, paths)
    merged = merging.merge(paths, out, compress=compress)
    for line in merged.conflicts:
        click.echo(f"scaptool: warning: {error_line(line)}", err=True)
