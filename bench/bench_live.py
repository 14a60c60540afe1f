"""Live benchmark (not a test): how fast a machine may make events before live scaptool loses
any, and how long a log line takes to show. Root; sysdig takes no part (it cannot capture on
this kernel), so the figures stand against the goals alone.

    sudo python3 bench/bench_live.py [--rates 100000,250000,500000,1000000] [--seconds 4]
                                     [--mode spy_logs] [--mode w]

A load generator (C, built here with cc: it must outrun what it measures) runs for --seconds
at each rate, in ascending order: 64-byte pwrites (two events each) and every 10 ms a line
appended to a .log file, stamped with CLOCK_MONOTONIC. The pwrites go to /dev/null (`null`
load), to a regular file that is no log (`file` load: a database's writes, say) or to a
second log file (`log` load: a log storm, every write a line that spy_logs must print). For
spy_logs the kernel side drops writes to anything but files whose path may be a log's, so
the first two loads' writes never reach scaptool; the third's all do, the worst case. Modes:
  - `w`: `scaptool -w FILE` live; afterwards the generator's events in the file are counted
    against what it did;
  - `spy_logs`: `scaptool -c spy_logs` live; every stamped line (and with the `log` load,
    every pwrite's line) must be printed, and the delay from a stamped line's write to its
    line on scaptool's output is measured (median, 99th percentile).
A rate passes when nothing was dropped (the helper's count) and nothing is missing. The table
ends with the highest rate passed in each mode; a rate the generator could not reach is
shown with the rate it did reach.
"""
import argparse
import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

LOAD_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
/* argv: seconds, events/s, log path, target. 64-byte pwrites at offset 0 of the target at
 * the rate (in 1 ms slices), a stamped line to the log every 10 ms; prints writes, lines,
 * seconds taken. */
