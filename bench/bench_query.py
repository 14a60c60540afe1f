"""Query benchmark (not a test): a filter on the big capture, scaptool against sysdig 0.29.3.

    python3 bench/bench_query.py [--big bench/out/big.scap] [--filter TEXT]

Uses the capture bench_format.py builds. Times, in one run:
  - `sysdig -r BIG FILTER` and `scaptool -r BIG FILTER` (cold CLI, output discarded);
  - the library: scap.open + the frame of the filter's fields (state included), then the
    filter alone on that already-built frame, best of several runs.
"""
import argparse
import pathlib
import subprocess
import sys
import sysconfig
import time

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_FILTER = "evt.buffer contains GET and proc.name=nginx"


def wall(cmd):
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, proc.stdout.count(b"\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", default=str(HERE / "out" / "big.scap"))
    ap.add_argument("--filter", default=DEFAULT_FILTER)
    args = ap.parse_args()
    big = args.big
    if not pathlib.Path(big).exists():
        sys.exit(f"{big} is missing: run bench/bench_format.py first")
    script = pathlib.Path(sysconfig.get_path("scripts")) / "scaptool"
    scaptool = [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]

    print(f"filter: {args.filter}")
    secs, lines = wall(["sysdig", "-r", big, args.filter])
    print(f"sysdig -r BIG FILTER          {secs:8.2f} s  {lines} lines")
    sysdig_secs = secs
    secs, lines = wall(scaptool + ["-r", big, args.filter])
    print(f"scaptool -r BIG FILTER        {secs:8.2f} s  {lines} lines")

    import query
    import scap
    start = time.perf_counter()
    cap = scap.open(big)
    fields = query.filter_fields(args.filter)
    table = query.frame(cap, fields, all_events=True)
    built = time.perf_counter() - start
    expr = query.filter_expr(args.filter)
    best = min(_timed(lambda: table.filter(expr).height) for _ in range(5))
    hits = table.filter(expr).height
    print(f"library: open + frame of {fields}: {built:.2f} s")
    print(f"library: filter on the opened capture: {best * 1000:.1f} ms ({hits} events), "
          f"{sysdig_secs / best:.0f}x faster than sysdig's run")


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
