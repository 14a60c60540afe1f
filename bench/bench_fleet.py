"""The fleet benchmark (not a test): one question over many captures, read one after the other,
by local worker processes (the default) and by a Dask cluster of two workers on this machine,
with sysdig 0.29.3 reading the same captures (several -r, one after the other) beside them.

    python3 bench/bench_fleet.py [--captures 200] [--large 4] [--large-events 500000]
                                 [--runs 1] [--jobs N]

The captures: the corpus's, repeated in turn up to --captures (symbolic links in a folder of
the run's own), of which --large are the corpus's biggest grown to about --large-events each
(bench/grown.py, made once into bench/out/). Two tasks:

- aggregate: `scaptool sql` of the time per system call (CHISEL_QUERIES' topscalls_time, per
  host) against `sysdig -c topscalls_time`;
- filter: `scaptool export` of the events a filter selects (three fields, to Parquet) against
  `sysdig -p` of the same fields, to a file.

Per task and mode: wall time (median of --runs), events read per second (every event of
every capture over the wall time), and peak RSS: the biggest of the command's own processes
(its local workers are its children), or, on the cluster, each worker's own (VmHWM, read before
the cluster stops) and the client's.
"""
import argparse
import os
import pathlib
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_matrix import corpus, run_once, scaptool_command  # noqa: E402
from grown import event_count, grown  # noqa: E402

AGGREGATE = ('SELECT hostname, "evt.type", sum("evt.latency")::BIGINT AS ns FROM events '
             'WHERE "evt.dir" = \'<\' GROUP BY ALL ORDER BY ns DESC LIMIT 30')
FILTER = "fd.name contains /etc"
FIELDS = ["evt.time", "proc.name", "fd.name"]


def captures_folder(count, large, large_events, work):
    """A folder of `count` links to corpus captures (the `large` biggest grown), and the
    events in them all."""
    sources = sorted(corpus().glob("*.scap"), key=lambda p: -p.stat().st_size)
    big = [grown(p, large_events, HERE / "out")[0] for p in sources[:large]]
    pool = big + sources[large:]
    folder = work / "captures"
    folder.mkdir()
    events = {}
    links = []
    for k in range(count):
        source = pool[k] if k < len(big) else pool[len(big) + (k - len(big)) %
                                                   (len(pool) - len(big))]
        if source not in events:
            events[source] = event_count(source)
        link = folder / f"{k:03d}-{source.name}"
        os.symlink(source, link)
        links.append((link, events[source]))
    return folder, [p for p, _ in links], sum(n for _, n in links)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A Dask scheduler and `workers` workers (one thread each), as processes of their own."""

    def __init__(self, workers):
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        dask = [sys.executable, "-m", "dask"]
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.scheduler = subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port",
                                           self.address.rsplit(":", 1)[1], "--no-dashboard"],
                                          **quiet)
        self.workers = [subprocess.Popen([*dask, "worker", self.address, "--nthreads", "1",
                                          "--no-nanny", "--no-dashboard"], **quiet)
                        for _ in range(workers)]
        from distributed import Client
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(self.address, timeout=5) as client:
                    client.wait_for_workers(workers, timeout=60)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def peaks_mb(self):
        out = []
        for worker in self.workers:
            with open(f"/proc/{worker.pid}/status") as f:
                hwm = next(line for line in f if line.startswith("VmHWM:"))
            out.append(int(hwm.split()[1]) / 1024)
        return out

    def close(self):
        for process in [*self.workers, self.scheduler]:
            process.send_signal(signal.SIGKILL)
            process.wait()


def timed(command, runs, timeout):
    rows = [run_once(command, timeout) for _ in range(runs)]
    secs = [s for s, _ in rows]
    return (None if None in secs else statistics.median(secs),
            statistics.median(mb for _, mb in rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captures", type=int, default=200)
    ap.add_argument("--large", type=int, default=4)
    ap.add_argument("--large-events", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--jobs", type=int, help="local workers (default: scaptool's, one per CPU)")
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args()
    scaptool = scaptool_command()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    folder, paths, events = captures_folder(args.captures, args.large, args.large_events, work)
    glob = f"{folder}/*.scap"
    reads = [w for p in paths for w in ("-r", str(p))]
    out = work / "out.parquet"
    fmt = " ".join(f"%{f}" for f in FIELDS)
    tasks = {
        "aggregate": {"sysdig": ["sysdig", *reads, "-c", "topscalls_time"],
                      "scaptool": [*scaptool, "sql", AGGREGATE, glob]},
        "filter": {"sysdig": ["sh", "-c", shlex.join(["sysdig", *reads, "-p", fmt, FILTER])
                              + f" > {shlex.quote(str(work / 'out.txt'))}"],
                   "scaptool": [*scaptool, "export", glob, "-o", str(out), "-f",
                                ",".join(FIELDS), FILTER]},
    }
    print(f"{args.captures} captures ({args.large} grown to ~{args.large_events:,} events), "
          f"{events:,} events in all, {sum(p.stat().st_size for p in paths) / 2**20:,.0f} MB; "
          f"{os.cpu_count()} CPUs; medians of {args.runs} run(s)")
    print("\n| task | how | wall | events/s | peak RSS (MB) |")
    print("|---|---|---|---|---|")

    def row(task, how, secs, peaks):
        rate = f"{events / secs:,.0f}" if secs else "-"
        wall = f"{secs:.1f} s" if secs else f">{args.timeout:.0f} s"
        print(f"| {task} | {how} | {wall} | {rate} | {peaks} |", flush=True)

    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    for task, commands in tasks.items():
        secs, mb = timed(commands["sysdig"], args.runs, args.timeout)
        row(task, "sysdig, one after the other", secs, f"{mb:.0f}")
        secs, mb = timed([*commands["scaptool"], "--jobs", "1"], args.runs, args.timeout)
        row(task, "scaptool --jobs 1 (one after the other)", secs, f"{mb:.0f}")
        secs, mb = timed([*commands["scaptool"], *jobs], args.runs, args.timeout)
        row(task, f"scaptool, local workers ({args.jobs or os.cpu_count()})", secs,
            f"{mb:.0f} (biggest process)")
        cluster = Cluster(2)
        try:
            secs, mb = timed([*commands["scaptool"], "--cluster", cluster.address], args.runs,
                             args.timeout)
            workers = " / ".join(f"{p:.0f}" for p in cluster.peaks_mb())
        finally:
            cluster.close()
        row(task, "scaptool --cluster, 2 workers", secs, f"workers {workers}, client {mb:.0f}")


if __name__ == "__main__":
    main()
