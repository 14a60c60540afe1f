"""A table chisel over many captures (`scaptool -r 'captures/*.scap' -c topprocs_file`): each
capture's sums made where it is read, in parallel (query.fleet), then ranked together into one
table whose rows say which capture and host they come from.

Only the chisels that are one table_generator call (chisels/tables.py: TABLES) work so: their
sums are whole numbers per key, which add up whatever the order. A capture is one task; its
sums come back as a small Polars frame (a row per key), not its events.
"""
import io
import os

import polars as pl

from .tables import TABLES, print_table, ranked

HOST, CAPTURE = "Host", "Capture"


def is_table(name):
    return name in TABLES


def capture_sums(path, name, words):
    """A fleet task: the chisel run over one capture, its output dropped; (hostname, its
    sums: `group`, key_0.., `value`). Damage that is not a cut-short end is the capture's
    error; a capture cut short keeps its sums, with a warning."""
    import warnings

    from scaptool.scap import ScapWarning, TruncatedError

    from .run import run_chisel
    carry = {}
    run = run_chisel(path, name, words, out=io.StringIO(), disable_color=True, carry=carry)
    if run.damage is not None:
        if not isinstance(run.damage, TruncatedError):
            raise run.damage
        warnings.warn(ScapWarning(f"{run.damage}; keeping everything before it"))
    from scaptool.query.fleet import machine_of
    return machine_of(path).get("hostname"), carry.get("table_sums")


def print_fleet_table(paths, name, words, out, *, jobs=None, cluster=None, on_done=None):
    """The chisel's table over all the captures: a row per capture and key, the biggest
    sums first (sysdig's top N of them), with the host and capture after the keys. Returns
    the number of captures that failed."""
    from scaptool.query import fleet

    from . import find
    from .run import ChiselRun, take_arguments
    chisel = find(name)
    args, _ = take_arguments(chisel, words)
    key_descs, value_desc, top, units = TABLES[name]
    if key_descs is None:   # (the key is the argument: fdbytes_by KEY)
        key_descs = [args.get("key")]
    parts, failed = [], 0
    for done in fleet.run(capture_sums, paths, name, list(words), jobs=jobs, cluster=cluster,
                          on_done=on_done):
        if done.error is not None:
            failed += 1
            continue
        hostname, sums = done.value
        if sums is None or not sums.height:
            continue
        parts.append(sums.with_columns(pl.lit(hostname or "", dtype=pl.String).alias("_host"),
                                       pl.lit(os.fspath(done.path)).alias("_capture")))
    keys = [f"key_{i}" for i in range(len(key_descs))]
    if parts:
        table = ranked(pl.concat(parts, how="vertical_relaxed"))
    else:
        table = pl.DataFrame(schema={**{k: pl.String for k in keys}, "value": pl.Float64,
                                     "_host": pl.String, "_capture": pl.String})
    if top:
        table = table.head(top)
    # the capture goes last: the last column is printed whole (a path), the others cut at 20
    table = table.select(*keys, pl.col("_host").alias(f"key_{len(keys)}"),
                         pl.col("_capture").alias(f"key_{len(keys) + 1}"), "value")
    run = ChiselRun(None, None, "", args, out, color=False)
    print_table(run, table, [*key_descs, HOST, CAPTURE], value_desc, units)
    return failed
