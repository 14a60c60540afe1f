"""Many captures, one question: the captures a glob or folder names, each read by a task of its
own, in parallel, and the results put together (query.sql, query.export use it).

    paths = fleet.expand(["captures/**/*.scap"])
    for done in fleet.run(task, paths, jobs=4):          # as each capture is done
        ...

A task is a plain function of one capture's path (and picklable arguments) that returns what
it made of it: it runs in this process (one capture, or jobs=1), in local worker processes
(the default: one per CPU, no setup), or on a Dask cluster (cluster="tcp://HOST:8786"). Dask
distributed, not Ray: its workers are plain Python processes that start in a second and pass
Arrow tables and Polars frames as they are (pickle protocol 5, no copy), which is all this
work needs; Ray brings its own object store and runtime for scheduling this does not use.

Dask gives a task whose worker died to another worker (up to its allowed failures), so a
worker lost mid-run costs time, not a capture; each capture's result comes back once. A
capture that fails (damage, a missing file) is a result too, with its error in one line: the
others go on.
"""
import concurrent.futures
import concurrent.futures.process
import dataclasses
import glob
import os
import warnings

from scaptool.scap.errors import ScapError

# the endings of captures a folder is searched for
CAPTURE_ENDINGS = (".scap", ".scap.gz", ".scap.zst", ".scap.lz4")
_GLOB_CHARS = set("*?[")


class FleetError(ScapError):
    """The captures cannot be found or reached as named: one line for the user."""


@dataclasses.dataclass
class Done:
    """What a task made of one capture: `value` (None when it failed), or `error`, a line;
    the warnings it raised (a capture cut short), as lines."""
    index: int
    path: str
    value: object = None
    error: str | None = None
    warnings: list = dataclasses.field(default_factory=list)


def is_many(spec):
    """Does this name stand for a set of captures (a glob, a folder) rather than one file?"""
    return bool(_GLOB_CHARS & set(os.fspath(spec))) or os.path.isdir(spec)


def expand(specs):
    """The captures that `specs` name, in order, each once: a file as it is; a folder, every
    capture under it (by its ending), sorted; a glob (`**` crosses folders), its matches,
    sorted. A URL (s3://, gcs://...) goes to fsspec, which lists and opens it."""
    out = []
    for spec in map(os.fspath, specs):
        if "://" in spec:
            out.extend(_expand_url(spec))
        elif os.path.isdir(spec):
            found = sorted(p for p in glob.glob(os.path.join(glob.escape(spec), "**", "*"),
                                                recursive=True)
                           if p.endswith(CAPTURE_ENDINGS) and os.path.isfile(p))
            if not found:
                raise FleetError(f"{spec}: no capture in this folder (files ending in "
                                 f"{', '.join(CAPTURE_ENDINGS)})")
            out.extend(found)
        elif _GLOB_CHARS & set(spec):
            found = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not found:
                raise FleetError(f"{spec}: no file matches")
            out.extend(found)
        else:
            out.append(spec)
    return list(dict.fromkeys(out))


def machine_of(path):
    """The machine block of a capture's first section (only its header blocks are read)."""
    from scaptool.scap.stream import StreamReader
    with StreamReader(path) as reader:
        items = iter(reader)
        try:
            return next(items).rows("machine") or {}
        finally:
            items.close()


def _expand_url(spec):
    import fsspec
    try:
        fs, _, paths = fsspec.get_fs_token_paths(spec)
    except (ImportError, ValueError) as e:
        raise FleetError(f"{spec}: {e}") from None
    protocol = spec.split("://", 1)[0]
    paths = [p for p in paths if fs.isfile(p)] if _GLOB_CHARS & set(spec) else paths
    if not paths:
        raise FleetError(f"{spec}: no file matches")
    return [p if "://" in p else f"{protocol}://{p}" for p in sorted(paths)]


def run(task, paths, *args, jobs=None, cluster=None, on_done=None):
    """task(path, *args) for every path, in parallel; a Done per path, in the paths' order.
    jobs: local worker processes (default: one per CPU, never more than the captures; 1: in
    this process). cluster: a Dask scheduler's address (tcp://HOST:8786), where the tasks run
    instead. on_done(done, finished, total): after each capture, in the order they finish."""
    paths = list(paths)
    total = len(paths)
    results = [None] * total

    def finished(done):
        results[done.index] = done
        if on_done is not None:
            on_done(done, sum(r is not None for r in results), total)

    if cluster:
        _on_cluster(cluster, task, paths, args, finished)
        return results
    jobs = local_jobs(paths, jobs)
    if jobs <= 1:
        for index, path in enumerate(paths):
            finished(attempt(index, path, task, *args))
        return results
    with _local_pool(jobs) as pool, _main_left_out():
        futures = [pool.submit(attempt, index, path, task, *args)
                   for index, path in enumerate(paths)]
        for future in concurrent.futures.as_completed(futures):
            try:
                finished(future.result())
            except concurrent.futures.process.BrokenProcessPool:
                # a worker died (killed, out of memory): the pool cannot go on, and each
                # capture it had not given back says so
                index = futures.index(future)
                finished(Done(index, paths[index], error=f"{paths[index]}: a worker process "
                              "died while reading the captures (killed, or out of memory?)"))
    return results


