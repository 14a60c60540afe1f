"""sysdig's invocations without -r: this machine read live, through the same engine as a file.

    scaptool -c spy_logs                 scaptool proc.name=nginx        scaptool -j -n 100
    scaptool -F -w trace.scap evt.is_syslog=true                scaptool -M 10 -w all.scap

The libbpf helper (scap.live) writes the events into a pipe that the chunked reader of files
reads too (scap.live.stream): filters, formats and chisels work as they do on a file, and a
chunk is handed out as soon as the pipe has been quiet for a moment, so lines show as events
happen. Ctrl+C (or SIGTERM), -M or -n end the capture cleanly: the helper drains its buffer,
and what was seen is printed, written, or summed up in the chisel's table. `-w FILE` with no
filter writes straight from the helper into the file, without Python in the way.
"""
import sys

import click

from scaptool.scap.errors import error_line


# What the kernel side sends is cut to what the command needs, so that a busy machine's
# other system calls never cost a record (scap.live: the helper's -e). Every command needs the
# calls that build sysdig's state: processes, working directories, users, and the fd tables
# that give fd.name (the fds open before the capture come from the metadata blocks).
STATE_SYSCALLS = frozenset("""
    clone clone3 fork vfork execve execveat exit exit_group chdir fchdir getcwd
    open openat openat2 creat close dup dup2 dup3 fcntl socket socketpair connect accept
    accept4 bind listen getsockopt shutdown pipe pipe2 eventfd eventfd2 signalfd signalfd4
    timerfd_create inotify_init inotify_init1 epoll_create epoll_create1 userfaultfd
    memfd_create setuid setgid setresuid setresgid setsid setrlimit getrlimit prlimit64
""".split())
WRITE_SYSCALLS = ("write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg",
                  "sendmmsg")
READ_SYSCALLS = ("read", "readv", "pread64", "preadv", "preadv2", "recvfrom", "recvmsg",
                 "recvmmsg")


def _on(calls, kinds):
    """The helper's -e entries for these calls when their fd (first argument) is of these
    kinds: f a regular file, s a socket, o anything else (a pipe, a device...), l a regular
    file whose path may be a log's (spy_logs' rule, tested in the kernel on the file's path:
    helper.bpf.c, file_may_be_log)."""
    return {f"{call}:{kinds}" for call in calls}


# chisels that look at these calls only (the others see every system call). spy_logs sees
# writes to files whose path may be a log's: writes to pipes, terminals, sockets and to every
# other file (a database's, say) never leave the kernel; syslog goes through a socket;
# sysdig's "file" I/O is that of any fd opened by path (/dev/null's too), so topfiles_bytes
# keeps all but sockets. A chisel that exports what a thread did around its hits (spy_logs
# "out.scap 1000") needs every call: nothing is cut for it.
CHISEL_SYSCALLS = {
    "spy_logs": _on(WRITE_SYSCALLS, "l"),
    "spy_syslog": _on(WRITE_SYSCALLS, "s"),
    "topfiles_bytes": _on(WRITE_SYSCALLS + READ_SYSCALLS, "fo"),
    "echo_fds": set(WRITE_SYSCALLS + READ_SYSCALLS),
    "spy_file": set(WRITE_SYSCALLS + READ_SYSCALLS),
}


# chisels that print as they go, and the events (sysdig's names) they print: while none of
# these is waiting to be read, the reader lets the others (state) gather for up to a second
# (scap.stream.StreamReader's prompt types), instead of working a chunk every 50 ms
WRITE_EVENTS = frozenset({"write", "pwrite", "writev", "pwritev", "send", "sendto", "sendmsg",
                          "sendmmsg"})
PROMPT_EVENTS = {"spy_logs": WRITE_EVENTS, "spy_syslog": WRITE_EVENTS}


def prompt_types(run):
    """The event type ids that the live reader hands out at once for this command (None:
    every event is)."""
    names = PROMPT_EVENTS.get(getattr(run.chisel, "name", None))
    if names is None:
        return None
    from scaptool.scap.eventtable import sysdig_0293
    table = sysdig_0293()
    return {i for i in range(len(table)) if table[i].name in names}


