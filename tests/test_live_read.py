"""sysdig's live invocations, typed as the blog types them with `sudo sysdig` made `scaptool`,
run for real on this machine as root (cli/live.py over scap.live.stream).

Each test starts scaptool, then does something on the machine (appends to a .log file, sends
a syslog message with `logger`) again and again until scaptool shows it, which proves that
output comes as events happen; it then stops scaptool with SIGINT, as Ctrl+C or `timeout -s
INT` would, and checks that scaptool ends cleanly with everything printed or written. Without
root, BTF or the helper's build tools these tests skip; in CI (SCAPTOOL_REQUIRE_TOOLS=1) they
fail instead.
"""
import contextlib
import os
import pathlib
import pty
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import require_live_capture, require_tool

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = dict(os.environ, TZ="UTC", LC_ALL="C")
SCAPTOOL = [sys.executable, "-m", "scaptool"]
RED, GREEN, YELLOW = "\x1b[31m", "\x1b[32m", "\x1b[33m"
# the name sysdig gives this process (proc.name): the writer of the tests' log lines
COMM = pathlib.Path("/proc/self/comm").read_text().strip()


@pytest.fixture(scope="module", autouse=True)
def helper():
    """The helper, built once for the module (as a first live command would)."""
    require_live_capture()
    from scaptool.scap import live
    return live.helper_path(build=True)


_RUNNING = []


