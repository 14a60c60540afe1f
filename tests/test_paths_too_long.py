"""Paths near sinsp's 1024-byte buffers: /PATH_TOO_LONG, as sysdig 0.29.3 names them.

sinsp joins a directory and a name in a buffer of 1024 bytes and gives up when the two, the
name's NUL and one more byte would not fit, before folding `.` and `..`; the directory counts
even when the name is absolute (open, chdir) but not for openat's absolute names. The
capture is written here, one process per case; the expected names are what sysdig printed.
"""
import os
import subprocess
import sys

import pytest

from scaptool import scap
from conftest import require_tool
from scaptool.scap import blocktypes as bt
from scaptool.scap.schema import FdType, body_schema
from scaptool.scap.writer import Event, Writer

ENV = dict(os.environ, TZ="UTC", LC_ALL="C")
T0 = 1_700_000_000 * 10**9
AT_FDCWD = -100
OPEN_E, OPEN_X, CHDIR_E, CHDIR_X, OPENAT_E, OPENAT_X = 2, 3, 94, 95, 306, 307
TOO_LONG = "/PATH_TOO_LONG"


def _i64(v):
    return v.to_bytes(8, "little", signed=True)


def _u32(v):
    return v.to_bytes(4, "little")


def _cwd(length):
    """An absolute directory of `length` bytes, ending in '/'."""
    return "/" + "a" * (length - 2) + "/"


def _process(tid, cwd):
    return dict(tid=tid, pid=tid, ptid=1, sid=tid, vpgid=tid, comm=b"p%d" % tid, exe=b"p",
                exepath=b"/usr/bin/p", args=b"", cwd=cwd.encode(), fdlimit=1024, flags=0,
                uid=0, gid=0, vmsize_kb=0, vmrss_kb=0, vmswap_kb=0, pfmajor=0, pfminor=0,
                env=b"", vtid=tid, vpid=tid, cgroups=b"", root=b"/", loginuid=0xFFFFFFFF,
                exe_writable=0)


class _Story:
    def __init__(self):
        self.events, self.expected = [], []  # expected: (tid, fd.name or None, proc.cwd)

    def _event(self, tid, etype, params):
        self.events.append(Event(T0 + 1000 * (len(self.events) + 1), tid, 0, etype, params))

    def open(self, tid, fd, name, expect, cwd):
        raw = name.encode() + b"\0"
        self._event(tid, OPEN_E, [raw, _u32(1), _u32(0)])
        self._event(tid, OPEN_X, [_i64(fd), raw, _u32(1), _u32(0), _u32(0)])
        self.expected.append((tid, expect, cwd))

    def openat(self, tid, fd, dirfd, name, expect, cwd):
        raw = name.encode() + b"\0"
        self._event(tid, OPENAT_E, [_i64(dirfd), raw, _u32(1), _u32(0)])
        self._event(tid, OPENAT_X, [_i64(fd), _i64(dirfd), raw, _u32(1), _u32(0), _u32(0)])
        self.expected.append((tid, expect, cwd))

    def chdir(self, tid, path):
        self._event(tid, CHDIR_E, [])
        self._event(tid, CHDIR_X, [_i64(0), path.encode() + b"\0"])


def _story():
    s = _Story()
    # the cwd in the process list: 1023 bytes fit, 1024 do not
    s.open(1, 3, "x", TOO_LONG, _cwd(1023))  # but 1023 + 1 + 2 do not fit an open's buffer
    s.open(2, 3, "/etc/hosts", "/etc/hosts", TOO_LONG + "/")
    s.open(2, 4, "x", TOO_LONG + "/x", TOO_LONG + "/")
    # open joins every name to the cwd: 1019 + 3 + 2 fit, 1019 + 4 + 2 do not
    c = _cwd(1019)
    s.open(3, 3, "bbb", c + "bbb", c)
    s.open(3, 4, "bbbb", TOO_LONG, c)
    s.open(3, 5, "/abs", TOO_LONG, c)
    s.open(3, 6, "./x/../bb", TOO_LONG, c)  # counted before folding
    # openat: an absolute name is joined to "." (1 + 1021 + 2 fit; 1 + 1022 + 2 do not)
    s.openat(3, 7, AT_FDCWD, "/abs", "/abs", c)
    s.openat(3, 8, AT_FDCWD, "/" + "c" * 1020, "/" + "c" * 1020, c)
    s.openat(3, 9, AT_FDCWD, "/" + "c" * 1021, TOO_LONG, c)
    s.openat(3, 10, AT_FDCWD, "bbb", c + "bbb", c)
    s.openat(3, 11, AT_FDCWD, "bbbb", TOO_LONG, c)
    # openat relative to a directory fd: its name and a '/' are the directory
    s.openat(3, 12, 20, "b" * 1015, "/short/" + "b" * 1015, c)
    s.openat(3, 13, 20, "b" * 1016, TOO_LONG, c)
    # chdir counts the old cwd even for an absolute path; a cwd too long is /PATH_TOO_LONG/
    s.chdir(4, "/ddddd")
    s.open(4, 3, "b", TOO_LONG + "/b", TOO_LONG + "/")
    s.chdir(4, "g" * 20)
    s.open(4, 4, "b", TOO_LONG + "/" + "g" * 20 + "/b", TOO_LONG + "/" + "g" * 20 + "/")
    s.chdir(5, "/" + "e" * 1018)  # 3 + 1019 + 2 fit
    s.open(5, 3, "b", "/" + "e" * 1018 + "/b", "/" + "e" * 1018 + "/")
    s.chdir(6, "/" + "e" * 1019)  # 3 + 1020 + 2 do not
    s.open(6, 3, "b", TOO_LONG + "/b", TOO_LONG + "/")
    return s


def write_capture(path):
    story = _story()
    processes = [_process(1, _cwd(1023)), _process(2, _cwd(1024)), _process(3, _cwd(1019)),
                 _process(4, _cwd(1019)), _process(5, "/x/"), _process(6, "/x/")]
    with Writer(path) as w:
        w.write_section_header()
        w.write_block(bt.PL_V9, body_schema(bt.PL_V9).build(dict(entries=processes)))
        w.write_block(bt.FDL_V2, body_schema(bt.FDL_V2).build(dict(tid=3, entries=[
            dict(fd=20, ino=1, type=FdType.DIRECTORY, open_flags=0, name=b"/short")])))
        w.write_event_list(story.events)
    return story.expected


FORMAT = "%thread.tid %fd.name %proc.cwd"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("paths") / "paths.scap"
    return path, write_capture(path)


def test_names_and_cwds(written):
    from scaptool import query
    path, expected = written
    frame = query.frame(scap.open(path), ["evt.dir", "thread.tid", "fd.name", "proc.cwd"])
    exits = frame.filter(frame["evt.dir"] == "<")
    got = [(r["thread.tid"], r["fd.name"], r["proc.cwd"]) for r in exits.rows(named=True)
           if r["fd.name"] is not None]
    assert got == expected


def test_sysdig_names_them_the_same(written):
    sysdig = require_tool("sysdig")
    path, _ = written
    theirs = subprocess.run([sysdig, "-r", str(path), "-p", FORMAT, "evt.dir=<"],
                            capture_output=True, env=ENV)
    assert theirs.returncode == 0, theirs.stderr.decode()
    ours = subprocess.run([sys.executable, "-m", "scaptool", "-r", str(path), "-p", FORMAT,
                           "evt.dir=<"], capture_output=True, env=ENV,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert ours.returncode == 0, ours.stderr.decode()
    assert ours.stdout == theirs.stdout
    assert TOO_LONG.encode() in theirs.stdout
