"""An empty data buffer (a read or write of 0 bytes) is a value, "", as in sysdig 0.29.3:
printed empty rather than <NA>, and matched by `exists` and by comparisons with ""."""
import os
import subprocess
import sys

import pytest

from scaptool import query
from scaptool import scap
from conftest import require_tool
from scaptool.scap import blocktypes as bt
from scaptool.scap.schema import body_schema
from scaptool.scap.writer import Event, Writer
from test_paths_too_long import _process

ENV = dict(os.environ, TZ="UTC", LC_ALL="C")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = 1_700_000_000 * 10**9
WRITE_E, WRITE_X, READ_E, READ_X = 8, 9, 6, 7


def _i64(v):
    return v.to_bytes(8, "little", signed=True)


def _u32(v):
    return v.to_bytes(4, "little")


EVENTS = [(WRITE_E, [_i64(1), _u32(0)]), (WRITE_X, [_i64(0), b""]),
          (READ_E, [_i64(0), _u32(10)]), (READ_X, [_i64(0), b""]),
          (WRITE_E, [_i64(1), _u32(3)]), (WRITE_X, [_i64(3), b"hi\n"])]


@pytest.fixture(scope="module")
def capture_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("empty") / "empty.scap"
    with Writer(path) as w:
        w.write_section_header()
        w.write_block(bt.PL_V9, body_schema(bt.PL_V9).build(dict(entries=[_process(1, "/")])))
        w.write_event_list([Event(T0 + 1000 * k, 1, 0, etype, params)
                            for k, (etype, params) in enumerate(EVENTS, 1)])
    return path


def test_empty_buffers_are_values(capture_path):
    frame = query.frame(scap.open(capture_path), ["evt.num", "evt.buffer", "evt.rawarg.data"],
                        all_events=True)
    assert frame["evt.buffer"].to_list() == [None, b"", None, b"", None, b"hi\n"]
    assert frame["evt.rawarg.data"].to_list() == frame["evt.buffer"].to_list()
    cap = scap.open(capture_path)
    assert query.frame(cap, ["evt.num"], filter="evt.buffer exists")["evt.num"].to_list() \
        == [2, 4, 6]
    assert query.frame(cap, ["evt.num"], filter="evt.buffer = ''")["evt.num"].to_list() \
        == [2, 4]


FORMAT = "*%evt.num %evt.dir [%evt.buffer] [%evt.arg.data] [%evt.rawarg.data] [%evt.info]"


@pytest.mark.parametrize("filter_text", ["", "evt.buffer exists", "evt.buffer=''",
                                         "not evt.buffer exists", "evt.rawarg.data exists"])
def test_sysdig_agrees(capture_path, filter_text):
    sysdig = require_tool("sysdig")
    args = ["-r", str(capture_path), "-p", FORMAT] + ([filter_text] if filter_text else [])
    theirs = subprocess.run([sysdig, *args], capture_output=True, env=ENV)
    ours = subprocess.run([sys.executable, "-m", "scaptool", *args], capture_output=True,
                          env=ENV, cwd=ROOT)
    assert theirs.returncode == 0 and ours.returncode == 0, ours.stderr.decode()
    assert ours.stdout == theirs.stdout
