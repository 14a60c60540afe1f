"""Captures as files that analytic tools read: Parquet, Arrow IPC, CSV or NDJSON, chosen by the
output's extension (a directory: a Parquet dataset, one file per million rows).

The columns are the frames' (query.api, query.frame_types): one per field, named after it,
typed (evt.time a Datetime in ns UTC, integers, strings, byte buffers as Binary), and a
`capture` column first when several captures are exported into one output. The captures are
read a chunk at a time (query.chunks) and each chunk's rows are written before the next is
read, so memory follows the chunk, not the capture.

CSV and NDJSON have no bytes and no lists: there a byte buffer is its text (UTF-8, an invalid
byte as U+FFFD, as api.text gives) and a list its items joined by commas (CSV; NDJSON keeps
lists as arrays). Parquet and Arrow keep the bytes as they were captured.

Nothing is visible at the output's name until the whole export is done: a file is written with
no name and given it at the end (scap.writer.Temporary), a dataset is written into a hidden
folder beside it and renamed.
"""
import concurrent.futures
import os
import re
import shutil
import tempfile

import polars as pl

from scaptool.scap import Capture, ScapError, ScapWarning, TruncatedError
from scaptool.scap.errors import WriteError

from . import api
from .chunks import Reading, event_data_chunks
from .fields import lookup
from .frame_types import frame_dtype

# sysdig's default line, as values: what `scaptool export` writes without -f
EXPORT_FIELDS = ("evt.num", "evt.time", "evt.cpu", "proc.name", "thread.tid", "evt.dir",
                 "evt.type", "evt.info")
CHUNK_EVENTS = 1 << 16
CHUNK_BYTES = 8 << 20
DATASET_PART_ROWS = 1_000_000

KINDS = {".parquet": "parquet", ".arrow": "arrow", ".ipc": "arrow", ".feather": "arrow",
         ".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}


class ExportError(ScapError):
    """The output cannot be what was asked (an unknown extension, a folder that is not
    empty)."""


def output_kind(out):
    """'parquet', 'arrow', 'csv', 'ndjson' by the extension of `out`, or 'dataset' for a
    folder (one that exists, or a name ending in /)."""
    out = os.fspath(out)
    if out.endswith(os.sep) or os.path.isdir(out):
        return "dataset"
    kind = KINDS.get(os.path.splitext(out)[1].lower())
    if kind is None:
        raise ExportError("cannot tell what to write from the name: end it in .parquet, "
                          ".arrow, .csv, .ndjson or / (a Parquet dataset)", path=out)
    return kind


def export(captures, out, fields=EXPORT_FIELDS, filter=None, *, all_events=False,
           capture_column=None, on_chunk=None, jobs=None, cluster=None, on_done=None):
    """Write the rows of frame(capture, fields, filter) of each capture in turn into `out`
    (its kind by output_kind). capture_column: add `capture` (the path as given) and
    `hostname` (its machine's) as the first columns; by default when there are several
    captures. on_chunk(chunk): called after each chunk is written (progress). Returns the
    number of rows written.

    Several captures are read in parallel (query.fleet: `jobs` local worker processes, or a
    Dask cluster at `cluster`), each into a Parquet part in a hidden folder beside `out`,
    which are then written into `out` in the captures' order. One that cannot be read is
    left out, with a ScapWarning (on_done(done, finished, total) is told of each capture).

    A damaged capture ends where its damage is, with a ScapWarning when it was cut short (as
    scap.open does) and a ScapError otherwise; with one capture, what was written stays
    unpublished then."""
    from . import fleet
    captures = [captures] if isinstance(captures, (str, os.PathLike)) else list(captures)
    names = api._field_names(fields)
    if filter:
        api.parse(filter)   # a bad filter fails before anything is read or written
    if capture_column is None:
        capture_column = len(captures) > 1
    kind = output_kind(out)
    sink = _SINKS[kind](os.fspath(out), captures)
    many = len(captures) > 1
    try:
        if many and (cluster or fleet.local_jobs(captures, jobs) > 1):
            written = _export_parts(captures, sink, names, filter, all_events,
                                    capture_column, jobs, cluster, on_done)
        else:
            told = (on_done or _nobody) if many else None   # (each may fail alone)
            written = _export_here(captures, sink, names, filter, all_events,
                                   capture_column, on_chunk, told)
        if not sink.started:
            sink.write(_empty(names, capture_column))
        sink.publish()
    except BaseException:
        sink.discard()
        raise
    return written


def _export_here(captures, sink, names, filter, all_events, capture_column, on_chunk,
                 on_done):
    """Each capture read here in turn, its chunks written as they come. on_done: several
    captures, each of which may fail alone (else the error ends the export)."""
    import warnings

    from . import fleet
    written = 0
    # a chunk is encoded and written (Arrow, zstd: the GIL released) while the next is read
    writing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="export-writer")
    pending = None

    try:
        for index, path in enumerate(captures):
            machine = {}
            done = fleet.Done(index, os.fspath(path))
            with warnings.catch_warnings(record=on_done is not None) as caught:
                try:
                    for part in _capture_frames(path, names, filter, all_events, on_chunk,
                                                machine):
                        if capture_column:
                            part = _labelled(part, path, machine.get("hostname"))
                        if pending is not None:
                            pending.result()   # (one chunk in flight: memory stays two)
                        pending = writing.submit(sink.write, part)
                        written += part.height
                except ScapError as e:
                    if on_done is None or isinstance(e, WriteError):
                        raise
                    from scaptool.scap.errors import error_line
                    done.error = fleet._named(error_line(e), os.fspath(path))
            if on_done is not None:
                done.warnings = [str(w.message) for w in caught]
                _tell(done, index + 1, len(captures), on_done)
        if pending is not None:
            pending.result()
    except BaseException:
        if pending is not None:
            concurrent.futures.wait([pending])
        raise
    finally:
        writing.shutdown()
    return written


