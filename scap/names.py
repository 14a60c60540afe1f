"""Name tables used when rendering params: flag/enum names, errno, signals, PPM_SC syscall names.

Facts from data/flags_{0293,libs}.txt and data/names_0293.txt (tools/make_tables.py).
"""
import functools

from scaptool.scap.eventtable import DATA_DIR

_VERSIONS = ("0293", "libs")


def _sections(path, parse_row):
    """{section name: [row, ...]} of a '[name]' + one-row-per-line file."""
    sections, current = {}, None
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line[1:-1], [])
        else:
            current.append(parse_row(line.split("\t")))
    return sections


@functools.cache
def _flag_tables(version):
    if version not in _VERSIONS:
        raise ValueError(f"unknown table version {version!r}")
    return _sections(DATA_DIR / f"flags_{version}.txt", lambda r: (r[0], int(r[1])))


@functools.cache
def _name_tables():
    return {k: dict(rows) for k, rows in
            _sections(DATA_DIR / "names_0293.txt", lambda r: (int(r[0]), r[1])).items()}


def flag_table(name, version="0293", missing_ok=False):
    """(NAME, value) pairs of a flags/enum table, in the order the renderer walks them.

    The libs HEAD reference lacks one table the event table names (mlockall_flags): with
    missing_ok such a name gives an empty table, so its values render as bare numbers."""
    tables = _flag_tables(version)
    if missing_ok and name not in tables:
        return []
    return tables[name]


def flag_table_names(version="0293"):
    return list(_flag_tables(version))


def errno_name(n):
    """'ENOENT' for 2 (a positive errno, i.e. -res); None if 0.29.3 knows no name for it."""
    return _name_tables()["errno"].get(n)


def signal_name(n):
    return _name_tables()["signal"].get(n)


def syscall_name(ppm_sc, version="0293"):
    """The PPM_SC name of a generic event's ID param; None if out of the table."""
    if version not in _VERSIONS:
        raise ValueError(f"unknown table version {version!r}")
    return _name_tables()[f"ppm_sc_{version}"].get(ppm_sc)


_SYSCALL_CATEGORIES = {}


def syscall_category(ppm_sc, version="0293"):
    """The EC name ('FILE', 'IO_READ', 'WAIT', ...) of a PPM_SC syscall id (a generic event's ID
    param), from libscap's syscall info table in data/syscalls_0293.txt; None if out of the table."""
    if version != "0293":
        raise ValueError(f"no syscall info table for version {version!r}")
    table = _SYSCALL_CATEGORIES.get(version)
    if table is None:
        table = {}
        for line in (DATA_DIR / f"syscalls_{version}.txt").read_text().splitlines():
            if line and not line.startswith("#"):
                value, _name, category = line.split("\t")
                table[int(value)] = category
        _SYSCALL_CATEGORIES[version] = table
    return table.get(ppm_sc)
