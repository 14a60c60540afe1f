"""explain on the story fixtures (fixtures/make_stories.py, and the PHP + MariaDB seed story):
from one event, a verdict that names the cause, the one request the event belongs to, and no
EAGAIN noise."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import require_tool

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
ENV = dict(os.environ, TZ="UTC", LC_ALL="C")

# fixture, the event to explain, what the verdict must say
STORIES = [
    ("story-proxy-bad-gateway.scap", "evt.buffer contains '502 Bad Gateway'",
     'backend 10.0.0.2:8080 answered "HTTP/1.1 2OO 0K" and the connection was closed; '
     "0.200 ms later the answer was written"),
    ("story-proxy-bad-gateway.scap", "evt.buffer contains 'invalid status line'",
     'backend 10.0.0.2:8080 answered "HTTP/1.1 2OO 0K" and the connection was closed; '
     "0.150 ms later the log line was written"),
    ("story-dns-nxdomain.scap", "evt.buffer contains 'could not resolve'",
     "the DNS server 10.0.0.53:53 answered NXDOMAIN for db.internal"),
    ("story-connection-refused.scap", "evt.buffer contains 'could not connect'",
     "the connection to 10.0.0.7:5432 was refused (ECONNREFUSED)"),
    ("story-missing-config.scap", "evt.buffer contains 'configuration error'",
     "opening /etc/worker/config.yml failed (ENOENT)"),
    ("story-child-exit.scap", "evt.buffer contains 'thumbnail generation failed'",
     "child process 1601 (convert) exited with status 1"),
    ("story-thread-handoff.scap", "evt.buffer contains 'HTTP/1.1 500'",
     'backend 10.0.0.8:3306 answered "ERROR 1213 (40001): Deadlock found'),
    ("php-database-error.scap", "evt.buffer contains 'Database error' and evt.is_io_write=true",
     "backend 127.0.0.1:3306 answered \"#28000Access denied for user 'shop'@'localhost' "
     '(using password: YES)" and the connection was closed'),
    ("php-database-error-live.scap", "evt.buffer contains 'Database error' and "
     "evt.is_io_write=true and fd.name contains app.log",
     "backend 127.0.0.1:3306 answered \"#28000Access denied for user 'shop'@'localhost'"),
]


def explain(fixture, target, *args):
    out = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(FIXTURES / fixture),
                          "-c", "explain", *args, target], capture_output=True, text=True,
                         env=ENV)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("fixture, target, verdict", STORIES)
def test_the_verdict_names_the_cause(fixture, target, verdict):
    lines = explain(fixture, target).splitlines()
    assert lines[0].startswith("event ")
    assert lines[1].startswith("  verdict: ") and verdict in lines[1], lines[1]
    text = "\n".join(lines)
    assert "EAGAIN" not in text and "EINPROGRESS" not in text
    # the one request the event belongs to, no other
    assert sum(" request " in line for line in lines) <= 1, text


def test_the_proxy_tells_one_request_of_three():
    """One thread serves three clients: the 502's story is client 10.0.0.33's, through its
    own backend connection; the others are a count."""
    text = explain("story-proxy-bad-gateway.scap", "evt.buffer contains '502 Bad Gateway'")
    assert "request    from 10.0.0.33:40003: GET /api/b HTTP/1.1" in text
    assert "/api/a" not in text and "/health" not in text
    assert "reply      10.0.0.2:8080 answered: HTTP/1.1 2OO 0K [53 bytes]" in text
    assert "10.0.0.2:8080 closed the connection" in text
    assert "(2 other requests this thread served within 1000 ms are not shown)" in text


def test_json_has_the_same_story():
    text = explain("story-proxy-bad-gateway.scap", "evt.buffer contains '502 Bad Gateway'")
    story = json.loads(explain("story-proxy-bad-gateway.scap",
                               "evt.buffer contains '502 Bad Gateway'", "1000 json"))
    assert story["verdict"] in text.splitlines()[1]
    assert story["request"]["first_line"] == "GET /api/b HTTP/1.1"
    assert story["other_requests"] == 2
    [peer] = story["peers"]
    assert peer["peer"] == "10.0.0.2:8080" and peer["outcome"] == "closed by the peer"
    assert [step["what"] for step in peer["exchange"]] == \
        ["connected", "sent", "answered", "closed by the peer", "closed"]
    assert peer["exchange"][2]["text"] == "HTTP/1.1 2OO 0K" and \
        peer["exchange"][2]["offset_ms"] == pytest.approx(-0.2)


def test_a_child_process_and_its_exit_are_told():
    text = explain("story-child-exit.scap", "evt.buffer contains 'thumbnail generation failed'")
    assert "started    process 1601" in text and "executed   convert" in text
    assert "exited     process 1601 (convert) with status 1" in text


def test_a_request_handed_to_another_thread_is_followed():
    """The acceptor thread read the request; the handler thread that answers 500 did the
    database call: the story has both, and not the acceptor's other client."""
    text = explain("story-thread-handoff.scap", "evt.buffer contains 'HTTP/1.1 500'")
    assert "request    from 10.0.0.44:44000: GET /cart/7 HTTP/1.1 (tid 1700)" in text
    assert "sent       to 10.0.0.8:3306: SELECT * FROM carts WHERE id = 7 FOR UPDATE" in text
    assert "/health" not in text and "10.0.0.45" not in text


def test_window_still_bounds_the_search():
    """With a window too short to reach the backend's answer, the verdict cannot name it."""
    text = explain("story-proxy-bad-gateway.scap", "evt.buffer contains '502 Bad Gateway'",
                   "0")
    assert "2OO 0K" not in text


def test_the_story_fixtures_are_made_by_their_script(tmp_path):
    subprocess.run([sys.executable, str(FIXTURES / "make_stories.py"), str(tmp_path)],
                   check=True, capture_output=True, env=ENV)
    made = sorted(p.name for p in tmp_path.glob("story-*.scap"))
    assert made == sorted(p.name for p in FIXTURES.glob("story-*.scap")) and len(made) == 6
    for name in made:
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), name


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("story-*.scap")))
def test_sysdig_reads_the_story_fixtures(name):
    shown = subprocess.run([require_tool("sysdig"), "-r", str(FIXTURES / name)],
                           capture_output=True, text=True, env=ENV)
    assert shown.returncode == 0 and shown.stdout.count("\n") > 5, shown.stderr