def syscalls_needed(run):
    """The system calls the kernel side sends for this command (None: all of them)."""
    if run.chisel is None or _reads_again(run):
        return None   # (an export: the threads' every call, around each hit)
    needed = CHISEL_SYSCALLS.get(run.chisel.name)
    return None if needed is None else sorted(STATE_SYSCALLS | needed)


def _reads_again(run):
    """Does the command's chisel read its capture a second time (an export)?"""
    if run.chisel is None:
        return False
    from scaptool.chisels.run import take_arguments
    args, _ = take_arguments(run.chisel, run.filter_words)
    return bool(run.chisel.reads_again(args))


class LiveError(click.ClickException):
    """Live reading cannot start here: one line saying why and what to do."""

    def show(self, file=None):
        click.echo(f"scaptool: {error_line(self.message)}", err=True)


def read_live(run, *, snaplen=None, seconds=None, fatfile=False, ring_kib=None):
    """Read this machine live for `run` (cli.read._Run): its output, filter, chisel, -n."""
    from scaptool.scap import live
    _check_can_run()
    options = dict(snaplen=snaplen or 80, duration=seconds, max_events=run.numevents,
                   syscalls=syscalls_needed(run))
    if ring_kib:
        options["ring_kib"] = ring_kib
    try:
        if run.out and run.out != "-" and not (run.filter_words or run.compress or run.chisel
                                               or run.summary or run.rotation):
            stats = _write_directly(run, options)
        else:
            stats = _read_stream(run, options, fatfile)
    except live.LiveCaptureError as e:
        raise LiveError(str(e)) from None
    if stats and stats.get("killed"):
        click.echo(f"scaptool: warning: the live-capture helper was killed "
                   f"({stats['killed']}); keeping what it wrote", err=True)
    if run.verbose and stats:
        # sysdig -v's statistics at the end of a live capture
        click.echo(f"Driver Events:{stats.get('sent', 0)}\nDriver Drops:{stats['drops']}\n"
                   f"Captured Events: {stats['events']}", err=True)
    if stats and stats.get("drops"):
        click.echo(f"scaptool: {stats['drops']} events were dropped: the kernel's buffer "
                   "filled faster than they were read (a busier machine than the reader "
                   "keeps up with)", err=True)


def _check_can_run():
    from scaptool.scap import live
    problems = live.run_problems()
    if problems:
        raise LiveError("reading this machine live needs " + " and ".join(problems)
                        + ": run as root, or read a capture with -r FILE")
    try:
        live.helper_path(build=True)
    except live.LiveCaptureError as e:
        raise LiveError(str(e).splitlines()[0]) from None


def _read_stream(run, options, fatfile):
    from scaptool.scap.live.stream import LiveStream, stop_on_signals
    spool = _reads_again(run)   # (spy_logs' export reads the capture again at the end)
    run.live = True
    run.keep_state = fatfile   # sysdig's -w keeps the matching events only, unless -F
    # lines go out as they are made, not when a block of output fills
    sys.stdout.reconfigure(line_buffering=True)
    # Polars hooks SIGINT when it is imported and then raises KeyboardInterrupt from inside
    # whatever query is running when Ctrl+C comes, in the middle of a chunk; imported first,
    # its hook is replaced by stop_on_signals' below, which ends the capture cleanly instead
    from . import polars_import
    polars_import.load()
    stream = LiveStream(spool=spool, **options)
    stream.prompt_types = prompt_types(run)
    if run.rotation and run.rotation.get("seconds"):
        stream.on_idle = lambda: _switch_files_on_time(run, stream)
    with stream:
        stop_on_signals(stream)
        try:
            damage = run.read(stream)
        except BaseException:
            run.abort()
            raise
    run.finish()
    if damage is not None:
        click.echo(f"scaptool: {error_line(damage)}", err=True)
        sys.exit(1)
    return stream.stats


def _switch_files_on_time(run, stream):
    """-G on a machine with nothing happening: the next file still starts on time, and with
    -W the capture still ends after the last."""
    if run.writer is None:
        return
    run.writer.tick()
    if run.writer.finished:
        stream.stop()


def _write_directly(run, options):
    """-w FILE of every event: the helper writes the file itself (a temporary name, renamed
    into place at the end, as every writer of ours does: cli.capture.capture_to)."""
    from scaptool.scap.live.stream import stop_on_signals

    from .capture import capture_to
    return capture_to(run.out, options, started=stop_on_signals)
