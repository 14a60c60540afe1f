"""The benchmark matrix (not a test): scaptool against sysdig 0.29.3 on five capture shapes.

    python3 bench/bench_matrix.py [--runs 3] [--events 2500000] [--capture NAME ...]
                                  [--command NAME ...] [--timeout 300]

Each capture of the corpus named below is grown to about 2.5 million events (its events
repeated with shifted timestamps, blocks kept in their own format; bench/grown.py, made once
into bench/out/). For each, the same commands are run by both tools, alternating, `--runs`
times each, output discarded: the median wall time and the median peak RSS (the kernel's
figure for the process, file pages it mapped included). The table ends with how many cells
are at or under sysdig's time and the largest peak RSS.

Needs sysdig on PATH and the corpus (SCAPTOOL_CORPUS, or ../shared/conformance beside the
checkout). Run the installed console script (`pip install .`), as users do.
"""
import argparse
import os
import pathlib
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))   # bench/grown.py, beside this script

from grown import grown  # noqa: E402

# capture -> a process of it that writes (for proc.name=X and the -j filter)
CAPTURES = {
    "sysflow-nginx": "nginx",
    "sysflow-mpm-event-full": "httpd",
    "instruqt-svh5-activity": "tar",
    "sysdig-examples-example4-1": "dockerd",
    "falco-run-as-user-0-container": "sshd",
}

COMMANDS = {
    "-S -q": lambda x: ["-S", "-q"],
    "proc.name=X": lambda x: [f"proc.name={x}"],
    "fd.name contains /etc": lambda x: ["fd.name contains /etc"],
    "every event": lambda x: [],
    "-j X writes": lambda x: ["-j", f"proc.name={x} and evt.type=write"],
    "-c spy_logs": lambda x: ["-c", "spy_logs"],
    "-c topfiles_bytes": lambda x: ["-c", "topfiles_bytes"],
}


def corpus():
    value = os.environ.get("SCAPTOOL_CORPUS")
    path = pathlib.Path(value) if value else HERE.parent.parent / "shared" / "conformance"
    if not (path / "captures").is_dir():
        sys.exit(f"bench_matrix: no corpus at {path} (set SCAPTOOL_CORPUS)")
    return path / "captures"


def scaptool_command():
    script = pathlib.Path(sysconfig.get_path("scripts")) / "scaptool"
    if script.exists():
        return [str(script)]
    found = shutil.which("scaptool")
    return [found] if found else [sys.executable, "-m", "scaptool"]


def run_once(cmd, timeout):
    """(seconds, peak RSS in MB) of one run, output discarded; seconds is None on timeout."""
    env = dict(os.environ, TZ="UTC", LC_ALL="C")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            return None, usage.ru_maxrss / 1024
        time.sleep(0.002)
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def measure(path, args, runs, timeout, scaptool):
    """Median (seconds, MB) of each tool, run alternately."""
    return medians({"sysdig": ["sysdig", "-r", str(path), *args],
                    "scaptool": [*scaptool, "-r", str(path), *args]}, runs, timeout)


def medians(commands, runs, timeout):
    """{name: (median seconds or None on a timeout, median MB)} of commands run alternately."""
    results = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            results[name].append(run_once(command, timeout))
    out = {}
    for name, rows in results.items():
        secs = [s for s, _ in rows]
        out[name] = (None if None in secs else statistics.median(secs),
                     statistics.median(mb for _, mb in rows))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--events", type=int, default=2_500_000)
    ap.add_argument("--capture", action="append", choices=list(CAPTURES))
    ap.add_argument("--command", action="append", choices=list(COMMANDS))
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--out", default=str(HERE / "out"))
    args = ap.parse_args()
    if shutil.which("sysdig") is None:
        sys.exit("bench_matrix: sysdig is not on PATH")
    scaptool = scaptool_command()
    captures = args.capture or list(CAPTURES)
    commands = args.command or list(COMMANDS)
    print(f"scaptool: {' '.join(scaptool)}; {args.runs} alternating runs per cell, medians")
    print("| capture (x copies) | command | sysdig | scaptool | ratio | "
          "peak RSS sysdig / scaptool |")
    print("|---|---|---|---|---|---|")
    at_or_under, cells, worst_rss = 0, 0, 0.0
    for name in captures:
        path, copies = grown(corpus() / f"{name}.scap", args.events, args.out)
        for command in commands:
            cell = measure(path, COMMANDS[command](CAPTURES[name]), args.runs, args.timeout,
                           scaptool)
            (s_secs, s_mb), (o_secs, o_mb) = cell["sysdig"], cell["scaptool"]
            cells += 1
            worst_rss = max(worst_rss, o_mb)
            if o_secs is None:
                ours, ratio = f">{args.timeout:.0f} s", "-"
            else:
                ours = f"{o_secs:.2f} s"
                ratio = f"{o_secs / s_secs:.2f}x" if s_secs else "-"
                at_or_under += bool(s_secs and o_secs <= s_secs)
            theirs = f"{s_secs:.2f} s" if s_secs is not None else f">{args.timeout:.0f} s"
            label = shlex.join(COMMANDS[command](CAPTURES[name])) or "(print every event)"
            print(f"| {name} (x{copies}) | `{label}` | {theirs} | {ours} | {ratio} | "
                  f"{s_mb:.0f} MB / {o_mb:.0f} MB |", flush=True)
    print(f"\n{at_or_under} of {cells} cells at or under sysdig's time; "
          f"scaptool's largest peak RSS {worst_rss:.0f} MB")


if __name__ == "__main__":
    main()
