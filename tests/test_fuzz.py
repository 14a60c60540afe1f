"""The fuzz targets (fuzz/): every crash they found is replayed, and each target fuzzes for a
bounded time (FUZZ_SECONDS, about a minute; two at a time) without a new one.

A target's contract (fuzz/harness.py): a typed scaptool error or a result for any input,
within libFuzzer's time and memory limits per input."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

FUZZ = pathlib.Path(__file__).resolve().parent.parent / "fuzz"
TARGETS = sorted(p.stem.removeprefix("fuzz_") for p in FUZZ.glob("fuzz_*.py"))
FUZZ_SECONDS = int(os.environ.get("SCAPTOOL_FUZZ_SECONDS", "55"))


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
    """Every target fuzzed for FUZZ_SECONDS from its seeds, two at a time."""
    work = tmp_path_factory.mktemp("fuzz")
    done = subprocess.run([sys.executable, str(FUZZ / "campaign.py"), "--seconds",
                           str(FUZZ_SECONDS), "--jobs", "2", "--json", "--work", str(work)],
                          capture_output=True, text=True, timeout=FUZZ_SECONDS * 8 + 600)
    results = {r["target"]: r for r in json.loads(done.stdout)}
    return results


@pytest.mark.parametrize("target", TARGETS)
def test_fuzzing_for_a_minute_finds_nothing(fuzzed, target):
    result = fuzzed[target]
    assert result["inputs"] > 0 and result["coverage"] > 0, result
    assert result["crashes"] == [], result["crashes"]
