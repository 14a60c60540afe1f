"""Live capture: a libbpf helper writes the events of the running system into a .scap file.

    from scaptool.scap import live
    stats = live.capture("out.scap", command=["sh", "-c", "echo hello >> x.log"])

Python writes the metadata blocks (machine, interfaces, users, threads, open files: host.py),
then starts the helper (helper.c + helper.bpf.c, built on first use by `make` into a cache
directory, never into the source tree), which appends the events. The helper needs root, a
kernel with BTF (/sys/kernel/btf/vmlinux), and, to build it, clang, bpftool and libbpf-dev.
"""
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

SOURCE_DIR = pathlib.Path(__file__).resolve().parent
SOURCES = ("Makefile", "helper.bpf.c", "helper.c", "helper.h", "kernel_types.h", "syscalls.h")
BUILD_TOOLS = ("make", "clang", "bpftool", "pkg-config", "cc")
BTF_PATH = "/sys/kernel/btf/vmlinux"
HELPER_NAME = "scaptool-helper"


class LiveCaptureError(RuntimeError):
    """Live capture is impossible here (not root, no BTF, no build tools) or the helper failed."""


def _sources_digest():
    h = hashlib.sha256()
    for name in SOURCES:
        h.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes())
    return h.hexdigest()[:16]


def cache_dir():
    """Where the helper is built: $SCAPTOOL_HELPER_DIR, else ~/.cache/scaptool/helper-<sources>.

    The directory name carries a digest of the sources, so an edited helper is rebuilt."""
    explicit = os.environ.get("SCAPTOOL_HELPER_DIR")
    if explicit:
        return pathlib.Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "scaptool" / f"helper-{_sources_digest()}"


def build_problems():
    """What is missing to build the helper (empty when it can be built)."""
    problems = [f"the {tool} command" for tool in BUILD_TOOLS if shutil.which(tool) is None]
    if not problems:
        ok = subprocess.run(["pkg-config", "--exists", "libbpf"], capture_output=True)
        if ok.returncode != 0:
            problems.append("libbpf's development files (pkg-config libbpf)")
    return problems


def run_problems():
    """What keeps a capture from running here (empty when it can run)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("root privileges (bpf() is limited to root)")
    if not os.path.exists(BTF_PATH):
        problems.append(f"kernel BTF ({BTF_PATH} is missing: the kernel lacks "
                        "CONFIG_DEBUG_INFO_BTF)")
    return problems


def helper_path(build=True):
    """The helper binary, built first if it is missing (and `build`)."""
    path = cache_dir() / HELPER_NAME
    if path.exists() or not build:
        return path
    return build_helper()


def build_helper(out_dir=None):
    """Build the helper into out_dir (default: cache_dir()); returns the binary's path."""
    out_dir = pathlib.Path(out_dir or cache_dir())
    problems = build_problems()
    if problems:
        raise LiveCaptureError("cannot build the live-capture helper: missing "
                               + ", ".join(problems) + ". On Debian: apt-get install clang "
                               "llvm bpftool libbpf-dev make pkg-config")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["make", "-s", "-f", str(SOURCE_DIR / "Makefile"),
                             f"OUT={out_dir}"], capture_output=True, text=True)
    if result.returncode != 0:
        raise LiveCaptureError("building the live-capture helper failed:\n"
                               + result.stdout + result.stderr)
    return out_dir / HELPER_NAME


