"""The fd state built with the common events applied in bulk (query.fds_bulk) is the state the
one-by-one replay builds (FdState(capture, reference=True)): same versions, same lastevent_fd
and table owner per event, same failed-open names, dirfd fallbacks and fchdir names."""
import numpy as np
import polars as pl
import pytest
from conftest import corpus_captures, need_capture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_fds import CLONE_FILES, CLONE_THREAD, addr, ev, ms, thread, tup, write_capture

from scaptool import scap
from scaptool.query.fds import FdState


def _versions(state):
    v = state.versions
    return v.sort(v.columns, nulls_last=True)


def assert_same_state(capture_path):
    """Both ways of building the fd state of the capture at this path agree."""
    ref = FdState(scap.open(capture_path), reference=True)
    new = FdState(scap.open(capture_path))
    a, b = _versions(ref), _versions(new)
    assert a.schema == b.schema
    assert a.equals(b, null_equal=True), pl.concat([a, b]).filter(
        pl.concat([a, b]).is_unique()).head(20)
    assert np.array_equal(ref.lastevent_fd, new.lastevent_fd)
    assert np.array_equal(ref.owner, new.owner)
    assert ref.info_fd == new.info_fd
    assert ref.null_path == new.null_path
    assert ref.fchdir_names == new.fchdir_names
    assert new.replayed <= ref.replayed
    return ref, new


@pytest.mark.parametrize("path", corpus_captures())
def test_every_capture_same_as_replay(path):
    assert_same_state(need_capture(path))


# --------------------------------------------------------------------------------------------
# A replayed event may wait for the common events before it only when they touch no common
# state: these would go wrong if it did not wait.

def test_a_thread_that_ran_before_its_clone_exit(tmp_path):
    """The child's open comes before the parent's clone exit: it goes to the child's own table,
    though the child uses its parent's table from the clone on."""
    path = tmp_path / "c.scap"
    write_capture(path, [
        ev(201, "open", ">", name=b"/a", flags=1, mode=0),
        ev(201, "open", "<", fd=5, name=b"/a", flags=1, mode=0, dev=0),
        ev(100, "clone", ">"),
        ev(100, "clone", "<", **dict(CLONE, res=201, flags=CLONE_THREAD | CLONE_FILES)),
        ev(201, "read", ">", fd=5, size=1),
    ], threads=[thread(100, 100)]).close()
    ref, _ = assert_same_state(path)
    assert ref.versions["owner"].to_list() == [201]


def test_an_open_before_its_process_changes_directory(tmp_path):
    """A thread with a table of its own opens a relative path; then its main thread changes
    the process's directory: the open was relative to the old one."""
    path = tmp_path / "c.scap"
    write_capture(path, [
        ev(102, "open", ">", name=b"a.txt", flags=1, mode=0),
        ev(102, "open", "<", fd=5, name=b"a.txt", flags=1, mode=0, dev=0),
        ev(100, "chdir", ">"),
        ev(100, "chdir", "<", res=0, path=b"/tmp"),
        ev(102, "read", ">", fd=5, size=1),
    ], threads=[thread(100, 100), thread(102, 100, flags=CLONE_THREAD)]).close()
    ref, _ = assert_same_state(path)
    assert ref.versions.filter(ref.versions["fd"] == 5)["name"].to_list() == ["/home/u/a.txt"]


# --------------------------------------------------------------------------------------------
# Generated event streams: a few threads opening, closing, duplicating, forking and changing
# directory in any order, some calls failing, some enters missing.

CLONE = {"exe": b"app", "args": b"", "tid": 100, "pid": 100, "ptid": 1, "cwd": b"/home/u",
         "fdlimit": 1024, "pgft_maj": 0, "pgft_min": 0, "vm_size": 0, "vm_rss": 0,
         "vm_swap": 0, "comm": b"app", "cgroups": b"", "uid": 0, "gid": 0, "vtid": 100,
         "vpid": 100}
PATHS = [b"/etc/passwd", b"a.txt", b"../b", b"/tmp//c/./d", b"sub/e", b"/" + b"x" * 1015,
         "/caf\u00e9".encode(), b"/bad\xffname", b"/nul\x00tail"]
FDS = st.integers(min_value=3, max_value=7)


