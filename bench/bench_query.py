"""Query benchmark (not a test): a filter on the big capture, scaptool against sysdig 0.29.3.

    python3 bench/bench_query.py [--big bench/out/big.scap] [--filter TEXT]

Uses the capture bench_format.py builds. Times, in one run:
  - `sysdig -r BIG FILTER` and `scaptool -r BIG FILTER` (cold CLI, output discarded),
    alternating, 7 runs each: median and best;
  - the library: scap.open + the frame of the filter's fields (state included), then the
    filter alone on that already-built frame, best of several runs.
"""
import argparse
import compileall
import pathlib
import statistics
import subprocess
import sys
import sysconfig
import time

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_FILTER = "evt.buffer contains GET and proc.name=nginx"


ROOT = HERE.parent
RUNS = 7


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
    scaptool = [str(script)] if script.exists() else [sys.executable, "-m", "scaptool"]

    # An installed package has its bytecode compiled; an editable checkout run with
    # PYTHONDONTWRITEBYTECODE set (as some sandboxes do) would compile every module on every
    # run instead, which is not what users see.
    for package in ("scap", "query", "cli", "chisels"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    print(f"filter: {args.filter}")
    # the two commands alternate, RUNS times each: the machine's noise hits both alike
    runs = {"sysdig": [], "scaptool": []}
    lines = {}
    for _ in range(RUNS):
        for name, cmd in (("sysdig", ["sysdig", "-r", big, args.filter]),
                          ("scaptool", scaptool + ["-r", big, args.filter])):
            secs, lines[name] = wall(cmd)
            runs[name].append(secs)
    for name in ("sysdig", "scaptool"):
        print(f"{name} -r BIG FILTER  median {statistics.median(runs[name]):6.2f} s  "
              f"best {min(runs[name]):6.2f} s  ({RUNS} runs, {lines[name]} lines)")
    sysdig_secs = statistics.median(runs["sysdig"])

    from scaptool import query
    from scaptool import scap
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