@pytest.fixture(autouse=True)
def no_run_left():
    """A test that fails leaves no live scaptool running (it would load the next ones)."""
    yield
    while _RUNNING:
        proc = _RUNNING.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Live:
    """A live scaptool run: its output read as it comes (through a pseudo-terminal with
    `terminal`, so that it colours its lines as on a terminal)."""

    def __init__(self, args, cwd, terminal=False):
        self.out = b""
        self.err = b""
        if terminal:
            master, slave = pty.openpty()
            self.proc = subprocess.Popen(SCAPTOOL + list(args), stdout=slave,
                                         stderr=subprocess.PIPE, env=ENV, cwd=cwd)
            os.close(slave)
            self._out_fd = master
        else:
            self.proc = subprocess.Popen(SCAPTOOL + list(args), stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=ENV, cwd=cwd)
            self._out_fd = self.proc.stdout.fileno()
        _RUNNING.append(self.proc)
        self._threads = [threading.Thread(target=self._pump, daemon=True),
                         threading.Thread(target=self._pump_err, daemon=True)]
        for t in self._threads:
            t.start()

    def _pump(self):
        while True:
            try:
                data = os.read(self._out_fd, 65536)
            except OSError:   # a pseudo-terminal whose other end closed
                break
            if not data:
                break
            self.out += data

    def _pump_err(self):
        for line in self.proc.stderr:
            self.err += line

    @property
    def text(self):
        return self.out.decode("utf-8", "replace")

    def until(self, action, marker, timeout=30.0):
        """Do `action(k)` (k = 0, 1, ...) every 0.3 s until `marker(k)` is in the output;
        returns how long after its action the marker showed."""
        deadline = time.monotonic() + timeout
        k = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"scaptool ended early ({self.proc.returncode}): "
                            + self.err.decode(errors="replace"))
            done = time.monotonic()
            action(k)
            while time.monotonic() < done + 0.3:
                if marker(k) in self.text:
                    self.seen = k   # (what was done before the capture began is not shown)
                    return time.monotonic() - done
                time.sleep(0.01)
            k += 1
        pytest.fail(f"nothing shown in {timeout} s; output so far:\n{self.text[-2000:]}\n"
                    + self.err.decode(errors="replace"))

    def interrupt(self, timeout=60):
        """SIGINT, as Ctrl+C: scaptool must end by itself, with status 0."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for t in self._threads:
            t.join(10)
        assert self.proc.returncode == 0, self.err.decode(errors="replace")
        return self.text


def appender(log):
    def append(k):
        with open(log, "a") as f:
            f.write(f"line {k} of the story\n")
    return append


@contextlib.contextmanager
def syslog_socket():
    """What `logger` needs: a datagram socket at /dev/log (a syslog daemon's), made here when
    the machine has none, and read as a daemon reads it (a unix datagram socket holds only a
    few unread messages before senders wait)."""
    if os.path.exists("/dev/log"):
        yield
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/dev/log")
    sock.settimeout(0.2)
    done = threading.Event()

    def drain():
        while not done.is_set():
            try:
                sock.recv(65536)
            except (socket.timeout, OSError):
                pass
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        yield
    finally:
        done.set()
        reader.join(5)
        sock.close()
        os.unlink("/dev/log")


def logger(priority, message, tag=None):
    command = [require_tool("logger"), "-p", priority] + (["-t", tag] if tag else []) + \
        [message]
    subprocess.run(command, check=True, timeout=30)


# --------------------------------------------------------------------------------------------
# "tail all of the machine's log files": sudo sysdig -c spy_logs

def test_spy_logs_shows_log_lines_as_they_are_written(tmp_path):
    log = tmp_path / "app.log"
    run = Live(["-c", "spy_logs"], tmp_path)
    delay = run.until(appender(log), lambda k: f"line {k} of the story")
    out = run.interrupt()
    assert delay < 2.0
    # `process file line`, the process being the one that wrote
    assert f"{COMM} {log} line {run.seen} of the story" in out


def test_spy_logs_colours_on_a_terminal(tmp_path):
    log = tmp_path / "colours.log"

    def write(k):
        with open(log, "a") as f:
            f.write(f"plain {k}\nsome WARNING {k}\nan error {k}\n")
    run = Live(["-c", "spy_logs"], tmp_path, terminal=True)
    run.until(write, lambda k: f"an error {k}")
    out = run.interrupt()
    lines = {" ".join(line.split()[-2:]): line for line in out.splitlines()
             if str(log) in line}
    k = run.seen
    assert lines[f"plain {k}"].startswith(f"{GREEN} {COMM} {log} plain {k}")
    assert lines[f"WARNING {k}"].startswith(f"{YELLOW} {COMM} {log} some WARNING {k}")
    assert lines[f"error {k}"].startswith(f"{RED} {COMM} {log} an error {k}")


def test_spy_logs_with_a_filter_of_the_blog(tmp_path):
    """sudo sysdig -c spy_logs proc.name=httpd and evt.buffer contains GET"""
    httpd = tmp_path / "httpd"
    shutil.copy("/bin/sh", httpd)
    log = tmp_path / "access.log"

    def serve(k):
        subprocess.run([str(httpd), "-c", f"echo 'GET /page/{k}' >> {log}; "
                        f"echo 'POST /form/{k}' >> {log}"], check=True)
        appender(log)(k)   # (written by python3: not httpd)
    run = Live(["-c", "spy_logs", "proc.name=httpd", "and", "evt.buffer", "contains", "GET"],
               tmp_path)
    run.until(serve, lambda k: f"GET /page/{k}")
    out = run.interrupt()
    assert f"httpd {log} GET /page/{run.seen}" in out
    assert "POST" not in out and "of the story" not in out


def test_spy_syslog_facility_severity_and_colours(tmp_path):
    with syslog_socket():
        def send(k):
            logger("local0.err", f"database down {k}", tag="myapp")
            logger("user.warning", f"disk filling {k}", tag="myapp")
            logger("mail.info", f"mail sent {k}", tag="myapp")
        run = Live(["-c", "spy_syslog"], tmp_path, terminal=True)
        run.until(send, lambda k: f"mail sent {k}")
        out = run.interrupt()
    by_text = {}
    k = run.seen
    for line in out.splitlines():
        for text in (f"database down {k}", f"disk filling {k}", f"mail sent {k}"):
            if line.rstrip().endswith(text):
                by_text[text] = line
    assert by_text[f"database down {k}"].startswith(RED + "local0.err logger[")
    assert by_text[f"disk filling {k}"].startswith(YELLOW + "user.warn logger[")
    assert by_text[f"mail sent {k}"].startswith(GREEN + "mail.info logger[")


def test_spy_syslog_with_the_blogs_filter(tmp_path):
    """sudo sysdig -c spy_syslog 'syslog.severity < 4 and proc.name=logger'"""
    with syslog_socket():
        def send(k):
            logger("user.crit", f"critical {k}")
            logger("user.notice", f"notice {k}")
        run = Live(["-c", "spy_syslog", "syslog.severity < 4 and proc.name=logger"], tmp_path)
        run.until(send, lambda k: f"critical {k}")
        out = run.interrupt()
    assert "user.crit logger[" in out and "notice" not in out


def test_fatfile_write_of_syslog_events_is_read_by_sysdig(tmp_path):
    """sudo sysdig -F -w trace.scap evt.is_syslog=true"""
    trace = tmp_path / "trace.scap"
    with syslog_socket():
        run = Live(["-F", "-w", "trace.scap", "evt.is_syslog=true"], tmp_path)
        # nothing is printed: wait for the helper, then send a few messages
        time.sleep(3)
        for k in range(3):
            logger("local3.err", f"written to the trace {k}", tag="fatfile")
        time.sleep(0.5)
        run.interrupt()
    assert trace.exists() and not list(tmp_path.glob(".scaptool-*"))
    ours = subprocess.run(SCAPTOOL + ["-r", str(trace), "-c", "spy_syslog"],
                          capture_output=True, text=True, env=ENV, check=True).stdout
    theirs = subprocess.run([require_tool("sysdig"), "-r", str(trace), "-c", "spy_syslog"],
                            capture_output=True, text=True, env=ENV, check=True).stdout
    assert "local3.err logger[" in theirs and "written to the trace 2" in theirs
    assert theirs == ours
    # only syslog writes show; the state events (-F) are there but hidden
    shown = subprocess.run([require_tool("sysdig"), "-r", str(trace)], capture_output=True,
                           text=True, env=ENV, check=True).stdout.splitlines()
    assert shown and all("/dev/log" in line or "syslog" in line for line in shown)
    stats = subprocess.run(SCAPTOOL + ["-r", str(trace), "-S", "-q"], capture_output=True,
                           text=True, env=ENV, check=True).stdout
    assert "openat" in stats or "connect" in stats   # state-only events were kept


def test_capture_subcommand_takes_a_filter(tmp_path):
    """scaptool capture -w trace.scap evt.is_syslog=true: a filter, not a command to run."""
    with syslog_socket():
        run = Live(["capture", "-w", "trace.scap", "evt.is_syslog=true"], tmp_path)
        time.sleep(3)
        logger("user.err", "through capture")
        time.sleep(0.5)
        run.interrupt()
    out = subprocess.run(SCAPTOOL + ["-r", str(tmp_path / "trace.scap")], capture_output=True,
                         text=True, env=ENV, check=True).stdout
    assert "through capture" in out and "execve" not in out


def test_write_everything_with_a_snaplen(tmp_path):
    """sudo sysdig -s2000 -w system.scap: every event, 2000 bytes of each buffer."""
    log = tmp_path / "big.log"
    line = "x" * 1500
    run = Live(["-s2000", "-w", "system.scap"], tmp_path)
    time.sleep(3)
    with open(log, "a") as f:
        f.write(line + "\n")
    time.sleep(0.5)
    run.interrupt()
    out = subprocess.run(SCAPTOOL + ["-r", str(tmp_path / "system.scap"), "-A", "-v",
                                     f"fd.name={log} and evt.type=write and evt.dir=<"],
                         capture_output=True, text=True, env=ENV, check=True).stdout
    assert line in out
    theirs = subprocess.run([require_tool("sysdig"), "-r", str(tmp_path / "system.scap"),
                             "-q", "-S"], capture_output=True, text=True, env=ENV)
    assert theirs.returncode == 0


def test_spy_logs_export_holds_the_writing_thread_around_the_line(tmp_path):
    """sudo sysdig -c spy_logs "request.scap 1000" "evt.buffer contains Database" """
    log = tmp_path / "php.log"
    worker = tmp_path / "worker.sh"
    # (the shell opens /etc/hostname itself, for its builtin `read`; ls is another process)
    worker.write_text(f"read name < /etc/hostname\necho 'Database error: gone away' "
                      f">> {log}\nls {tmp_path} > /dev/null\n")
    run = Live(["-c", "spy_logs", "request.scap 1000", "evt.buffer contains Database"],
               tmp_path)
    run.until(lambda k: subprocess.run(["sh", str(worker)], check=True),
              lambda k: "Database error")
    out = run.interrupt()
    assert "Writing events for" in out
    export = tmp_path / "request.scap"
    shown = subprocess.run([require_tool("sysdig"), "-r", str(export)], capture_output=True,
                           text=True, env=ENV, check=True).stdout
    # the writer's events around the line: what the shell did just before and after
    assert "Database error" in shown
    assert "/etc/hostname" in shown
    # every call of the thread, not only those a spy_logs without export needs (its reads)
    assert any("> read " in line and "/etc/hostname" in line for line in shown.splitlines())
    # ... and nothing of any other thread: not ls's, whose own events are not the writer's.
    # (On a loaded machine the worker may have run twice before the line was seen: each run's
    # shell wrote a line, and each is a writing thread.)
    threads = {line.split()[4] for line in shown.splitlines()}
    writers = {line.split()[4] for line in shown.splitlines() if "Database error" in line}
    assert threads == writers, (threads, writers)
    assert "> execve" not in shown.split("Database error")[0].split("\n")[-1]


def test_topfiles_bytes_prints_its_table_on_interrupt(tmp_path):
    log = tmp_path / "counted.log"
    run = Live(["-c", "topfiles_bytes"], tmp_path)
    time.sleep(3)
    # 10 MB: more than whatever else the machine reads and writes meanwhile (the table shows
    # the top 10 files only)
    with open(log, "a") as f:
        for _ in range(100):
            f.write("y" * 102399 + "\n")
            f.flush()
    time.sleep(0.5)
    out = run.interrupt()
    assert out.startswith("Bytes")
    assert any(str(log) in line and line.split()[0] == "9.77M"
               for line in out.splitlines()), out


@pytest.mark.parametrize("options, expect", [
    (["-p", "%proc.name %evt.type %fd.name"], f"{COMM} write {{log}}"),
    (["-j"], '(<f>{log}) size=13 ","evt.num"'),
    (["-A"], "json-line {k}"),
    (["-X"], "6a73 6f6e"),
    (["-pc"], f"host (host) {COMM} ("),
    (["-t", "a"], "> write fd="),
])
def test_output_options_live(tmp_path, options, expect):
    """-p, -j, -A, -X, -pc and -t work live as on a file (filtered to the test's log)."""
    log = tmp_path / "opt.log"

    def write(k):
        with open(log, "a") as f:
            f.write(f"json-line {k}\n")
    run = Live(options + [f"fd.name={log} and evt.type=write"], tmp_path)
    run.until(write, lambda k: expect.format(log=log, k=k))
    out = run.interrupt()
    if options == ["-t", "a"]:
        # seconds, '.', nanoseconds: not zero-padded, as sysdig 0.29.3 prints them with -t a
        # (1562711471.11003790 in the corpus), so one event in ten has fewer than 9 digits
        assert re.search(r"^\d+ \d{10}\.\d{1,9} \d+ ", out, re.M), out


@contextlib.contextmanager
def machine_busy(where):
    """Something happening on the machine while a test waits for events (a CI machine may be
    quiet enough that nothing else makes a system call for a minute)."""
    busy = subprocess.Popen(["sh", "-c", "while :; do date >> busy.log; sleep 0.02; done"],
                            cwd=where)
    try:
        yield
    finally:
        busy.kill()
        busy.wait()


def test_event_count_and_seconds_stop_by_themselves(tmp_path):
    with machine_busy(tmp_path):
            count = subprocess.run(SCAPTOOL + ["-n", "25", "-p", "%evt.num"], capture_output=True,
                               text=True, env=ENV, cwd=tmp_path, timeout=60)
    assert count.returncode == 0, count.stderr
    assert count.stdout.split() == [str(k) for k in range(1, 26)]
    started = time.monotonic()
    seconds = subprocess.run(SCAPTOOL + ["-M", "2", "-S", "-q"], capture_output=True,
                             text=True, env=ENV, cwd=tmp_path, timeout=60)
    assert seconds.returncode == 0, seconds.stderr
    assert 2 <= time.monotonic() - started < 30
    assert "#Calls" in seconds.stdout


def test_not_root_gets_one_line(monkeypatch, capsys):
    """Not root: one line saying what to do, no traceback (as a user would be, by uid)."""
    from scaptool.cli.main import main
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as ended:
        main(["-c", "spy_logs"])
    assert ended.value.code not in (0, None)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "needs root privileges" in err and "-r FILE" in err


def test_live_to_standard_output_into_a_reader_of_standard_input(tmp_path):
    """scaptool -w - | scaptool -r - -c spy_logs: a live capture through a pipe."""
    log = tmp_path / "piped.log"
    writer = subprocess.Popen(SCAPTOOL + ["-w", "-"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=ENV, cwd=tmp_path)
    _RUNNING.append(writer)
    reader = subprocess.Popen(SCAPTOOL + ["-r", "-", "-c", "spy_logs"], stdin=writer.stdout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                              cwd=tmp_path)
    _RUNNING.append(reader)
    writer.stdout.close()
    time.sleep(3)
    appender(log)(7)
    time.sleep(1)
    writer.send_signal(signal.SIGINT)
    out, err = reader.communicate(timeout=60)
    assert writer.wait(60) == 0
    assert reader.returncode == 0, err
    assert f"{COMM} {log} line 7 of the story" in out.decode()


def test_live_compressed_write(tmp_path):
    """-z -w: a gzip capture that sysdig reads."""
    run = Live(["-z", "-w", "live.scap.gz"], tmp_path)
    time.sleep(3)
    appender(tmp_path / "z.log")(1)
    time.sleep(0.5)
    run.interrupt()
    data = (tmp_path / "live.scap.gz").read_bytes()
    assert data[:2] == b"\x1f\x8b"
    shown = subprocess.run([require_tool("sysdig"), "-r", str(tmp_path / "live.scap.gz")],
                           capture_output=True, text=True, env=ENV, check=True).stdout
    assert "z.log" in shown


def test_files_by_size_in_a_ring(tmp_path):
    """-C 1 -W 3 -w r.scap: files of about a million bytes, r.scap0 to r.scap2 reused in a
    ring, each one read by sysdig on its own."""
    run = Live(["-C", "1", "-W", "3", "-w", "r.scap"], tmp_path)
    time.sleep(3)
    fd = os.open(tmp_path / "big.bin", os.O_WRONLY | os.O_CREAT)
    deadline = time.monotonic() + 30
    # writes (two events of about 100 bytes each, 80 bytes of data kept) until two files
    # are done and a third begun
    while len(list(tmp_path.glob("r.scap*"))) < 2 and time.monotonic() < deadline:
        for _ in range(5000):
            os.write(fd, b"z" * 100)
        time.sleep(0.2)
    for _ in range(5000):
        os.write(fd, b"z" * 100)
    os.close(fd)
    time.sleep(1)
    run.interrupt()
    files = sorted(p.name for p in tmp_path.glob("r.scap*"))
    assert files == ["r.scap0", "r.scap1", "r.scap2"], files
    for name in files:
        shown = subprocess.run([require_tool("sysdig"), "-r", str(tmp_path / name)],
                               capture_output=True, text=True, env=ENV)
        assert shown.returncode == 0 and shown.stdout, (name, shown.stderr)
    assert not list(tmp_path.glob(".scaptool-*"))


def test_files_by_time_end_after_the_count(tmp_path):
    """-G 1 -W 2: a new file every second, and the capture ends by itself after two (on a
    machine where nothing happens too: test_rotation.py)."""
    started = time.monotonic()
    with machine_busy(tmp_path):
        result = subprocess.run(SCAPTOOL + ["-G", "1", "-W", "2", "-w", "g.scap"],
                                capture_output=True, text=True, env=ENV, cwd=tmp_path,
                                timeout=120)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60
    assert sorted(p.name for p in tmp_path.glob("g.scap*")) == ["g.scap0", "g.scap1"]
    for name in ("g.scap0", "g.scap1"):
        assert subprocess.run([require_tool("sysdig"), "-r", str(tmp_path / name), "-q", "-S"],
                              capture_output=True, env=ENV).returncode == 0


def test_file_rotation_needs_a_live_file_output(tmp_path):
    fixture = ROOT / "fixtures" / "php-database-error-live.scap"
    result = subprocess.run(SCAPTOOL + ["-r", str(fixture), "-C", "1", "-w", "x.scap"],
                            capture_output=True, text=True, env=ENV, cwd=tmp_path)
    assert result.returncode == 2 and "live capture written with -w FILE" in result.stderr
