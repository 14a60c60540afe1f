"""The syscall info table (scap/data/syscalls_0293.txt) and evt.category of generic events.

sysdig 0.29.3 gives a generic event (ids 0/1) the category of its syscall, looked up by the
PPM_SC id in param 0 in libscap's g_syscall_info_table; its I/O categories take the fd's.
"""
import pytest
from conftest import corpus_captures, need_capture

from scaptool import scap
from scaptool.query.events import EventData
from scaptool.query.select import filter_mask
from scaptool.scap import names
from scaptool.scap.eventtable import DATA_DIR, EC

CATEGORY_FILTERS = ("evt.category=file and evt.dir=>", "evt.category=net")

# sysdig is not self-consistent here: under `evt.category=file` alone it calls these ioctl/close
# on fd 0 "unknown" (fd 0 is not in the new process's table), under `... and evt.dir=>` "file"
# (resolved to the script closed just before the execve). fd state, not the syscall table.
SYSDIG_FD_QUIRK = {
    ("sysflow-mpm-event-full", "evt.category=file and evt.dir=>"),
    ("sysflow-mpm-preforked-full", "evt.category=file and evt.dir=>"),
}


def _table_rows():
    rows = []
    for line in (DATA_DIR / "syscalls_0293.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            value, name, category = line.split("\t")
            rows.append((int(value), name, category))
    return rows


def test_table_covers_every_ppm_sc_id_with_the_same_name():
    rows = _table_rows()
    assert [r[0] for r in rows] == list(range(len(rows)))
    count = 0
    while names.syscall_name(count) is not None:
        count += 1
    assert len(rows) == count == 329
    assert [(r[0], r[1]) for r in rows] == [(i, names.syscall_name(i)) for i in range(count)]


def test_categories_are_ec_names():
    for _value, _name, category in _table_rows():
        assert category in EC.__members__
        assert names.syscall_category(_value) == category


@pytest.mark.parametrize("name, category", [
    ("ftruncate", "FILE"), ("read", "IO_READ"), ("write", "IO_WRITE"), ("poll", "WAIT"),
    ("kill", "IPC"), ("fsync", "IO_OTHER"), ("brk", "MEMORY"), ("nanosleep", "SLEEP"),
    ("getuid", "USER"), ("socket", "NET"), ("rt_sigaction", "SIGNAL"), ("clock_gettime", "TIME"),
    ("reboot", "SYSTEM"), ("ptrace", "OTHER"), ("getpid", "PROCESS"), ("clone3", "PROCESS"),
    ("fcntl", "WAIT"), ("getdents64", "IPC"), ("exit_group", "IO_OTHER"),
])
def test_known_categories(name, category):
    ids = [i for i, n, _c in _table_rows() if n == name]
    assert ids
    assert names.syscall_category(ids[0]) == category


def test_out_of_table_and_versions():
    assert names.syscall_category(329) is None
    assert names.syscall_category(-1) is None
    with pytest.raises(ValueError):
        names.syscall_category(1, version="libs")


def _expected(corpus, capture, index):
    for line in (corpus / "expected" / capture / "filters.tsv").read_text().splitlines():
        f = line.split("\t")
        if int(f[0]) == index:
            return set(map(int, f[3].split())) if len(f) > 3 and f[3] else set()
    raise KeyError(index)


@pytest.mark.parametrize("flt", CATEGORY_FILTERS)
@pytest.mark.parametrize("capture", corpus_captures())
def test_category_filters_select_what_sysdig_selected(capture, flt):
    path = need_capture(capture)
    corpus = path.parent.parent
    index = (corpus / "filters.txt").read_text().splitlines().index(flt)
    cap = scap.open(path)
    data = EventData(cap)
    got = set(int(n) for n in cap.event_numbers[filter_mask(cap, flt, data) & data.visible])
    want = _expected(corpus, path.stem, index)
    if (path.stem, flt) in SYSDIG_FD_QUIRK:
        assert len(want - got) <= 2 and not got - want
        pytest.xfail("sysdig resolves fd 0 differently depending on the filter (fd state)")
    assert got == want
