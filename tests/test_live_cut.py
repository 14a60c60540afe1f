"""What the kernel side is asked to send for a live command (cli/live.syscalls_needed): the
cut is decided here, in Python; test_live_capture.py checks that the helper makes it."""
from types import SimpleNamespace

from scaptool import chisels
from scaptool.cli.live import STATE_SYSCALLS, syscalls_needed


def needed(chisel=None, words=()):
    return syscalls_needed(SimpleNamespace(
        chisel=None if chisel is None else chisels.find(chisel), filter_words=list(words)))


def test_spy_logs_gets_writes_to_what_may_be_logs_and_the_state():
    calls = needed("spy_logs")
    assert "write:l" in calls and "pwrite64:l" in calls
    assert STATE_SYSCALLS <= set(calls)
    assert not any(c.startswith(("read", "write:f")) for c in calls)


def test_a_filter_keeps_the_cut():
    assert needed("spy_logs", ["proc.name=httpd"]) == needed("spy_logs")


def test_an_export_gets_every_call():
    """spy_logs "out.scap 1000" writes what the thread did around each line: all of it."""
    assert needed("spy_logs", ["out.scap 1000", "evt.buffer contains Database"]) is None
    assert needed() is None   # no chisel: printing or a filter sees every call