def _nobody(done, finished, total):
    pass


def _tell(done, finished, total, on_done):
    """A capture of several is done: its warnings and error as ScapWarnings, and on_done."""
    import warnings
    for line in done.warnings + ([done.error] if done.error else []):
        warnings.warn(ScapWarning(line), stacklevel=4)
    on_done(done, finished, total)


def _labelled(frame, path, hostname):
    return frame.select(pl.lit(os.fspath(path)).alias("capture"),
                        pl.lit(hostname, dtype=pl.String).alias("hostname"), pl.all())


def _export_parts(captures, sink, names, filter, all_events, capture_column, jobs, cluster,
                  on_done):
    """Several captures read in parallel by query.fleet, each into a Parquet part in a hidden
    folder beside the output, then the parts written into the sink in the captures' order
    (a row group at a time: memory stays bounded)."""
    import pyarrow.parquet as pq

    from . import fleet
    parent = os.path.dirname(os.path.abspath(sink.path))
    folder = tempfile.mkdtemp(prefix=f".scaptool-{os.getpid()}-", suffix=".tmp", dir=parent)
    try:
        results = fleet.run(_export_part, captures, names, filter, all_events, folder,
                            jobs=jobs, cluster=cluster,
                            on_done=lambda done, finished, total: _tell(
                                done, finished, total, on_done or _nobody))
        written = 0
        for done in results:
            if done.value is None:   # (failed before it read anything)
                continue
            hostname, part = done.value
            parquet = pq.ParquetFile(os.path.join(folder, os.path.basename(part)))
            for batch in parquet.iter_batches(batch_size=CHUNK_EVENTS):
                frame = pl.from_arrow(batch)
                if capture_column:
                    frame = _labelled(frame, done.path, hostname)
                sink.write(frame)
                written += frame.height
        return written
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _export_part(path, names, filter, all_events, folder):
    """A fleet task: one capture's rows into a Parquet file of its own in `folder`; (its
    machine's hostname, the file's name). Where the capture's damage ends it, the rows before
    stay (as they do read here), the error says why: ScapError.partial."""
    machine = {}
    fd, part = tempfile.mkstemp(prefix="part-", suffix=".parquet", dir=folder)
    os.close(fd)
    import pyarrow.parquet as pq
    writer = None
    try:
        for frame in _capture_frames(path, names, filter, all_events, None, machine):
            table = _arrow(frame)
            if writer is None:
                writer = pq.ParquetWriter(part, table.schema, compression="lz4")
            writer.write_table(table.cast(writer.schema))
    except ScapError as e:
        if writer is not None:
            writer.close()
            e.partial = (machine.get("hostname"), part)
        raise
    if writer is None:
        pq.write_table(_arrow(_empty(names, False)), part)
    else:
        writer.close()
    return machine.get("hostname"), part


