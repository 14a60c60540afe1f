"""The php-database-error fixture: made deterministically by fixtures/make_scenario.py, and read
by Debian's sysdig 0.29.3 as the story it describes (MySQL's "Access denied" behind the
application's vague "Database error")."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

from scaptool import scap
from conftest import require_tool

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
SCRIPT = FIXTURES / "make_scenario.py"
FIXTURE = FIXTURES / "php-database-error.scap"
ENV = dict(os.environ, TZ="UTC", LC_ALL="C")

# sysdig's default line when stdout is a pipe: evt.num outputtime cpu proc.name (tid) dir type info
LINE = re.compile(r"^(\d+) (\d\d:\d\d:\d\d\.\d{9}) (\d+) (\S+) \((-?\d+)\) ([<>]) (\S+) (.*)$")
WORKER_TID = 812

# What tells the story, in the order it happens: each is the `dir type info` of one line of the
# php-fpm worker. Lines end with a space, as every sysdig line with params does.
STORY = [
    "< accept fd=7(<4t>10.0.0.99:51000->10.0.0.5:80) tuple=10.0.0.99:51000->10.0.0.5:80 "
    "queuepct=0 queuelen=0 queuemax=511 ",
    "< read res=78 data=GET /orders.php HTTP/1.1..Host: shop..User-Agent: curl/7.74.0.."
    "Accept: */*.... ",
    "> openat dirfd=-100(AT_FDCWD) name=orders.php(/var/www/html/orders.php) flags=1(O_RDONLY) "
    "mode=0 ",
    "> connect fd=9(<4>) addr=127.0.0.1:3306 ",
    "< connect res=0 tuple=127.0.0.1:45678->127.0.0.1:3306 ",
    "> read fd=9(<4t>127.0.0.1:45678->127.0.0.1:3306) size=16384 ",
    "< read res=76 data=H......#28000Access denied for user 'shop'@'localhost' "
    "(using password: YES) ",
    "> write fd=3(<f>/var/log/php/app.log) size=45 ",
    "< write res=45 data=[24-Nov-2026 10:15:02] ERROR: Database error. ",
    "> write fd=7(<4t>10.0.0.99:51000->10.0.0.5:80) size=116 ",
]


def make(path):
    subprocess.run([sys.executable, str(SCRIPT), str(path)], check=True, capture_output=True)


def test_script_rewrites_the_committed_fixture_byte_for_byte(tmp_path):
    first, second = tmp_path / "a.scap", tmp_path / "b.scap"
    make(first)
    make(second)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() == FIXTURE.read_bytes(), \
        "fixtures/php-database-error.scap is stale: run fixtures/make_scenario.py"


def test_fixture_is_small_and_reads_cleanly():
    capture = scap.open(FIXTURE)
    assert capture.damage is None
    assert FIXTURE.stat().st_size < 16 * 1024 and 30 <= len(capture) <= 300
    assert capture.machine["hostname"] == "web01"
    assert WORKER_TID in capture.processes["tid"].to_list()


@pytest.fixture(scope="module")
def sysdig_lines():
    sysdig = require_tool("sysdig")
    r = subprocess.run([sysdig, "-r", str(FIXTURE)], capture_output=True, env=ENV)
    assert r.returncode == 0
    assert r.stderr == b""
    return r.stdout.decode().splitlines()


@pytest.mark.sysdig
def test_sysdig_prints_every_event_with_names_resolved(sysdig_lines):
    assert len(sysdig_lines) == len(scap.open(FIXTURE))
    parsed = [LINE.match(line) for line in sysdig_lines]
    assert all(parsed), [line for line, m in zip(sysdig_lines, parsed) if not m]
    assert [int(m[1]) for m in parsed] == list(range(1, len(parsed) + 1))
    assert all(m[4] != "<NA>" for m in parsed)
    assert {m[4] for m in parsed if int(m[5]) == WORKER_TID} == {"php-fpm7.4"}


@pytest.mark.sysdig
def test_sysdig_output_tells_the_story(sysdig_lines):
    worker = [m for m in map(LINE.match, sysdig_lines)
              if m[4] == "php-fpm7.4" and int(m[5]) == WORKER_TID]
    shown = [f"{m[6]} {m[7]} {m[8]}" for m in worker]
    missing = [line for line in STORY if line not in shown]
    assert not missing, "\n".join(missing)
    assert [shown.index(line) for line in STORY] == sorted(shown.index(line) for line in STORY)


@pytest.mark.sysdig
def test_sysdig_shows_snaplen_and_display_truncation(sysdig_lines):
    def data(prefix):
        [line] = [line for line in sysdig_lines if prefix in line]
        return line.split(" data=", 1)[1][:-1]   # without the line's final space
    # the HTTP response (116 bytes) was cut to 80 by the driver: 80 characters, no "..."
    response = data("< write res=116 data=HTTP/1.1 500 ")
    assert len(response) == 80 and not response.endswith("...")
    # the script is the one buffer captured whole (196 bytes): sysdig shows 77 characters + "..."
    script = data("< read res=196 data=<?php")
    assert len(script) == 80 and script.endswith("...")
