"""The library as a user meets it: one importable name, captures that close, typed frames with
lazy twins, byte buffers as text in one call."""
import ast
import dataclasses
import gc
import gzip
import importlib.metadata
import pathlib
import subprocess
import sys
import weakref

import polars as pl
import pytest

import scaptool
from scaptool.query.fields import FIELDS

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "php-database-error.scap"
TOP_LEVEL_NAMES = ("cli", "query", "chisels", "scap")


# -- one name ----------------------------------------------------------------------------------

def test_import_scaptool_exposes_every_public_name():
    assert sorted(dir(scaptool)) == sorted(scaptool.__all__)
    for name in scaptool.__all__:
        assert getattr(scaptool, name) is not None, name
    assert scaptool.__version__ == _installed_distribution().version
    with pytest.raises(AttributeError):
        scaptool.no_such_name  # noqa: B018


def test_import_scaptool_loads_neither_polars_nor_numpy():
    # every command starts with it: the heavy modules load when a name needs them
    code = ("import sys, scaptool; "
            "print(sorted(m for m in ('polars', 'numpy', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def _installed_top_level_names(dist):
    """The top-level names the installed files provide (scripts and metadata aside)."""
    names = set()
    for file in dist.files or ():
        head = file.parts[0]
        if head == ".." or head.endswith(".dist-info") or head == "__pycache__" \
                or head.startswith("__editable__"):
            continue
        names.add(head.removesuffix(".py"))
    return names


def _editable_mapping(dist):
    """{top-level name: folder} of a setuptools editable install's import hook, or None."""
    for file in dist.files or ():
        if file.name.startswith("__editable___") and file.name.endswith("_finder.py"):
            tree = ast.parse(pathlib.Path(dist.locate_file(file)).read_text())
            for node in tree.body:
                if isinstance(node, ast.AnnAssign) and node.target.id == "MAPPING":
                    return ast.literal_eval(node.value)
    return None


def _installed_distribution():
    """scaptool's installed metadata; not the egg-info an install may leave in the repository,
    which `python -m pytest` puts on sys.path."""
    elsewhere = [p for p in sys.path if pathlib.Path(p or ".").resolve() != ROOT]
    found = list(importlib.metadata.distributions(name="scaptool", path=elsewhere))
    if not found:
        pytest.skip("scaptool is not installed in this interpreter")
    return found[0]


def test_the_install_provides_only_the_scaptool_package():
    dist = _installed_distribution()
    for file in dist.files or ():
        if file.suffix == ".pth":
            lines = pathlib.Path(dist.locate_file(file)).read_text().split("\n")
            if any(line.strip() and not line.startswith("import") for line in lines):
                pytest.skip("an editable install in compat mode puts the source folder "
                            "itself on sys.path")
    assert _installed_top_level_names(dist) <= {"scaptool"}
    mapping = _editable_mapping(dist)
    if mapping is not None:
        assert list(mapping) == ["scaptool"]
    assert dist.read_text("top_level.txt").split() == ["scaptool"]


def test_no_top_level_cli_query_chisels_or_scap_importable_outside_the_repository():
    # -I: no current folder, no PYTHONPATH on sys.path (pytest puts the repository there)
    code = ("import importlib.util as u; import scaptool; "
            f"print([n for n in {TOP_LEVEL_NAMES!r} if u.find_spec(n) is not None])")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         cwd="/")
    if "No module named 'scaptool'" in out.stderr:
        pytest.skip("scaptool is not installed in this interpreter (only on PYTHONPATH)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_chisel_file_imports_its_decorator_from_scaptool(tmp_path):
    from conftest import scaptool_output
    mine = tmp_path / "log_writes.py"
    mine.write_text(
        "from scaptool import chisel, Arg\n\n\n"
        "@chisel('log_writes', 'Misc', 'Count the writes to log files',\n"
        "        args=[Arg('label', 'string', 'the word before the count', True)])\n"
        "def log_writes(run):\n"
        "    rows = run.select('evt.type=write and evt.dir=< and fd.name contains .log')\n"
        "    run.line(f\"{run.arg('label', 'writes')}: {len(rows)}\")\n")
    assert scaptool_output("-r", FIXTURE, "-c", mine) == "writes: 1\n"


# -- captures close ----------------------------------------------------------------------------

def test_a_capture_is_a_context_manager():
    with scaptool.open(FIXTURE) as cap:
        assert not cap.closed
        assert cap.machine["hostname"] == "web01"
    assert cap.closed
    for use in (len, lambda c: c.machine, lambda c: c.processes, lambda c: c.events(),
                lambda c: scaptool.frame(c, "proc.name"), lambda c: c.param("fd")):
        with pytest.raises(scaptool.ScapError, match="capture is closed"):
            use(cap)
    cap.close()  # twice is fine
    assert "closed" in repr(cap)


def test_close_unmaps_the_file():
    cap = scaptool.open(FIXTURE)
    mapping = cap.buffer.base.obj
    # state, rendered text and parameter columns: caches that view the mapping
    scaptool.frame(cap, ["proc.name", "fd.name", "evt.info", "evt.buffer", "proc.apid"])
    cap.close()
    assert mapping.closed


def test_close_while_a_frame_still_views_the_bytes():
    cap = scaptool.open(FIXTURE)
    mapping = weakref.ref(cap.buffer.base.obj)
    buffers = scaptool.frame(cap, "evt.buffer")["evt.buffer"]
    cap.close()  # no BufferError: the mapping stays for the column
    assert b"Database error" in b"".join(buffers.drop_nulls().to_list())
    del buffers
    gc.collect()
    assert mapping() is None or mapping().closed


def test_close_a_gzip_capture(tmp_path):
    packed = tmp_path / "fixture.scap.gz"
    packed.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    with scaptool.open(packed) as cap:
        assert cap.compressed
        assert len(scaptool.frame(cap, "evt.num")) == len(scaptool.frame(FIXTURE, "evt.num"))
    with pytest.raises(scaptool.ScapError, match="capture is closed"):
        len(cap)


def test_a_lazy_frame_of_a_closed_capture_fails_clearly():
    with scaptool.open(FIXTURE) as cap:
        lazy = scaptool.lazy_frame(cap, "proc.name")
        events = cap.lazy_events()
    for frame in (lazy, events):
        with pytest.raises(scaptool.ScapError, match="capture is closed"):
            frame.collect()


# -- frames --------------------------------------------------------------------------------------

CLOCKS = ["evt.time", "evt.datetime", "evt.time.iso8601", "evt.time.s", "evt.datetime.s"]


def test_times_are_datetimes():
    f = scaptool.frame(FIXTURE, ["evt.rawtime", *CLOCKS])
    for name in CLOCKS:
        assert f[name].dtype == pl.Datetime("ns", "UTC"), name
    ns = f["evt.rawtime"].cast(pl.Int64)
    for name in ("evt.time", "evt.datetime", "evt.time.iso8601"):
        assert f[name].dt.epoch("ns").equals(ns.alias(name)), name
    for name in ("evt.time.s", "evt.datetime.s"):
        assert f[name].dt.epoch("ns").equals((ns // 10**9 * 10**9).alias(name)), name
    assert f["evt.time"][0].isoformat() == "2026-11-24T10:15:02.012000+00:00"


def test_numbers_are_numbers():
    f = scaptool.frame(FIXTURE, ["proc.fdusage", "fd.dev", "proc.apid", "fd.sport", "evt.cpu",
                                 "user.uid"], "fd.name contains app.log")
    assert f.schema == {"proc.fdusage": pl.Float64, "fd.dev": pl.Int64,
                        "proc.apid": pl.List(pl.Int64), "fd.sport": pl.UInt16,
                        "evt.cpu": pl.Int64, "user.uid": pl.UInt64}
    assert f["proc.apid"][0].to_list() == [800, 1]
    assert f["fd.dev"][0] == 0x801  # sysdig prints 801


def test_one_field_name_is_a_list_of_one():
    one = scaptool.frame(FIXTURE, "proc.name")
    assert one.equals(scaptool.frame(FIXTURE, ["proc.name"]))
    assert one.columns == ["proc.name"]
    assert scaptool.lazy_frame(FIXTURE, "proc.name").collect().equals(one)
    assert pl.concat(scaptool.batches(FIXTURE, "proc.name", size=10)).equals(one)
    with pytest.raises(scaptool.UnknownFieldError):
        scaptool.frame(FIXTURE, "proc.nam")


NAMES = ["evt.num", "evt.time", "proc.name", "thread.tid", "fd.name", "evt.buffer", "fd.dev",
         "proc.apid", "evt.rawarg.res", "evt.arg.fd"]


@pytest.mark.parametrize("filter_text", [None, "evt.type=write and fd.name contains .log",
                                         "evt.time contains 10:15:02.2"])
def test_lazy_frame_equals_frame(filter_text):
    with scaptool.open(FIXTURE) as cap:
        eager = scaptool.frame(cap, NAMES, filter_text)
        lazy = scaptool.lazy_frame(cap, NAMES, filter_text)
        assert lazy.collect_schema() == eager.schema
        assert lazy.collect().equals(eager)
        every = scaptool.lazy_frame(cap, filter=filter_text)  # all the argument-free fields
        assert every.select(NAMES[:7]).collect().equals(eager.select(NAMES[:7]))


def test_lazy_frame_computes_only_the_fields_a_query_uses(monkeypatch):
    import scaptool.query.api as api
    computed = []
    columns = api.columns
    monkeypatch.setattr(api, "columns", lambda data, names: computed.extend(names) or
                        columns(data, names))

    def refuse(data, arg):
        raise AssertionError("evt.info was computed")
    monkeypatch.setitem(FIELDS, "evt.info", dataclasses.replace(FIELDS["evt.info"],
                                                                compute=refuse))
    with scaptool.open(FIXTURE) as cap:
        lazy = scaptool.lazy_frame(cap)
        assert "evt.info" in lazy.collect_schema()
        got = lazy.filter(pl.col("proc.name") == "mysqld").select("evt.num", "evt.time") \
            .head(3).collect()
        assert got.height == 3 and got.columns == ["evt.num", "evt.time"]
        # evt.time is made from the timestamps; no other field is computed
        assert sorted(set(computed)) == ["evt.num", "proc.name"]
        with pytest.raises(Exception, match="evt.info was computed"):
            lazy.select("evt.info").collect()


def test_lazy_frame_counts_and_streams():
    lazy = scaptool.lazy_frame(FIXTURE, ["evt.num", "proc.name"])
    assert lazy.select(pl.len()).collect().item() == 62
    assert lazy.collect(engine="streaming").equals(lazy.collect())
    assert lazy.head(5).collect().height == 5
    parts = list(lazy.collect_batches(chunk_size=10))
    assert pl.concat(parts).equals(lazy.collect())


def test_events_and_lazy_events_are_twins():
    with scaptool.open(FIXTURE) as cap:
        eager = cap.events(params=["fd", "data"])
        assert isinstance(eager, pl.DataFrame)
        assert eager.columns == ["num", "ts", "tid", "cpu", "type", "dump_flags", "nparams",
                                 "offset", "arg.fd", "arg.data", "name", "dir"]
        lazy = cap.lazy_events(params=["fd", "data"])
        assert lazy.collect_schema() == eager.schema
        assert lazy.collect().equals(eager)
        writes = lazy.filter(pl.col("name") == "write").select("num", "arg.data").collect()
        assert writes.height == 10


# -- text ----------------------------------------------------------------------------------------

def test_text_decodes_byte_buffers():
    f = scaptool.frame(FIXTURE, ["evt.num", "evt.buffer"], "fd.name contains app.log")
    decoded = f.with_columns(scaptool.text("evt.buffer"))
    assert decoded.schema["evt.buffer"] == pl.String
    assert "ERROR: Database error" in decoded["evt.buffer"].drop_nulls()[0]
    assert f.select(scaptool.text(pl.col("evt.buffer")).alias("t"))["t"].equals(
        decoded["evt.buffer"].alias("t"))


def test_text_replaces_invalid_bytes_only_where_they_are():
    values = [b"plain", b"bad \xff byte", None, "caf\u00e9".encode(), b""] * 100
    decoded = pl.DataFrame({"b": values}).lazy().select(scaptool.text("b")).collect()["b"]
    assert decoded.to_list() == ["plain", "bad \ufffd byte", None, "caf\u00e9", ""] * 100
    with pytest.raises(Exception, match="Binary"):
        pl.DataFrame({"n": [1]}).select(scaptool.text("n"))


def test_fields_lists_the_catalog_with_frame_dtypes():
    catalog = scaptool.fields()
    assert catalog.columns == ["name", "type", "dtype", "argument", "description"]
    assert catalog["name"].to_list() == list(FIELDS)
    row = catalog.filter(pl.col("name") == "evt.time").row(0, named=True)
    assert row["type"] == "CHARBUF" and row["dtype"] == str(pl.Datetime("ns", "UTC"))


# -- one face: the command line and the chisels use what a notebook user can ---------------------

def _private_query_imports(path):
    """(line, name) of every private name a file imports from scaptool.query."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scaptool.query"):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("_")]
    return found


def test_cli_and_chisels_import_no_private_name_of_the_query_package():
    offenders = [f"{p.relative_to(ROOT)}:{line} {name}"
                 for folder in ("cli", "chisels") for p in sorted((ROOT / folder).rglob("*.py"))
                 for line, name in _private_query_imports(p)]
    assert offenders == []


def test_window_mask_keeps_the_moments_thread_within_the_range():
    with scaptool.open(FIXTURE) as capture:
        frame = scaptool.frame(capture, ["evt.rawtime", "thread.tid"])
        ts, tid = frame.row(len(frame) // 2)
        kept = frame.filter(pl.Series(scaptool.window_mask(capture, [(ts, tid)], 1)))
        assert len(kept) >= 1
        assert set(kept["thread.tid"].to_list()) == {tid}
        assert kept["evt.rawtime"].is_between(ts - 1_000_000, ts + 1_000_000).all()
        on_thread = frame.filter(pl.col("thread.tid") == tid)
        assert len(kept) < len(on_thread)
