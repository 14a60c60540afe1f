"""Format-layer benchmark (not a test): scaptool against sysdig 0.29.3 on the same big capture.

    python3 bench/bench_format.py [--source CAPTURE] [--events N] [--out bench/out/big.scap]

Builds a capture of at least N events (default 5 million) by repeating a real capture's events
with shifted timestamps (written by scaptool's own writer), then times, in one run:
  - `scaptool -r BIG -S -q` and `sysdig -r BIG -S -q` (wall time, peak RSS, same output?)
  - the library: scap.open + event headers, then the byte-buffer column (`data`), in a fresh
    process so its peak RSS is its own (it includes the file's own pages, mapped: 1x).
"""
import argparse
import os
import pathlib
import subprocess
import sys
import sysconfig
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_SOURCE = "sysflow-nginx.scap"


def build(source, out, target):
    from scaptool import scap
    from scaptool.scap import metadata
    from scaptool.scap.writer import Writer
    cap = scap.open(source)
    h = cap.headers
    stamped = h.ts[h.ts > 0]
    span = int(stamped.max()) - int(stamped.min()) + 1_000_000
    reps = -(-target // len(h))
    payload_len = h.length.astype(np.int64) - (h.lens_start - h.record)
    with Writer(out) as w:
        w.write_section_header()
        for block in metadata.current_blocks(cap, 0):
            w.write(block)
        for r in range(reps):
            ts = np.where(h.ts > 0, h.ts + np.uint64(r * span), h.ts)
            w.write_events(ts, h.tid, h.cpu, h.type, cap.buffer, h.lens_start, payload_len,
                           h.nparams, h.dump_flags)
    return reps * len(h)


def timed(cmd):
    """(seconds, peak RSS in MiB, stdout) of a command run to completion."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, TZ="UTC", LC_ALL="C"))
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, out


LIBRARY_PROBE = r"""
import resource, sys, time
t0 = time.perf_counter()
from scaptool import scap
t1 = time.perf_counter()
cap = scap.open(sys.argv[1])
cap.headers
t2 = time.perf_counter()
data = cap.param("data")
t3 = time.perf_counter()
print(len(cap), t1 - t0, t2 - t1, t3 - t2, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      data.null_count())
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus = pathlib.Path(os.environ.get("SCAPTOOL_CORPUS", HERE.parent.parent / "shared" /
                                         "conformance"))
    ap.add_argument("--source", default=str(corpus / "captures" / DEFAULT_SOURCE))
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--out", default=str(HERE / "out" / "big.scap"))
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command (best counts)")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not out.exists():
        t = time.perf_counter()
        n = build(args.source, out, args.events)
        print(f"built {out}: {n:,} events, {out.stat().st_size / 2**20:.0f} MiB "
              f"in {time.perf_counter() - t:.1f} s (from {pathlib.Path(args.source).name})")
    size_mib = out.stat().st_size / 2**20

    print(f"\n{'command (best of ' + str(args.repeat) + ' runs)':<40} {'wall s':>8} "
          f"{'peak MiB':>9}")
    results = {}
    # the console script beside this interpreter: a version manager's shim (pyenv's costs
    # ~50 ms a call) is not part of scaptool
    script = pathlib.Path(sysconfig.get_path("scripts")) / "scaptool"
    scaptool = [str(script)] if script.exists() else [sys.executable, "-m", "scaptool"]
    for name, cmd in (("sysdig -r BIG -S -q", ["sysdig", "-r", str(out), "-S", "-q"]),
                      ("scaptool -r BIG -S -q", scaptool + ["-r", str(out), "-S", "-q"])):
        runs = [timed(cmd) for _ in range(args.repeat)]
        secs = min(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        results[name] = runs[0][2]
        print(f"{name:<40} {secs:8.2f} {rss:9.0f}")
    same = results["sysdig -r BIG -S -q"] == results["scaptool -r BIG -S -q"]
    print(f"summary tables identical: {same}")

    proc = subprocess.run([sys.executable, "-c", LIBRARY_PROBE, str(out)], capture_output=True,
                          text=True, check=True)
    n, t_import, t_open, t_data, rss, _ = proc.stdout.split()
    n, t_open, t_data, rss = int(n), float(t_open), float(t_data), float(rss)
    print(f"\nlibrary on {n:,} events ({size_mib:.0f} MiB uncompressed):")
    print(f"  import scap                 {float(t_import):6.2f} s")
    print(f"  open + event headers        {t_open:6.2f} s  {n / t_open / 1e6:5.2f} M events/s")
    print(f"  + byte-buffer column (data) {t_data:6.2f} s  "
          f"{n / (t_open + t_data) / 1e6:5.2f} M events/s overall")
    print(f"  peak RSS                    {rss:6.0f} MiB = {rss / size_mib:.2f} x the file")


if __name__ == "__main__":
    main()