def _capture_frames(path, names, filter, all_events, on_chunk, machine=None):
    """The frame of one capture, a DataFrame per chunk (none for a chunk with no row).
    `machine`: a dict that gets the capture's machine info before the first frame."""
    import warnings
    if isinstance(path, Capture):
        path = path.path
    reading = Reading()
    for data in event_data_chunks(path, CHUNK_EVENTS, window=CHUNK_BYTES, reading=reading):
        if machine is not None and not machine:
            machine.update(data.capture.machine or {"hostname": None})
        for part in api._frame_batches(data.capture, names, filter, all_events, None, data):
            if part.height:
                yield part
        if on_chunk is not None:
            on_chunk(data.capture)
    damage = reading.damage
    if isinstance(damage, TruncatedError) and reading.reader.events_read:
        warnings.warn(ScapWarning(f"{damage}; keeping everything before it"), stacklevel=3)
    elif damage is not None:
        raise damage


def _empty(names, capture_column):
    """No rows, the columns' types: what an export of nothing holds."""
    schema = {"capture": pl.String, "hostname": pl.String} if capture_column else {}
    for name in names:
        schema[name] = frame_dtype(lookup(name)[0]) or pl.Binary
    return pl.DataFrame(schema=schema)


# -- sinks: write DataFrames, then publish (the output gets its name) or discard ----------------

class _FileSink:
    """A file with no name until publish() (scap.writer.Temporary)."""

    def __init__(self, path, inputs=()):
        from scaptool.scap.writer import Temporary, check_output
        check_output(path, [c.path if isinstance(c, Capture) else c for c in inputs])
        self.path = path
        self.temporary = Temporary(path)
        self.file = os.fdopen(os.dup(self.temporary.fd), "wb")
        self.started = False
        self.schema = None

    def write(self, frame):
        if self.schema is None:
            self.schema = frame.schema
        elif frame.schema != self.schema:
            # a field whose type only the capture tells (evt.rawarg.NAME) may differ between
            # captures: the first capture's type holds for the file
            frame = frame.cast(dict(self.schema), strict=False)
        try:
            self._write(frame, first=not self.started)
        except OSError as e:
            raise WriteError(f"cannot write: {_reason(e)}", path=self.path) from None
        self.started = True

    def publish(self):
        try:
            self._finish()
            self.file.close()
        except OSError as e:
            raise WriteError(f"cannot write: {_reason(e)}", path=self.path) from None
        self.temporary.publish()
        os.close(self.temporary.fd)

    def discard(self):
        try:
            self.file.close()
        except OSError:
            pass
        self.temporary.discard()
        os.close(self.temporary.fd)

    def _finish(self):
        pass


def _reason(error):
    """An OSError's reason: Polars' have no strerror, only their text ('No space left on
    device (os error 28)')."""
    if error.strerror:
        return error.strerror
    return re.sub(r" \(os error \d+\)$", "", str(error)) or type(error).__name__