def _fork_gated(command):
    """Start `command` stopped before exec until a byte arrives on the returned pipe end, so
    that the capture sees it from its first syscall. Returns (pid, write end)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs
        try:
            os.close(w)
            go = os.read(r, 1)
            os.close(r)
            if go != b"x":
                os._exit(126)     # the helper died before attaching: do not run uncaptured
            os.execvp(command[0], list(command))
        except BaseException:
            pass
        os._exit(127)
    os.close(r)
    return pid, w


class LiveCapture:
    """A running capture. start() returns once the helper has attached its probes (a command
    is started then, so its first syscall is captured); wait() returns its statistics.

    `out`: a path, or the write end of a pipe (a file descriptor) for a reader of the events
    as they come (scap.live.stream). Into a pipe the helper writes events only: the section
    header and metadata blocks are then left in `header_bytes`, for the reader to read first.
    `syscalls`: the names of the system calls to capture (None: all of them)."""

    def __init__(self, out, *, snaplen=80, duration=None, max_events=None, pid=None,
                 command=None, switch=False, ring_kib=8192, exclude=(), header=True,
                 verbose=False, also_pids=(), list_all_processes=True,
                 raw_tracepoints=False, syscalls=None):
        self.out = out if isinstance(out, int) else os.fspath(out)
        self.syscalls = None if syscalls is None else sorted(syscalls)
        self.header_bytes = b""
        self.snaplen = snaplen
        self.duration = duration
        self.max_events = max_events
        self.pid = pid
        self.command = list(command) if command else None
        self.switch = switch
        self.ring_kib = ring_kib
        self.exclude = list(exclude)
        self.also_pids = list(also_pids)    # more processes to capture, besides pid/command
        # False: the metadata lists only the captured processes and their children, not
        # every process of the machine (for captures meant to be shared)
        self.list_all_processes = list_all_processes
        self.raw_tracepoints = raw_tracepoints   # force the helper's raw_tp fallback
        self.header = header
        self.verbose = verbose
        self.helper = None
        self.child = None
        self.child_status = None
        self.stats = None

    def start(self):
        problems = run_problems()
        if problems:
            raise LiveCaptureError("live capture needs " + " and ".join(problems))
        binary = helper_path(build=True)
        release = None
        if self.command:
            self.child, release = _fork_gated(self.command)
            self.pid = self.child
        try:
            to_pipe = isinstance(self.out, int)
            if self.header:
                from . import host
                # the helper is not started yet; our own process is left out of the list
                only = None
                if not self.list_all_processes:
                    only = host.descendants([p for p in (self.pid, *self.also_pids) if p])
                header = host.header_bytes(
                    skip_pids=(os.getpid(),) if not self.command else (), only_pids=only)
                if to_pipe:
                    self.header_bytes = header
                else:
                    from scaptool.scap.writer import Writer
                    with Writer(self.out) as w:
                        w.write(header)
            # (a pipe: the helper opens it anew through /dev/fd, as the same number)
            args = [str(binary), "-w", f"/dev/fd/{self.out}" if to_pipe else self.out,
                    "-s", str(self.snaplen), "-b", str(self.ring_kib)]
            if self.header:
                args.append("-a")
            if self.duration:
                args += ["-d", str(self.duration)]
            if self.max_events:
                args += ["-n", str(self.max_events)]
            if self.pid:
                args += ["-p", str(self.pid)]
            for p in self.also_pids:
                args += ["-P", str(p)]
            for p in [os.getpid(), *self.exclude]:
                args += ["-x", str(p)]
            if self.switch:
                args.append("-S")
            if self.verbose:
                args.append("-v")
            if self.raw_tracepoints:
                args.append("-T")
            if self.syscalls is not None:
                args += ["-e", ",".join(self.syscalls) or "none"]
            # the helper writes a byte to `ready` once its probes are attached
            ready_r, ready_w = os.pipe()
            args += ["-r", str(ready_w)]
            # its own process group: a terminal's ^C reaches us, and we stop it cleanly
            self.helper = subprocess.Popen(
                args, stderr=subprocess.PIPE, start_new_session=True,
                pass_fds=(ready_w, self.out) if to_pipe else (ready_w,))
            os.close(ready_w)
            with os.fdopen(ready_r, "rb", buffering=0) as ready:
                attached = ready.read(1) == b"x"
            if not attached:
                _, err = self.helper.communicate()
                if self.helper.returncode < 0:
                    raise LiveCaptureError(
                        "the live-capture helper was killed ("
                        f"{signal.Signals(-self.helper.returncode).name}) before its probes "
                        "were attached")
                raise LiveCaptureError("the live-capture helper failed: "
                                       + err.decode(errors="replace").strip())
            if release is not None:
                os.write(release, b"x")     # the command runs from here on, captured
        except BaseException:
            if self.child:
                os.kill(self.child, signal.SIGKILL)
                os.waitpid(self.child, 0)
                self.child = None
            if self.helper and self.helper.poll() is None:
                self.helper.kill()
                self.helper.wait()
            raise
        finally:
            if release is not None:
                os.close(release)   # if we failed before writing, the command sees EOF
        return self

    def stop(self):
        """Ask the helper to stop; it drains what is left and closes the file."""
        if self.helper and self.helper.poll() is None:
            self.helper.send_signal(signal.SIGINT)

    def running(self):
        return self.helper is not None and self.helper.poll() is None

    def _after_kill(self, signame):
        """The statistics of a helper that was killed, its file kept (a pipe's reader keeps
        what came through), with a warning saying so."""
        import warnings

        from scaptool.scap.errors import ScapWarning
        events = None if isinstance(self.out, int) else _whole_blocks(self.out)
        if events == -1:
            raise LiveCaptureError(f"the live-capture helper was killed ({signame}) before it "
                                   "wrote a whole capture header: there is nothing to keep")
        kept = "what it wrote" if events is None else f"the {events} events it wrote"
        warnings.warn(ScapWarning(f"the live-capture helper was killed ({signame}); keeping "
                                  f"{kept}"), stacklevel=3)
        return {"events": events or 0, "drops": 0, "killed": signame}

    def wait(self):
        """Wait for the end (command exit, duration, event count or stop()); return the stats.
        A ^C while waiting stops the capture cleanly and is then raised again."""
        interrupted = None
        child_done_at = None
        while True:
            try:
                if self.helper.poll() is not None:
                    break
                if self.child and self.child_status is None:
                    done, status = os.waitpid(self.child, os.WNOHANG)
                    if done:
                        self.child_status = status
                        child_done_at = time.monotonic()
                # the helper stops on the command's exit event; should that event be lost
                # (a full ring buffer), stop it ourselves
                if child_done_at and time.monotonic() - child_done_at > 2:
                    self.stop()
                time.sleep(0.02)
            except KeyboardInterrupt as e:
                interrupted = e
                self.stop()
        _, err = self.helper.communicate()
        if self.child and self.child_status is None:
            try:
                os.kill(self.child, signal.SIGTERM)
            except ProcessLookupError:
                pass
            _, self.child_status = os.waitpid(self.child, 0)
        self.stats = _parse_stats(err.decode(errors="replace"))
        if self.helper.returncode < 0:
            # killed (by someone else: we stop it with SIGINT, which it handles): what it
            # wrote is kept, cut after its last whole block
            self.stats = self._after_kill(signal.Signals(-self.helper.returncode).name)
        elif self.helper.returncode != 0 or self.stats is None:
            raise LiveCaptureError("the live-capture helper failed: "
                                   + err.decode(errors="replace").strip())
        if interrupted is not None:
            self.stats["interrupted"] = True
        if self.child_status is not None:
            self.stats["command_status"] = os.waitstatus_to_exitcode(self.child_status)
        return self.stats


def _whole_blocks(path):
    """Cut a capture file after its last whole block (a writer killed mid-write leaves part
    of one); returns the number of events in it, or -1 if not even its header is whole."""
    import warnings

    import numpy as np

    from scaptool.scap.errors import ScapError
    from scaptool.scap.scan import scan
    size = os.path.getsize(path)
    buf = np.fromfile(path, dtype=np.uint8)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layout = scan(buf)
    except ScapError:
        return -1
    if layout.end < size:
        os.truncate(path, layout.end)
    return len(layout.event_offsets4)


def _parse_stats(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def capture(out, **options):
    """Capture into `out` until the command exits, the duration passes, the event count is
    reached or ^C; returns the helper's statistics (events, drops, ...). See LiveCapture."""
    return LiveCapture(out, **options).start().wait()
