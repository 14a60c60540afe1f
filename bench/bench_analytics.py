"""The analytics benchmark (not a test): `scaptool export` and `scaptool sql` against the
nearest sysdig 0.29.3 invocations, on the engine benchmark's captures.

    python3 bench/bench_analytics.py [--runs 3] [--events 2500000] [--capture NAME ...]

For each capture shape of bench/bench_matrix.py (grown to about 2.5 million events into
bench/out/, made once):

- export: `scaptool export CAPTURE -o OUT.parquet -f FIELDS` against `sysdig -r CAPTURE -j -p
  FORMAT > OUT.json` of the same fields (sysdig's default line's): wall time, peak RSS and
  the output's size;
- three queries: `scaptool sql QUERY CAPTURE` (query/sql_examples.py, CHISEL_QUERIES) against
  the chisel that answers the same question (`sysdig -r CAPTURE -c CHISEL`).

Both tools run alternately, `--runs` times each; the table has the medians.
"""
import argparse
import os
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_matrix import CAPTURES, corpus, medians, scaptool_command  # noqa: E402
from grown import grown  # noqa: E402

from scaptool.query.export import EXPORT_FIELDS  # noqa: E402
from scaptool.query.sql_examples import CHISEL_QUERIES  # noqa: E402


def sh(command, out):
    """A command whose standard output goes to `out` (sysdig -j > file)."""
    import shlex
    return ["sh", "-c", f"{shlex.join(command)} > {shlex.quote(str(out))}"]


def seconds(value, timeout):
    return f"{value:.2f} s" if value is not None else f">{timeout:.0f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--events", type=int, default=2_500_000)
    ap.add_argument("--capture", action="append", choices=list(CAPTURES))
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--out", default=str(HERE / "out"))
    args = ap.parse_args()
    scaptool = scaptool_command()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    fields = list(EXPORT_FIELDS)
    fmt = " ".join(f"%{f}" for f in fields)
    print(f"scaptool: {' '.join(scaptool)}; {args.runs} alternating runs per cell, medians; "
          f"fields: {', '.join(fields)}")
    print("\n| capture (x copies) | task | sysdig | scaptool | ratio | output sysdig / "
          "scaptool | peak RSS sysdig / scaptool |")
    print("|---|---|---|---|---|---|---|")
    wins = cells = 0
    for name in args.capture or list(CAPTURES):
        path, copies = grown(corpus() / f"{name}.scap", args.events, args.out)
        json_out, parquet_out = work / "out.json", work / "out.parquet"
        tasks = {"export": {
            "sysdig": sh(["sysdig", "-r", str(path), "-j", "-p", fmt], json_out),
            "scaptool": [*scaptool, "export", str(path), "-o", str(parquet_out),
                         "-f", ",".join(fields)]}}
        for chisel, query in CHISEL_QUERIES.items():
            tasks[chisel] = {
                "sysdig": sh(["sysdig", "-r", str(path), "-c", chisel], os.devnull),
                "scaptool": sh([*scaptool, "sql", query, str(path)], os.devnull)}
        for task, pair in tasks.items():
            cell = medians(pair, args.runs, args.timeout)
            (s_secs, s_mb), (o_secs, o_mb) = cell["sysdig"], cell["scaptool"]
            sizes = "-"
            if task == "export":
                s_size, o_size = json_out.stat().st_size, parquet_out.stat().st_size
                sizes = f"{s_size / 1e6:.0f} MB / {o_size / 1e6:.1f} MB " \
                        f"({s_size / o_size:.0f}x smaller)"
            ratio = f"{o_secs / s_secs:.2f}x" if s_secs and o_secs else "-"
            cells += 1
            wins += bool(s_secs and o_secs and o_secs < s_secs)
            label = "export to Parquet / -j" if task == "export" else f"sql / -c {task}"
            print(f"| {name} (x{copies}) | {label} | {seconds(s_secs, args.timeout)} | "
                  f"{seconds(o_secs, args.timeout)} | {ratio} | {sizes} | "
                  f"{s_mb:.0f} MB / {o_mb:.0f} MB |", flush=True)
    print(f"\nscaptool faster in {wins} of {cells} cells")


if __name__ == "__main__":
    main()
