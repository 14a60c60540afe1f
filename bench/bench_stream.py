"""Stream-reader benchmark (not a test): time and peak memory of reading a capture's event
headers through scap.stream.StreamReader (every chunk's headers decoded, ts read) against
Capture(path).headers, which maps the whole file.

    python3 bench/bench_stream.py CAPTURE [CAPTURE...] [--runs 5] [--read-size MiB]

Each reading runs in a fresh interpreter under /usr/bin/time, alternating between the two
readers; a line gives the best wall time of the runs, the throughput (MB/s of the block
stream, events/s) and the largest peak RSS seen (the kernel counts the touched pages of a
memory-mapped file as the process's own: Capture's peak grows with the file, the reader's
should not).
"""
import argparse
import os
import re
import subprocess
import sys

STREAM = """
import sys, time
from scaptool.scap.stream import EventChunk, StreamReader
t = time.perf_counter()
n = 0
for item in StreamReader(sys.argv[1], read_size=int(sys.argv[2]) << 20):
    if isinstance(item, EventChunk):
        n += len(item.headers)
        item.headers.ts
print(n, time.perf_counter() - t)
"""

WHOLE = """
import sys, time
from scaptool.scap import Capture
t = time.perf_counter()
cap = Capture(sys.argv[1])
h = cap.headers
h.ts
print(len(h), time.perf_counter() - t)
"""


def run(code, path, read_size):
    """(events, seconds inside the reader, wall seconds, peak RSS in KB) of one run."""
    r = subprocess.run(["/usr/bin/time", "-f", "TIME %e s %M KB", sys.executable, "-c", code,
                        str(path), str(read_size)], capture_output=True, text=True, check=True)
    events, seconds = r.stdout.split()
    wall, rss = re.search(r"TIME ([\d.]+) s (\d+) KB", r.stderr).groups()
    return int(events), float(seconds), float(wall), int(rss)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captures", nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--read-size", type=int, default=16, help="the reader's window, MiB")
    args = parser.parse_args()
    for path in args.captures:
        size = os.path.getsize(path)
        results = {"stream": [], "Capture": []}
        for _ in range(args.runs):
            for name, code in (("stream", STREAM), ("Capture", WHOLE)):
                results[name].append(run(code, path, args.read_size))
        print(f"{path}: {size / 1e6:.0f} MB")
        for name, runs in results.items():
            events = runs[0][0]
            best = min(r[1] for r in runs)
            wall = min(r[2] for r in runs)
            rss = max(r[3] for r in runs)
            print(f"  {name:8} {events} events  {best:.3f} s reading ({wall:.2f} s with "
                  f"start-up)  {size / best / 1e6:.0f} MB/s  {events / best / 1e6:.1f} M "
                  f"events/s  peak RSS {rss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
