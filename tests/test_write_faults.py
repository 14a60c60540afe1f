"""Faults while writing: a full disk, a read-only or vanished directory, the process killed
with SIGKILL, a reader that closes the pipe, the live helper killed. Whatever happens, the
destination is the previous file untouched or a complete capture that sysdig reads, never a
part of one, and no temporary file is left beside it.

Root is needed to mount the small file systems (a 1 MiB tmpfs to fill, a read-only one)."""
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import _missing, require_live_capture, require_tool

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
SEED = FIXTURES / "php-database-error.scap"     # 7 KB: the previous file
LIVE = FIXTURES / "php-database-error-live.scap"   # 97 KB, with log writes
SCAPTOOL = [sys.executable, "-m", "scaptool"]
COPIES = 200                                     # -r LIVE 200 times: ~19 MB to write

# what each writer is asked to write into `out`, from the big capture `big`
WRITERS = {
    "read-w": lambda big, out: ["-r", big, "-w", out],
    "read-w-gzip": lambda big, out: ["-r", big, "-z", "-w", out],
    "read-filter-w": lambda big, out: ["-r", big, "-w", out, "evt.type!=switch"],
    "slice": lambda big, out: ["slice", big, "-w", out, "--filter", "evt.type!=switch"],
    "spy_logs-export": lambda big, out: ["-r", big, "-c", "spy_logs", f"{out} 10"],
}


def require_root():
    if os.geteuid() != 0:
        _missing("root (to mount small file systems)", "SCAPTOOL_REQUIRE_TOOLS")


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A capture of ~19 MB: the live fixture read 200 times over, written as one."""
    path = tmp_path_factory.mktemp("big") / "big.scap"
    args = [a for _ in range(COPIES) for a in ("-r", str(LIVE))]
    subprocess.run([*SCAPTOOL, *args, "-w", str(path)], check=True)
    assert path.stat().st_size > 15 << 20
    return str(path)


@pytest.fixture
def mounted(tmp_path):
    """mount(options) -> a fresh tmpfs folder with those options, unmounted at the end."""
    require_root()
    points = []

    def mount(options):
        point = tmp_path / f"fs{len(points)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                       check=True)
        points.append(point)
        return point
    yield mount
    for point in reversed(points):
        subprocess.run(["umount", "-l", str(point)], check=False)


def leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def read_problems(path):
    """What stops sysdig or scaptool reading the capture to its end ([] if nothing does)."""
    if not os.path.exists(path):
        return [f"{path} does not exist"]
    sysdig = require_tool("sysdig")
    theirs = subprocess.run([sysdig, "-r", str(path), "-q"], capture_output=True, text=True)
    ours = subprocess.run([*SCAPTOOL, "-r", str(path), "-q"], capture_output=True, text=True)
    problems = [f"{name} exited {run.returncode}: {run.stderr.strip()}"
                for name, run in (("sysdig", theirs), ("scaptool", ours)) if run.returncode]
    if ours.stderr and not ours.returncode:
        problems.append(f"scaptool said: {ours.stderr.strip()}")
    return problems


def reads_whole(path):
    """sysdig reads the capture to its end without an error, and so does scaptool."""
    return not read_problems(path)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("previous", [True, False], ids=["over-a-file", "new-file"])
def test_disk_full(big, mounted, writer, previous):
    folder = mounted("size=1m")
    out = folder / "out.scap"
    if previous:
        shutil.copy(SEED, out)
    done = subprocess.run([*SCAPTOOL, *WRITERS[writer](big, str(out))], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and str(out) in lines[0], \
        done.stderr
    if previous:
        assert out.read_bytes() == SEED.read_bytes()
    assert leftovers(folder, {"out.scap"} if previous else set()) == []


@pytest.mark.parametrize("writer", WRITERS)
def test_read_only_folder(big, mounted, writer):
    folder = mounted("ro,size=1m")
    out = folder / "out.scap"
    done = subprocess.run([*SCAPTOOL, *WRITERS[writer](big, str(out))], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scaptool: ") and "Traceback" not in \
        done.stderr, done.stderr
    assert not out.exists()


@pytest.mark.parametrize("writer", ["read-w", "slice"])
def test_folder_removed_while_writing(big, tmp_path, writer):
    folder = tmp_path / "gone"
    folder.mkdir()
    out = folder / "out.scap"
    run = subprocess.Popen([*SCAPTOOL, *WRITERS[writer](big, str(out))], text=True,
                           stderr=subprocess.PIPE)
    time.sleep(1.0)
    shutil.rmtree(folder)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 1, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not folder.exists()


@pytest.mark.parametrize("writer", WRITERS)
def test_killed_at_random_moments(big, tmp_path, writer):
    """SIGKILL five times at random moments of a write over a previous file: each time the
    previous file is there untouched or the new one is complete; nothing else is left."""
    sysdig = require_tool("sysdig")
    rng = random.Random(f"kill-{writer}")
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "out.scap"
    outcomes = []
    for _ in range(5):
        shutil.copy(SEED, out)
        run = subprocess.Popen([*SCAPTOOL, *WRITERS[writer](big, str(out))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 6.0))
        run.send_signal(signal.SIGKILL)
        run.wait()
        if out.read_bytes() == SEED.read_bytes():
            outcomes.append("previous")
        else:
            assert subprocess.run([sysdig, "-r", str(out), "-q"]).returncode == 0
            outcomes.append("complete")
        assert leftovers(folder, {"out.scap"}) == []
    assert outcomes


# `scaptool export`: a table, not a capture; pyarrow is its second reader
EXPORTS = {
    "export-parquet": lambda big, out: ["export", big, "-o", out],
    "export-csv": lambda big, out: ["export", big, "-o", out, "evt.type!=switch"],
}
EXPORT_NAMES = {"export-parquet": "out.parquet", "export-csv": "out.csv"}
PREVIOUS = b"the previous file\n"


def export_is_whole(path):
    """The export reads back whole: a Parquet file's footer, or CSV to its last line."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq
        return pq.ParquetFile(path).metadata.num_rows > 0
    import polars as pl
    return pl.read_csv(path, infer_schema=False).height > 0


