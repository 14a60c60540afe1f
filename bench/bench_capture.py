"""Live-capture benchmark (not a test): events per second the helper captures while a load
generator runs, and how many it drops.

    sudo python3 bench/bench_capture.py [--seconds 3] [--runs 3] [--out bench/out]

The load generator (C, built here with cc) writes 64 bytes to /dev/null in a tight loop; each
write is an enter and an exit event with 64 bytes of data. Configurations:
  - the load alone (its writes/s without any probe attached);
  - `-p` on the load: only its events are captured, written to a file;
  - system-wide (the load plus everything else), with context switches;
  - a small ring buffer (256 KiB), to show that drops are counted rather than lost silently.
Each line prints the workload's writes/s during the capture, events/s written to the file,
the drops, and the file size. "Without drops" means drops == 0 in that line.
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent

LOAD_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
/* write 64 B to /dev/null for argv[1] seconds; print the number of writes */
int main(int argc, char **argv)
{
	double secs = atof(argv[1]);
	char buf[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";
	int fd = open("/dev/null", O_WRONLY);
	struct timespec t0, t;
	unsigned long n = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		for (int i = 0; i < 1000; i++)
			write(fd, buf, sizeof(buf));
		n += 1000;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= secs)
			break;
	}
	printf("%lu\n", n);
	return 0;
}
"""


def build_load(workdir, source=LOAD_C):
    """Compile a load generator's C source with cc into workdir; returns the binary."""
    src = workdir / "load.c"
    src.write_text(source)
    binary = workdir / "load"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(src)], check=True)
    return binary


def run(label, load, seconds, out, **options):
    from scaptool.scap import live
    if options.pop("alone", False):
        t0 = time.monotonic()
        writes = int(subprocess.run([str(load), str(seconds)], capture_output=True,
                                    text=True, check=True).stdout)
        wall = time.monotonic() - t0
        print(f"{label:<40} {writes / wall:>12,.0f} writes/s   (no capture)")
        return
    system_wide = options.pop("system_wide", False)
    started = time.monotonic()
    if system_wide:
        session = live.LiveCapture(out, **options).start()
        time.sleep(0.2)
        writes = int(subprocess.run([str(load), str(seconds)], capture_output=True, text=True,
                                    check=True).stdout)
        session.stop()
        stats = session.wait()
    else:
        session = live.LiveCapture(out, command=[str(load), str(seconds)], **options)
        # the command's stdout is ours: read the count from a pipe
        r, w = os.pipe()
        saved = os.dup(1)
        os.dup2(w, 1)
        try:
            session.start()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(w)
        stats = session.wait()
        writes = int(os.read(r, 64).decode().strip() or 0)
        os.close(r)
    wall = time.monotonic() - started
    size = os.path.getsize(out)
    # rates over the load's own run time: the capture is idle before and after it
    print(f"{label:<40} {writes / seconds:>12,.0f} writes/s {stats['events'] / seconds:>12,.0f} "
          f"events/s  drops={stats['drops']:<10,} {size / 1e6:8.1f} MB  "
          f"({stats['events']:,} events; {wall:.2f} s with setup)")
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "out"))
    args = ap.parse_args()
    from scaptool.scap import live
    problems = live.run_problems() + live.build_problems()
    if problems:
        sys.exit("bench_capture: live capture needs " + ", ".join(problems))
    live.helper_path(build=True)
    outdir = pathlib.Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / "bench-capture.scap"
    with tempfile.TemporaryDirectory() as tmp:
        load = build_load(pathlib.Path(tmp))
        print(f"{os.cpu_count()} CPUs, {args.seconds:g} s per run, 64-byte writes to /dev/null")
        for i in range(args.runs):
            run("load alone", load, args.seconds, out, alone=True)
            run("-p load, snaplen 80, 8 MiB ring", load, args.seconds, out)
            run("-p load, snaplen 80, 64 MiB ring", load, args.seconds, out, ring_kib=65536)
            run("system-wide + switch, 64 MiB ring", load, args.seconds, out,
                system_wide=True, switch=True, ring_kib=65536)
            run("-p load, 256 KiB ring (drops expected)", load, args.seconds, out,
                ring_kib=256)
    out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