static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char **argv)
{
	double secs = atof(argv[1]), rate = atof(argv[2]) / 2, t0 = now(), next_line = t0;
	char buf[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", line[96];
	int null = open(argv[4], O_WRONLY | O_CREAT, 0644);
	int log = open(argv[3], O_WRONLY | O_APPEND | O_CREAT, 0644);
	unsigned long writes = 0, lines = 0;
	for (;;) {
		double t = now();
		if (t - t0 >= secs)
			break;
		if (t >= next_line) {
			struct timespec m;
			clock_gettime(CLOCK_MONOTONIC, &m);
			int n = snprintf(line, sizeof line, "BENCH %lu %lld\n", lines,
					 (long long)m.tv_sec * 1000000000LL + m.tv_nsec);
			if (write(log, line, n) == n)
				lines++;
			next_line += 0.01;
		}
		unsigned long due = (unsigned long)((t - t0) * rate);
		for (int k = 0; k < 1000 && writes < due; k++)
			if (pwrite(null, buf, 64, 0) == 64)
				writes++;
		if (writes >= due) {
			struct timespec nap = { 0, 200000 };
			nanosleep(&nap, NULL);
		}
	}
	printf("%lu %lu %.3f\n", writes, lines, now() - t0);
	return 0;
}
"""

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))   # bench/, beside this
from bench_capture import build_load  # noqa: E402

SCAPTOOL = [sys.executable, "-m", "scaptool"]


def run_load(load, seconds, rate, log, target):
    out = subprocess.run([str(load), str(seconds), str(rate), str(log), str(target)],
                         capture_output=True, text=True, check=True)
    writes, lines, took = out.stdout.split()
    return int(writes), int(lines), float(took)


# what the load's pwrites write (LOAD_C's buf): with the `log` load, each is a line printed
STORM = b"0123456789abcdef0123456789abcdef"


class Output:
    """scaptool's standard output: the stamped lines, each with the CLOCK_MONOTONIC time it
    arrived, and how many lines of the log storm came."""

    def __init__(self, proc):
        self.lines = []
        self.storm = 0
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        buf = b""
        while True:
            data = os.read(stream.fileno(), 1 << 16)
            if not data:
                break
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            buf += data
            *complete, buf = buf.split(b"\n")
            for line in complete:
                if STORM in line:
                    self.storm += 1
                else:
                    self.lines.append((now, line))

    def join(self):
        self._thread.join(30)


def start(args, work):
    return subprocess.Popen(SCAPTOOL + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=work, env=dict(os.environ, TZ="UTC", LC_ALL="C"))


def wait_ready(proc, output, log):
    """Append to the log until spy_logs shows it: the capture is running."""
    for k in range(200):
        with open(log, "a") as f:
            f.write(f"READY {k}\n")
        time.sleep(0.1)
        if any(b"READY" in line for _, line in output.lines):
            return
        if proc.poll() is not None:
            break
    sys.exit("bench_live: spy_logs never showed a line: " + proc.stderr.read().decode())


def stop(proc):
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    err = err.decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"bench_live: scaptool failed ({proc.returncode}): {err}")
    dropped = re.search(r"(\d+) events were dropped", err)
    return int(dropped.group(1)) if dropped else 0


def spy_logs(load, rate, seconds, work, target, load_kind):
    log = work / f"bench-{rate}.log"
    proc = start(["-c", "spy_logs"], work)
    output = Output(proc)
    wait_ready(proc, output, log)
    writes, lines, took = run_load(load, seconds, rate, log, target)
    time.sleep(1)
    drops = stop(proc)
    output.join()
    delays, seen = [], set()
    for arrived, line in output.lines:
        m = re.search(rb"BENCH (\d+) (\d+)$", line)
        if m:
            seen.add(int(m.group(1)))
            delays.append((arrived - int(m.group(2))) / 1e6)
    missing = lines - len(seen)
    if load_kind == "log":
        missing += writes - output.storm
    return dict(reached=2 * (writes + lines) / took, drops=drops, missing=missing,
                median=statistics.median(delays) if delays else None,
                p99=sorted(delays)[int(0.99 * (len(delays) - 1))] if delays else None)


def write_file(load, rate, seconds, work, target):
    log = work / f"bench-w-{rate}.log"
    out = work / f"live-{rate}.scap"
    proc = start(["-w", str(out)], work)
    time.sleep(3)   # (nothing to watch: the helper attaches within a second or two)
    load_proc = subprocess.Popen([str(load), str(seconds), str(rate), str(log), str(target)],
                                 stdout=subprocess.PIPE, text=True)
    pid = load_proc.pid
    writes, lines, took = map(float, load_proc.communicate()[0].split())
    time.sleep(1)
    drops = stop(proc)
    import numpy as np

    import scaptool
    from scaptool.scap.eventtable import sysdig_0293
    table = sysdig_0293()
    writes_ids = [i for i in range(len(table)) if table[i].name in ("write", "pwrite")]
    capture = scaptool.open(out)
    h = capture.headers
    mine = np.asarray(h.tid) == pid
    write_events = int(np.count_nonzero(mine & np.isin(np.asarray(h.type), writes_ids)))
    expected = 2 * (int(writes) + int(lines) + 1)   # (+ its printf at the end)
    size = out.stat().st_size
    out.unlink()
    return dict(reached=expected / took, drops=drops, missing=expected - write_events,
                size_mb=size / 1e6)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100000,250000,500000,1000000,1500000")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--mode", action="append", choices=("spy_logs", "w"))
    parser.add_argument("--load", action="append", choices=("null", "file", "log"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_live: live capture needs root")
    rates = [int(r) for r in args.rates.split(",")]
    modes = args.mode or ["w", "spy_logs"]
    loads = args.load or ["null", "file", "log"]
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        work = pathlib.Path(tmp)
        load = build_load(work, LOAD_C)
        print("| command | load | asked events/s | reached events/s | drops | missing | "
              "delay median / p99 |")
        print("|---|---|---|---|---|---|---|")
        best = {}
        for mode in modes:
            for kind in loads:
                target = {"null": "/dev/null", "file": work / "data.bin",
                          "log": work / "storm.log"}[kind]
                for rate in rates:
                    if mode == "w":
                        r = write_file(load, rate, args.seconds, work, target)
                        delay = "-"
                    else:
                        r = spy_logs(load, rate, args.seconds, work, target, kind)
                        delay = "-" if r["median"] is None else \
                            f"{r['median']:.0f} / {r['p99']:.0f} ms"
                    if r["drops"] == 0 and r["missing"] == 0:
                        best[mode, kind] = max(best.get((mode, kind), 0), r["reached"])
                    name = "scaptool -w FILE" if mode == "w" else "scaptool -c spy_logs"
                    print(f"| `{name}` | {kind} | {rate:,} | {r['reached']:,.0f} | "
                          f"{r['drops']} | {r['missing']} | {delay} |", flush=True)
        print()
        for mode in modes:
            for kind in loads:
                name = "-w FILE" if mode == "w" else "-c spy_logs"
                print(f"highest rate without loss, {name}, {kind} load: "
                      f"{best.get((mode, kind), 0):,.0f} events/s")


if __name__ == "__main__":
    main()
