"""Run fuzz targets for a number of inputs or a time, through crashes, and report per target:
inputs run, coverage reached (libFuzzer's cov: edges of scaptool's code; ft: features), and
the crashes found, each with the input libFuzzer wrote for it.

    python3 fuzz/campaign.py [--inputs N] [--seconds S] [--jobs J] [--work DIR] [--json]
                             [TARGET ...]

A target is the part of a fuzz_*.py name after fuzz_ (all of them when none is named). A run
stops at the first crash; the campaign starts the target again on the same corpus (what it
learnt stays) until it has run its inputs or its time, or found MAX_CRASHES crashes.
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
TARGETS = sorted(p.stem.removeprefix("fuzz_") for p in HERE.glob("fuzz_*.py"))
MAX_CRASHES = 5
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)
_COVERAGE = re.compile(r"cov: (\d+) ft: (\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_EXCEPTION = re.compile(r"^(\w+(?:Error|Exception)\b.*)$", re.M)


def campaign(target, inputs, seconds, work, seed=None):
    """Fuzz one target; a dict of what it did. With a seed, libFuzzer's choices repeat: the
    same inputs in the same order (the first run of them, at least)."""
    corpus = work / "corpus" / target
    crashes_dir = work / "crashes" / target
    corpus.mkdir(parents=True, exist_ok=True)
    crashes_dir.mkdir(parents=True, exist_ok=True)
    ran, coverage, features, crashes = 0, 0, 0, []
    started = time.monotonic()
    while len(crashes) < MAX_CRASHES:
        left_s = int(seconds - (time.monotonic() - started)) if seconds else None
        left_n = inputs - ran if inputs else None
        if (left_s is not None and left_s <= 0) or (left_n is not None and left_n <= 0):
            break
        flags = ["-print_final_stats=1", f"-artifact_prefix={crashes_dir}/"]
        if seed is not None:
            flags.append(f"-seed={seed}")
        if left_s is not None:
            flags.append(f"-max_total_time={left_s}")
        if left_n is not None:
            flags.append(f"-runs={left_n}")
        done = subprocess.run([sys.executable, str(HERE / f"fuzz_{target}.py"), *flags,
                               str(corpus)], capture_output=True, text=True, errors="replace")
        log = done.stderr
        stats = {k: int(v) for k, v in _STAT.findall(log)}
        ran += stats.get("number_of_executed_units", 0)
        found = _COVERAGE.findall(log)
        if found:
            coverage, features = max(coverage, int(found[-1][0])), max(features,
                                                                      int(found[-1][1]))
        if done.returncode == 0:
            break
        artifact = _ARTIFACT.search(log)
        exception = _EXCEPTION.findall(log)
        crashes.append({"input": artifact.group(1) if artifact else None,
                        "error": exception[0] if exception else log.strip()[-300:]})
        if not stats:   # it did not even start: nothing to go on with
            break
    return {"target": target, "inputs": ran, "coverage": coverage, "features": features,
            "seconds": round(time.monotonic() - started), "crashes": crashes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", choices=TARGETS + [[]], metavar="TARGET")
    parser.add_argument("--inputs", type=int, help="inputs to run per target")
    parser.add_argument("--seconds", type=int, help="time per target")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once")
    parser.add_argument("--seed", type=int, help="libFuzzer's random seed (default: new)")
    parser.add_argument("--work", default="fuzz-work", help="corpora and crashes go here")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not (args.inputs or args.seconds):
        parser.error("give --inputs, --seconds or both")
    work = pathlib.Path(args.work).resolve()
    targets = args.targets or TARGETS
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda t: campaign(t, args.inputs, args.seconds, work,
                                                   args.seed), targets))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'target':16} {'inputs':>10} {'cov':>6} {'ft':>7} {'time':>7}  crashes")
        for r in results:
            print(f"{r['target']:16} {r['inputs']:>10} {r['coverage']:>6} {r['features']:>7} "
                  f"{r['seconds']:>6}s  {len(r['crashes'])}")
            for crash in r["crashes"]:
                print(f"    {crash['input']}: {crash['error']}")
    return 1 if any(r["crashes"] for r in results) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
