"""The I/O, system state, security and performance chisels (chisels/io.py, system.py,
security.py, performance.py): their text helpers, their output on the repository's fixture
capture, and their output next to Debian's sysdig 0.29.3 on the fixture and on corpus
captures chosen for the quirks each one reproduces.
"""
import io
import os
import pathlib
import subprocess
import sys

import pytest

from scaptool import scap
from scaptool.chisels.io import extend, format_bytes, format_time_interval
from scaptool.chisels.run import run_chisel
from scaptool.chisels.security import lua_pattern
from scaptool.chisels.system import _ntop, _v4_of_mapped
from tests.conftest import corpus_path, require_tool

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "php-database-error.scap"
# NO_COLOR is set to show that these chisels colour their output anyway, as sysdig's do
ENV = dict(os.environ, TZ="UTC", LC_ALL="C", NO_COLOR="1")
RED, BLUE, RESET = "\x1b[31m", "\x1b[34m", "\x1b[0m"


# -- text helpers --------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    (0, "0B"), (1024, "1024B"), (1025, "1.00KB"), (1230, "1.20KB"),
    (92800 * 1024, "90.63M"),        # an exact tie: LuaJIT rounds it up, C's printf would not
    (5 * 1024**3, "5.00G"), (1024**4 + 1, "1.00T"),
])
def test_format_bytes(value, text):
    assert format_bytes(value) == text


@pytest.mark.parametrize("ns, text", [
    (999, "999ns"), (1_509, "1.50us"), (15_000, "15us"), (9_250_000, "9.25ms"),
    (665_400_000, "665ms"), (4_229_999_999, "4.22s"), (12_000_000_000, "12.00s"),
])
def test_format_time_interval(ns, text):
    assert format_time_interval(ns) == text


def test_extend_pads_or_cuts_leaving_one_space():
    assert extend("PID", 8) == "PID     "
    assert extend("docker-containerd-shim", 20) == "docker-containerd-s "
    assert extend("", -3) == ""


@pytest.mark.parametrize("pattern, text, found", [
    ("t.r", "/bin/tar", True), ("t%.r", "/bin/tar", False), ("^/usr", "/bin/usr", False),
    ("[tc]at$", "/bin/cat", True), ("%d+", "python3", True), ("a-b", "xb", True),
    ("(", "a(b", True),               # not a valid pattern: taken literally
])
def test_lua_pattern(pattern, text, found):
    assert bool(lua_pattern(pattern).search(text)) is found


def test_ipv6_texts_as_sysdig_writes_them():
    assert _v4_of_mapped("::ffff:10.185.46.64") == "10.185.46.64"
    assert _v4_of_mapped("2001:db8::1") is None
    assert _ntop("::ffff:93b:c040") == "::ffff:9.59.192.64"


# -- on the fixture capture, in process ------------------------------------------------------------

def _run(name, words=(), path=FIXTURE):
    out = io.StringIO()
    run_chisel(scap.open(str(path)), name, list(words), out=out)
    return out.getvalue()


def test_lsof_lists_shared_tables_under_each_thread():
    lines = _run("lsof").splitlines()
    assert lines[0].split() == ["COMMAND", "PID", "TID", "USER", "FD", "TYPE", "NAME"]
    # mysqld's threads 905 and 917 share the listening socket of their process
    mysql = [line.split() for line in lines if line.startswith("mysqld")]
    assert [(row[1], row[2], row[4], row[6]) for row in mysql] == [
        ("900", "900", "20", "127.0.0.1:3306"), ("900", "905", "20", "127.0.0.1:3306"),
        ("900", "917", "20", "127.0.0.1:3306")]
    assert "www-dat 3       file        /var/log/php/app.log" in _run("lsof")


def test_snapshot_chisels_without_a_matching_event():
    for name in ("lsof", "ps", "netstat"):
        assert _run(name, ["", "evt.num>100000"]) == \
            "empty capture or no event matching the filter\n"


def test_lsof_filter_argument_selects_fds():
    lines = _run("lsof", ["fd.type=file"]).splitlines()
    assert len(lines) == 2 and lines[1].endswith("/var/log/php/app.log")


def test_echo_fds_colours_off_a_terminal_unless_disabled():
    coloured = _run("echo_fds")
    assert coloured.startswith(f"{RED}------ Read 78B from  {RED} 10.0.0.99:51000->10.0.0.5:80 "
                               f"(php-fpm7.4)\nGET /orders.php HTTP/1.1..")
    assert coloured.endswith(f"\n{RESET}\n")
    plain = _run("echo_fds", ["disable_color"])
    assert "\x1b" not in plain
    assert plain.startswith("------ Read 78B from   10.0.0.99:51000->10.0.0.5:80 (php-fpm7.4)\n")


# -- next to sysdig 0.29.3 ---------------------------------------------------------------------------

def _both(path, args):
    sysdig = require_tool("sysdig")
    ours = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(path), *args],
                          capture_output=True, env=ENV, cwd=ROOT)
    theirs = subprocess.run([sysdig, "-r", str(path), *args], capture_output=True, env=ENV)
    assert ours.returncode == 0, ours.stderr.decode(errors="replace")
    assert theirs.returncode == 0, theirs.stderr.decode(errors="replace")
    return ours.stdout, theirs.stdout


