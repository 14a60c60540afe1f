"""What every fuzz target shares: atheris set up over scaptool's own code, a corpus seeded
from the project's fixtures, and the contract each target checks.

The contract: for any input, a target either returns or raises one of the typed errors its
API documents (ScapError, FilterError, FormatError, ChiselError). Any other exception is a
crash that atheris reports with the input that made it. Hangs and memory are bounded by
libFuzzer's own flags, which `run` sets unless given: -timeout (seconds per input) and
-rss_limit_mb.

    python3 fuzz/fuzz_capture.py [libFuzzer flags] [CORPUS_DIR ...]

An empty or missing corpus directory is first filled with the target's seeds.
"""
import os
import pathlib
import sys
import tempfile
import warnings

import atheris

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TIME_LIMIT_S = 10      # per input
MEMORY_LIMIT_MB = 1536  # the whole process: Python, Polars and numpy come to ~300 MB


def instrumented():
    """Import scaptool with coverage instrumentation (its modules only: the libraries under
    it are compiled code that atheris does not see into)."""
    with atheris.instrument_imports(include=["scaptool"]):
        import scaptool.chisels  # noqa: F401
        import scaptool.chisels.run  # noqa: F401
        import scaptool.query.api  # noqa: F401
        import scaptool.query.chunks  # noqa: F401
        import scaptool.query.container_json  # noqa: F401
        import scaptool.query.format  # noqa: F401
        import scaptool.query.select  # noqa: F401
        import scaptool.scap  # noqa: F401
        import scaptool.scap.source  # noqa: F401
        import scaptool.scap.stream  # noqa: F401
    for module in ("tables", "logs", "io", "system", "performance", "security", "http",
                   "dump", "explain"):
        with atheris.instrument_imports(include=["scaptool"]):
            __import__(f"scaptool.chisels.{module}")


def fixture_captures():
    """The project's own captures: what its writer made from the scenarios in fixtures/."""
    return sorted(FIXTURES.glob("*.scap"))


def scratch_path(suffix=".scap"):
    """A file to write each input to (in memory where the machine has /dev/shm)."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    return os.path.join(folder, f"scaptool-fuzz-{os.getpid()}{suffix}")


def seed(corpus, seeds):
    """Fill an empty corpus directory with the seeds (name -> bytes)."""
    corpus = pathlib.Path(corpus)
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for name, data in seeds.items():
            (corpus / name).write_bytes(data)


def run(test_one, seeds):
    """Start fuzzing test_one (bytes -> None) with libFuzzer's arguments from the command
    line; seeds() gives the corpus to start from (name -> bytes)."""
    argv = list(sys.argv)
    flags = [a for a in argv[1:] if a.startswith("-")]
    dirs = [a for a in argv[1:] if not a.startswith("-")]
    if not dirs:
        dirs = [tempfile.mkdtemp(prefix="scaptool-fuzz-")]
        argv.append(dirs[0])
    if not os.path.isfile(dirs[0]):   # (a file: one input run again, a crash reproduced)
        seed(dirs[0], seeds())
    if not any(a.startswith("-timeout=") for a in flags):
        argv.append(f"-timeout={TIME_LIMIT_S}")
    if not any(a.startswith("-rss_limit_mb=") for a in flags):
        argv.append(f"-rss_limit_mb={MEMORY_LIMIT_MB}")
    warnings.simplefilter("ignore")   # ScapWarning says what the ScapError would: not a crash
    atheris.Setup(argv, test_one)
    atheris.Fuzz()