@pytest.mark.parametrize("writer", EXPORTS)
@pytest.mark.parametrize("previous", [True, False], ids=["over-a-file", "new-file"])
def test_export_on_a_full_disk(big, mounted, writer, previous):
    folder = mounted("size=256k")
    out = folder / EXPORT_NAMES[writer]
    if previous:
        out.write_bytes(PREVIOUS)
    done = subprocess.run([*SCAPTOOL, *EXPORTS[writer](big, str(out))], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and str(out) in lines[0], \
        done.stderr
    assert (out.read_bytes() == PREVIOUS) if previous else not out.exists()
    assert leftovers(folder, {out.name} if previous else set()) == []


@pytest.mark.parametrize("name", ["out.parquet", "dataset/"])
def test_export_into_a_read_only_folder(big, mounted, name):
    folder = mounted("ro,size=1m")
    done = subprocess.run([*SCAPTOOL, "export", big, "-o", f"{folder}/{name}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, \
        done.stderr


@pytest.mark.parametrize("name", ["out.parquet"])
def test_export_into_a_folder_removed_while_writing(big, tmp_path, name):
    gone = tmp_path / "gone"
    gone.mkdir()
    run = subprocess.Popen([*SCAPTOOL, "export", big, "-o", f"{gone}/{name}"], text=True,
                           stderr=subprocess.PIPE)
    time.sleep(1.0)
    shutil.rmtree(gone)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 1, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not gone.exists()


@pytest.mark.parametrize("writer", ["export-parquet"])
def test_export_killed_at_random_moments(big, tmp_path, writer):
    """As for captures: the previous file untouched, or the new one whole; nothing beside."""
    rng = random.Random(f"kill-{writer}")
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / EXPORT_NAMES[writer]
    outcomes = []
    for _ in range(3):
        out.write_bytes(PREVIOUS)
        run = subprocess.Popen([*SCAPTOOL, *EXPORTS[writer](big, str(out))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 6.0))
        run.send_signal(signal.SIGKILL)
        run.wait()
        if out.read_bytes() == PREVIOUS:
            outcomes.append("previous")
        else:
            assert export_is_whole(out)
            outcomes.append("whole")
        assert leftovers(folder, {out.name}) == []
    assert outcomes


def test_a_dataset_killed_while_written_is_swept_by_the_next_export(big, tmp_path):
    """A dataset is written into a hidden folder beside it, renamed at the end: SIGKILL leaves
    that folder (nothing has the dataset's name), and the next export there removes it."""
    run = subprocess.Popen([*SCAPTOOL, "export", big, "-o", f"{tmp_path}/ds/"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert not (tmp_path / "ds").exists()
    subprocess.run([*SCAPTOOL, "export", SEED, "-o", f"{tmp_path}/other.parquet"], check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.parquet"]


def test_a_reader_that_closes_the_pipe_ends_it_as_sysdig_ends(big):
    """`| head -1`: killed quietly by SIGPIPE, sysdig's end too."""
    sysdig = require_tool("sysdig")
    ends = {}
    for name, command in (("sysdig", [sysdig, "-r", big]), ("scaptool", [*SCAPTOOL, "-r", big])):
        run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert run.stdout.readline()
        run.stdout.close()
        err = run.stderr.read()
        run.wait(timeout=60)
        ends[name] = (run.returncode, err)
    assert ends["scaptool"] == ends["sysdig"] == (-signal.SIGPIPE, b"")


def _helper_of(pid, timeout=30):
    """The live helper started by process `pid`, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    if "scaptool-helper" in pathlib.Path(f"/proc/{child}/exe").resolve().name:
                        return int(child)
                except OSError:
                    continue
        time.sleep(0.1)
    raise AssertionError("no live helper started")


def _wait_for_writes(pid, least=16 << 10, timeout=30):
    """Until process `pid` has written `least` bytes (its /proc io counter)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        io = dict(line.split(": ") for line in
                  pathlib.Path(f"/proc/{pid}/io").read_text().splitlines())
        if int(io["wchar"]) >= least:
            return
        time.sleep(0.05)
    raise AssertionError(f"the live helper wrote less than {least} bytes in {timeout} s")


@pytest.mark.parametrize("filtered", [False, True], ids=["helper-writes", "engine-writes"])
def test_live_helper_killed_leaves_a_capture_sysdig_reads(tmp_path, filtered):
    require_live_capture()
    out = tmp_path / "live.scap"
    run = subprocess.Popen([*SCAPTOOL, "-w", str(out), *(["evt.type!=switch"] if filtered
                                                         else [])],
                           stderr=subprocess.PIPE, text=True)
    helper = _helper_of(run.pid)
    # mid-capture: once the helper has written its header and state, and events for a while
    # (how long its probes take to load depends on the machine and its load)
    _wait_for_writes(helper)
    time.sleep(1.0)
    os.kill(helper, signal.SIGKILL)
    _, err = run.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert run.returncode == 0, err
    assert "helper was killed (SIGKILL)" in err
    problems = read_problems(out)
    assert not problems, (problems, err, out.stat().st_size if out.exists() else None)
    assert leftovers(tmp_path, {"live.scap"}) == []


def test_live_reader_killed_stops_its_helper_and_leaves_no_file(tmp_path):
    """scaptool SIGKILLed while its helper writes: the helper stops (it asked the kernel to
    be told), the file is not given its name, and the next write there removes the
    temporary the killed process could not."""
    require_live_capture()
    out = tmp_path / "live.scap"
    run = subprocess.Popen([*SCAPTOOL, "-w", str(out)], stderr=subprocess.DEVNULL)
    helper = _helper_of(run.pid)
    time.sleep(1.0)
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 10
    while pathlib.Path(f"/proc/{helper}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pathlib.Path(f"/proc/{helper}").exists() or \
        pathlib.Path(f"/proc/{helper}/stat").read_text().split()[2] == "Z"
    assert not out.exists()
    subprocess.run([*SCAPTOOL, "-r", str(SEED), "-w", str(tmp_path / "next.scap")], check=True)
    assert leftovers(tmp_path, {"next.scap"}) == []


@pytest.mark.parametrize("filtered", [False, True], ids=["helper-writes", "engine-writes"])
def test_live_capture_on_a_full_disk(mounted, filtered):
    require_live_capture()
    folder = mounted("size=1m")
    out = folder / "live.scap"
    shutil.copy(SEED, out)
    busy = subprocess.Popen(["sh", "-c", "while :; do ls -R /usr >/dev/null; done"])
    try:
        done = subprocess.run([*SCAPTOOL, "-w", str(out), "-n", "2000000",
                               *(["evt.type!=switch"] if filtered else [])],
                              capture_output=True, text=True, timeout=120)
    finally:
        busy.kill()
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], done.stderr
    assert out.read_bytes() == SEED.read_bytes()
    assert leftovers(folder, {"live.scap"}) == []
