"""The fuzz targets (fuzz/): every crash they found is replayed, and each target fuzzes for a
bounded number of inputs (about 45 s each, two at a time, from a fixed seed) without a new
one.

A target's contract (fuzz/harness.py): a typed scaptool error or a result for any input,
within libFuzzer's time and memory limits per input."""
import pathlib
import subprocess
import sys

import pytest

FUZZ = pathlib.Path(__file__).resolve().parent.parent / "fuzz"
TARGETS = sorted(p.stem.removeprefix("fuzz_") for p in FUZZ.glob("fuzz_*.py"))
# Inputs each target runs in the tests: about 45 s of each here, with a fixed seed, so that CI
# runs the same inputs every time (a new crash is found by a campaign, not by chance in CI).
FUZZ_INPUTS = {"capture": 3000, "stream": 2500, "gzip": 15000, "filter": 100000,
               "format": 30000, "chisel_args": 7000, "container_json": 5_000_000}
FUZZ_SEED = 1


def test_every_target_has_found_crashes_to_replay():
    assert set(TARGETS) == {p.name for p in (FUZZ / "regressions").iterdir()}


@pytest.mark.parametrize("target", TARGETS)
def test_crashes_found_stay_fixed(target):
    """libFuzzer runs the target once on each input given as a file."""
    inputs = sorted((FUZZ / "regressions" / target).iterdir())
    done = subprocess.run([sys.executable, str(FUZZ / f"fuzz_{target}.py"), *map(str, inputs)],
                          capture_output=True, text=True, errors="replace", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("Executed ") == len(inputs), done.stderr[-3000:]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """Every target fuzzed for its FUZZ_INPUTS from its seeds, two at a time.

    Each through fuzz/campaign.py in a process of its own: libFuzzer's memory limit reads
    the process's peak RSS, which Linux counts from the parent's at the fork; forked from
    this test run (2 GB by the end of the suite), every target would be out of memory at
    its first input."""
    import concurrent.futures
    import json
    work = tmp_path_factory.mktemp("fuzz")

    def run(target):
        done = subprocess.run([sys.executable, str(FUZZ / "campaign.py"), "--inputs",
                               str(FUZZ_INPUTS[target]), "--seconds", "600", "--seed",
                               str(FUZZ_SEED), "--json", "--work", str(work), target],
                              capture_output=True, text=True, timeout=900)
        return json.loads(done.stdout)[0]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return dict(zip(TARGETS, pool.map(run, TARGETS)))


@pytest.mark.parametrize("target", TARGETS)
def test_fuzzing_finds_nothing_new(fuzzed, target):
    result = fuzzed[target]
    print(f"{target}: {result['inputs']} inputs in {result['seconds']} s, cov {result['coverage']}")
    assert result["inputs"] > 0 and result["coverage"] > 0, result
    assert result["crashes"] == [], result["crashes"]