# below this many bytes of captures in all, the default reads them in this process: a worker
# process takes ~0.5 s to start, in which this one reads ~30 MB of capture
SMALL_BYTES = 32 << 20


def local_jobs(paths, jobs=None):
    """The local worker processes run() starts for these captures (1: none, this process
    reads them): `jobs` if given, else one per CPU unless the captures are small."""
    if jobs is None and _small(paths):
        return 1   # (starting workers costs more than reading them)
    return max(1, min(jobs or os.cpu_count() or 1, len(paths)))


def _small(paths):
    total = 0
    for path in paths:
        try:
            total += os.path.getsize(path)
        except (OSError, ValueError):
            return False   # (a URL: its size is not known here)
    return total < SMALL_BYTES


def attempt(index, path, task, *args):
    """Run the task on one capture where it is sent; its failure is a Done with the error's
    line, not an exception (the other captures go on)."""
    from scaptool.scap.errors import error_line
    done = Done(index, path)
    copy = _local_copy(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with copy as local:
                done.value = task(local, *args)
        except ScapError as e:
            done.value = getattr(e, "partial", None)   # (what it made before the error)
            line = error_line(e)
            done.error = _named(line.replace(copy.copy, path) if copy.copy else line, path)
        except OSError as e:
            done.error = f"{path}: {e.strerror or e}"
        except MemoryError:
            done.error = f"{path}: out of memory"
    done.warnings = [str(w.message) for w in caught]
    return done


def _named(line, path):
    return line if os.fspath(path) in line else f"{path}: {line}"


class _local_copy:
    """A URL's capture copied to a local file for the time of the task (captures are mapped
    and read by offset); a local path as it is."""

    def __init__(self, path):
        self.path, self.copy = os.fspath(path), None

    def __enter__(self):
        if "://" not in self.path:
            return self.path
        import tempfile

        import fsspec
        name = os.path.basename(self.path.split("://", 1)[1])
        fd, self.copy = tempfile.mkstemp(prefix="scaptool-", suffix="-" + name)
        with fsspec.open(self.path, "rb") as source, os.fdopen(fd, "wb") as target:
            while block := source.read(16 << 20):
                target.write(block)
        return self.copy

    def __exit__(self, *exc):
        if self.copy is not None:
            os.unlink(self.copy)


def _local_pool(jobs):
    """Worker processes forked from a server that imported scaptool, Polars and numpy once
    (a worker is ready in milliseconds, not the second an import takes), and not from this
    process, whose Polars threads a fork would copy mid-work."""
    import multiprocessing
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["scaptool.query.sql", "scaptool.query.export"])
    return concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context)


class _main_left_out:
    """While the workers start: a worker started by multiprocessing runs the main script
    again (its module-level code: a user's whole script, without the `if __name__ ==
    "__main__"` guard) so that functions defined there can be sent to it. Tasks here are
    scaptool's own functions: the workers start without the script."""

    def __enter__(self):
        import sys
        self.main = sys.modules.get("__main__")
        self.saved = {k: self.main.__dict__.pop(k) for k in ("__file__",)
                      if self.main is not None and k in self.main.__dict__}
        self.spec = getattr(self.main, "__spec__", None)
        if self.main is not None:
            self.main.__spec__ = None

    def __exit__(self, *exc):
        if self.main is not None:
            self.main.__dict__.update(self.saved)
            self.main.__spec__ = self.spec


# how long to wait for a scheduler that does not answer (Dask tries again until then)
CONNECT_TIMEOUT_S = 10


def _on_cluster(address, task, paths, args, finished):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise FleetError("--cluster needs Dask distributed: pip install distributed") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as e:
        raise FleetError(f"{address}: cannot reach the Dask scheduler ({e})") from None
    with client:
        # pure=False: a capture named twice is read twice, as asked (no shared result)
        futures = client.map(attempt, range(len(paths)), paths, [task] * len(paths),
                             *[[a] * len(paths) for a in args], pure=False)
        for future in as_completed(futures):
            try:
                finished(future.result())
            except Exception as e:   # noqa: BLE001 - the cluster's own failure (a worker
                # killed too often): that capture's error line, the rest go on
                index = futures.index(future)
                first = (str(e).strip().splitlines() or [""])[0]
                finished(Done(index, paths[index],
                              error=f"{paths[index]}: {type(e).__name__}: {first}"))