# netstat lists threads in the order of a Lua table walk: compared as sorted lines
UNORDERED = {"netstat"}


@pytest.mark.parametrize("args", [
    ["-c", "echo_fds"], ["-c", "lsof"], ["-c", "ps"], ["-c", "netstat"], ["-c", "spy_file"],
    ["-c", "spy_port", "3306"], ["-c", "spy_ip", "127.0.0.1"], ["-c", "fileslower", "0"],
    ["-c", "netlower", "0"], ["-c", "scallslower", "0"], ["-c", "proc_exec_time"],
    ["-c", "spy_users"], ["-c", "list_login_shells"],
    ["-A", "-c", "echo_fds", "proc.name=mysqld"], ["-c", "lsof", "fd.type=ipv4"],
], ids=lambda a: " ".join(a))
def test_fixture_like_sysdig(args):
    ours, theirs = _both(FIXTURE, args)
    assert theirs  # every case prints something
    if args[1] in UNORDERED:
        ours, theirs = sorted(ours.splitlines()), sorted(theirs.splitlines())
    assert ours == theirs


def _corpus(name):
    path = corpus_path() / "captures" / f"{name}.scap"
    assert path.is_file(), f"{path} is missing from the corpus"
    return path


CORPUS_CASES = [
    # fd list sockets between IPv4-mapped IPv6 ends are IPv4 (server end first when their
    # port listens); IPv6 addresses as inet_ntop writes them
    ("sysflow-files-cca35eb", ["-c", "lsof"]),
    # memory sizes with LuaJIT's rounding of ties; <NA> users; the first event is procinfo
    ("falco-empty-99d6d5c", ["-c", "ps"]),
    ("falco-cat-write", ["-c", "ps"]),
    # memory counters of a switch show only at that event; later ones show the execve's
    ("sysdig-examples-example4-1", ["-c", "ps"]),
    ("sysflow-mpm-event-full", ["-c", "ps", "", "evt.num>=1019"]),
    ("libs-curl-google", ["-c", "ps", "", "evt.num>=224"]),
    # thread/fd filter argument (quoted words), and netstat's own
    ("falco-empty-99d6d5c", ["-c", "ps", "'fd.name contains /etc'"]),
    ("falco-cat-write", ["-c", "netstat", "proc.name=sshd"]),
    # fd names that are empty (not <NA>) on sendmsg without a tuple
    ("falco-ping-sendto", ["-c", "echo_fds"]),
    # indentation under the shell, cd lines, the ancestor-table shift after each cd
    ("instruqt-svh5-activity", ["-c", "spy_users"]),
    ("instruqt-svh5-activity", ["-c", "spy_users", "0 disable_color"]),
    # yellow past 3 s, blue inside a container
    ("sysflow-alpine", ["-c", "proc_exec_time"]),
    ("sysflow-alpine", ["-c", "fileslower", "0"]),
    # a buffer starting with a line feed (-A drops it); empty reads print empty lines
    ("sysflow-nginx", ["-c", "spy_file"]),
    ("sysflow-tcp-client-server", ["-c", "stdin"]),
    ("sysdig-examples-nginx-e3a0456", ["-c", "stderr"]),
    # the stale header of spy_ip/spy_port, IPv6 ends
    ("libs-single-ipv6-conn", ["-c", "spy_ip", "2001:db8::3"]),
    ("sysdig-examples-example4-1", ["-c", "spy_port", "22"]),
    ("sysdig-examples-example4-1", ["-c", "scallslower", "1"]),
    ("sysdig-examples-example4-1", ["-c", "netlower", "0"]),
    ("instruqt-svh5-activity", ["-c", "list_login_shells", "tar zx"]),
]


@pytest.mark.parametrize("name, args", CORPUS_CASES,
                         ids=[f"{n}:{' '.join(a[1:])}" for n, a in CORPUS_CASES])
def test_corpus_like_sysdig(name, args):
    ours, theirs = _both(_corpus(name), args)
    assert len(theirs.splitlines()) > 1  # more than a header or a colour reset
    if args[1] in UNORDERED or args[1] == "lsof":
        # lsof walks each thread's fds in a Lua table's order (almost always ascending)
        ours, theirs = sorted(ours.splitlines()), sorted(theirs.splitlines())
    assert ours == theirs


def test_colours_are_sysdigs_and_disable_color_turns_them_off():
    """sysdig's I/O chisels colour off a terminal and under NO_COLOR alike, and so do ours
    (the output is sysdig's, codes included); their disable_color argument gives plain text."""
    coloured = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(FIXTURE), "-c",
                               "echo_fds"], capture_output=True, text=True, cwd=ROOT, env=ENV)
    plain = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(FIXTURE), "-c",
                            "echo_fds", "disable_color"], capture_output=True, text=True,
                           cwd=ROOT, env=ENV)
    assert RED in coloured.stdout and "------ Read 78B from" in coloured.stdout
    assert "\x1b[" not in plain.stdout and "------ Read 78B from" in plain.stdout
