"""Fuzz chisel arguments: the words after `-c NAME` split and assigned as sysdig does, then
the chisel run with them on the smallest story capture. Wrong arguments are refused with a
ChiselError (a FilterError or FormatError for a filter or field argument, a ScapError for a
file it cannot write); anything else the chisel does with
them ends in its output.

The input's first byte picks the chisel; the rest is its argument words, NUL-separated."""
import io

import harness

harness.instrumented()

from scaptool.scap import ScapError, error_line  # noqa: E402

from scaptool import chisels  # noqa: E402
from scaptool.chisels import ChiselError  # noqa: E402
from scaptool.chisels.run import run_chisel  # noqa: E402
from scaptool.query.field_catalog import FormatError  # noqa: E402
from scaptool.query.filter import FilterError  # noqa: E402

chisels.load_builtins()
NAMES = sorted(chisels.REGISTRY)
CAPTURE = str(harness.FIXTURES / "story-missing-config.scap")


def test_one(data):
    if not data:
        return
    name = NAMES[data[0] % len(NAMES)]
    # (no '/': what a chisel writes, an export say, goes to the target's own folder)
    words = data[1:].decode("utf-8", "replace").replace("/", "_").split("\0") \
        if len(data) > 1 else []
    try:
        run_chisel(CAPTURE, name, words, out=io.StringIO())
    except (ChiselError, FilterError, FormatError, ScapError) as e:
        assert "\n" not in error_line(e)


def seeds():
    import seeds as made
    out = {}
    for chisel, args in made.CHISEL_ARGS:
        if chisel in NAMES:
            out[f"chisel-{chisel}"] = bytes([NAMES.index(chisel)]) + args.encode()
    return out


if __name__ == "__main__":
    import os
    import sys
    import tempfile
    # the corpus and inputs named on the command line, before moving to a folder of our own
    sys.argv[1:] = [a if a.startswith("-") else os.path.abspath(a) for a in sys.argv[1:]]
    os.chdir(tempfile.mkdtemp(prefix="scaptool-fuzz-chisel-"))
    harness.run(test_one, seeds)