def _call(tid, draw):
    """The events of one system call by `tid` (enter and exit; sometimes one is lost)."""
    kind = draw(st.sampled_from(["open", "openat", "creat", "close", "dup", "fcntl", "pipe",
                                 "socket", "connect", "clone", "chdir", "fchdir", "eventfd",
                                 "getsockopt", "read", "sendto", "recvfrom", "accept",
                                 "bind"]))
    ok = draw(st.booleans()) or draw(st.booleans())
    fd = draw(FDS)
    res = fd if ok else -2
    path = draw(st.sampled_from(PATHS))
    if kind == "open":
        out = [ev(tid, "open", ">", name=path, flags=1, mode=0),
               ev(tid, "open", "<", fd=res, name=path, flags=1, mode=0, dev=0)]
    elif kind == "creat":
        out = [ev(tid, "creat", ">", name=path, mode=0),
               ev(tid, "creat", "<", fd=res, name=path, mode=0, dev=0)]
    elif kind == "openat":
        dirfd = draw(st.sampled_from([-100, 3, 4]))
        flags = draw(st.sampled_from([1, 1024 | 1]))
        out = [ev(tid, "openat", ">", dirfd=dirfd, name=path, flags=flags, mode=0),
               ev(tid, "openat", "<", fd=res, dirfd=dirfd, name=path, flags=flags, mode=0,
                  dev=0)]
    elif kind == "close":
        out = [ev(tid, "close", ">", fd=fd), ev(tid, "close", "<", res=0 if ok else -9)]
    elif kind == "dup":
        out = [ev(tid, "dup", ">", fd=fd), ev(tid, "dup", "<", res=draw(FDS) if ok else -9)]
    elif kind == "fcntl":
        cmd = draw(st.sampled_from([1, 3]))
        out = [ev(tid, "fcntl", ">", fd=fd, cmd=cmd),
               ev(tid, "fcntl", "<", res=draw(FDS) if ok else -9)]
    elif kind == "pipe":
        out = [ev(tid, "pipe", ">"),
               ev(tid, "pipe", "<", res=0 if ok else -9, fd1=fd, fd2=draw(FDS), ino=7)]
    elif kind == "socket":
        out = [ev(tid, "socket", ">", domain=2, type=1, proto=0),
               ev(tid, "socket", "<", fd=res)]
    elif kind == "connect":
        out = [ev(tid, "connect", ">", fd=fd, addr=addr("10.0.0.2:80")),
               ev(tid, "connect", "<", res=0 if ok else -111,
                  tuple=tup("10.0.0.1:5000", "10.0.0.2:80"))]
    elif kind == "clone":
        flags = draw(st.sampled_from([0, CLONE_THREAD | CLONE_FILES, CLONE_FILES]))
        child = draw(st.sampled_from([200, 201, 202]))
        out = [ev(tid, "clone", ">"),
               ev(tid, "clone", "<", **dict(CLONE, res=child if ok else -11, flags=flags,
                                              tid=tid, pid=tid))]
    elif kind == "chdir":
        out = [ev(tid, "chdir", ">"), ev(tid, "chdir", "<", res=0 if ok else -2, path=path)]
    elif kind == "fchdir":
        out = [ev(tid, "fchdir", ">", fd=fd), ev(tid, "fchdir", "<", res=0 if ok else -9)]
    elif kind == "eventfd":
        out = [ev(tid, "eventfd", ">", initval=0, flags=0), ev(tid, "eventfd", "<", res=res)]
    elif kind == "getsockopt":
        out = [ev(tid, "getsockopt", ">"),
               ev(tid, "getsockopt", "<", res=0, fd=fd, level=1, optname=1, val=None,
                  optlen=0)]
    elif kind == "sendto":
        to = draw(st.sampled_from([None, tup("0.0.0.0:0", "10.0.0.9:53")]))
        out = [ev(tid, "sendto", ">", fd=fd, size=1, tuple=to),
               ev(tid, "sendto", "<", res=1 if ok else -9, data=b"x")]
    elif kind == "recvfrom":
        got = draw(st.sampled_from([None, tup("10.0.0.9:53", "10.0.0.1:4000")]))
        out = [ev(tid, "recvfrom", ">", fd=fd, size=1),
               ev(tid, "recvfrom", "<", res=1 if ok else -9, data=b"x", tuple=got)]
    elif kind == "accept":
        out = [ev(tid, "accept", ">"),
               ev(tid, "accept", "<", fd=res, tuple=tup("10.0.0.7:5555", "10.0.0.1:80"),
                  queuepct=0, queuelen=0, queuemax=0)]
    elif kind == "bind":
        out = [ev(tid, "bind", ">", fd=fd),
               ev(tid, "bind", "<", res=0 if ok else -9, addr=addr("0.0.0.0:8080"))]
    else:
        out = [ev(tid, "read", ">", fd=fd, size=1), ev(tid, "read", "<", res=1, data=b"x")]
    lose = draw(st.sampled_from([None, None, None, 0, 1]))
    return [e for k, e in enumerate(out) if k != lose]


@st.composite
def streams(draw):
    events = []
    for _ in range(draw(st.integers(min_value=1, max_value=40))):
        events += _call(draw(st.sampled_from([100, 101, 200, 201, 300])), draw)
    return events


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=streams())
def test_generated_streams_same_as_replay(tmp_path, events):
    path = tmp_path / "g.scap"
    path.unlink(missing_ok=True)
    write_capture(path, events,
                  threads=[thread(100, 100), thread(101, 100, flags=CLONE_FILES | CLONE_THREAD),
                           thread(200, 200, cwd=b"/srv")],
                  fds={100: [ms.file_fd(3, 7, b"/var/log/app.log", 2),
                             {"fd": 4, "ino": 9, "type": 2, "name": b"/srv/data"}]}).close()
    assert_same_state(path)


# --------------------------------------------------------------------------------------------
# The column expressions that replaced per-event Python in fd_columns

NAMES = st.lists(st.one_of(st.none(), st.text(alphabet="/ab.\n\x00\x1f\x7f\u00e9\u2028",
                                             max_size=8)), min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(values=NAMES)
def test_name_expressions_as_python(values):
    from scaptool.query.fds import _basename, _dirname, sanitize_name, basename, dirname, sanitized
    column = pl.Series("x", values, dtype=pl.String)
    for expr, python in ((dirname, _dirname), (basename, _basename), (sanitized, sanitize_name)):
        got = pl.select(expr(pl.lit(column))).to_series().to_list()
        assert got == [python(v) for v in values], python.__name__