def _arrow(frame):
    # the oldest Arrow layouts (large_string, not string_view): every reader knows them
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


class _ParquetSink(_FileSink):
    writer = None

    def _write(self, frame, first):
        import pyarrow.parquet as pq
        table = _arrow(frame)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.file, table.schema, compression="zstd")
        self.writer.write_table(table.cast(self.writer.schema))

    def _finish(self):
        if self.writer is not None:
            self.writer.close()


class _ArrowSink(_FileSink):
    writer = None

    def _write(self, frame, first):
        import pyarrow as pa
        table = _arrow(frame)
        if self.writer is None:
            self.arrow_schema = table.schema
            self.writer = pa.ipc.new_file(self.file, table.schema)
        self.writer.write_table(table.cast(self.arrow_schema))

    def _finish(self):
        if self.writer is not None:
            self.writer.close()


def as_text(frame, lists_joined):
    """Byte buffers as text; lists joined by commas where the format has none."""
    out = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype == pl.Binary:
            column = api.text(name)
        elif isinstance(dtype, pl.List) and lists_joined:
            column = column.cast(pl.List(pl.String)).list.join(",")
        out.append(column)
    return frame.select(out)


class _CsvSink(_FileSink):
    def _write(self, frame, first):
        as_text(frame, True).write_csv(self.file, include_header=first)


class _NdjsonSink(_FileSink):
    def _write(self, frame, first):
        if frame.height:
            as_text(frame, False).write_ndjson(self.file)


class _DatasetSink:
    """A folder of Parquet files (part-00000.parquet, ...), written into a hidden folder
    beside it and renamed into place at the end. The folder given must be new or empty."""

    def __init__(self, path, inputs=()):
        self.path = path.rstrip(os.sep) or path
        if os.path.isdir(self.path) and os.listdir(self.path):
            raise ExportError("the folder is not empty: a dataset is written into a new or "
                              "empty folder", path=self.path)
        parent = os.path.dirname(os.path.abspath(self.path))
        from scaptool.scap.writer import _sweep
        _sweep(parent)
        if not os.path.isdir(parent):
            raise WriteError("cannot write here: No such file or directory", path=self.path)
        try:
            self.folder = tempfile.mkdtemp(prefix=f".scaptool-{os.getpid()}-", suffix=".tmp",
                                           dir=parent)
        except OSError as e:
            raise WriteError(f"cannot write here: {e.strerror}", path=self.path) from None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.folder, 0o777 & ~umask)   # (mkdtemp's is the owner's alone)
        self.part = None
        self.parts = 0
        self.rows_in_part = 0
        self.started = False

    def write(self, frame):
        while frame.height or not self.started:
            if self.part is None or self.rows_in_part >= DATASET_PART_ROWS:
                self._next_part()
            room = DATASET_PART_ROWS - self.rows_in_part
            self.part.write(frame.slice(0, room))
            self.rows_in_part += min(room, frame.height)
            frame = frame.slice(room)
            self.started = True

    def _next_part(self):
        if self.part is not None:
            self.part.publish()
        self.part = _ParquetSink(os.path.join(self.folder, f"part-{self.parts:05d}.parquet"))
        self.parts += 1
        self.rows_in_part = 0

    def publish(self):
        if self.part is not None:
            self.part.publish()
            self.part = None
        try:
            os.rename(self.folder, self.path)   # (over an empty folder too)
        except OSError as e:
            self.discard()
            raise WriteError(f"cannot write here: {e.strerror}", path=self.path) from None

    def discard(self):
        if self.part is not None:
            self.part.discard()
            self.part = None
        shutil.rmtree(self.folder, ignore_errors=True)


_SINKS = {"parquet": _ParquetSink, "arrow": _ArrowSink, "csv": _CsvSink,
          "ndjson": _NdjsonSink, "dataset": _DatasetSink}
