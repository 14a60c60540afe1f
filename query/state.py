"""The state a renderer needs for each event, from the thread and fd tables.

Thread and fd state are built as columns over all events (query.threads, query.fds); this
module adapts them to the per-event lookups of query.render: the event's own process name
and cwd, the name of any pid it mentions, and what any fd it mentions refers to.
"""
import bisect
import functools

from .render import NoState


class CaptureState(NoState):
    def __init__(self, capture, data):
        self._sections = [s.first_event for s in capture.sections]
        self._capture = capture
        self._data = data

    @functools.cached_property
    def _versions(self):
        versions = self._data.thread_versions.select("section", "tid", "row", "alive", "comm")
        found = {}
        for section, tid, row, alive, comm in versions.iter_rows():
            rows, values = found.setdefault((section, tid), ([], []))
            rows.append(row)
            values.append(comm if alive else None)
        return found

    def proc_name(self, row):
        return self._data.thread_value("proc.name", row)

    def cwd(self, row):
        return self._data.thread_value("proc.cwd", row)

    def _section(self, row):
        return bisect.bisect_right(self._sections, row) - 1

    def comm_of_pid(self, row, pid):
        """The name of thread `pid` as sysdig's table knows it when it prints event `row`."""
        found = self._versions.get((self._section(row), pid))
        if not found:
            return None
        rows, comms = found
        at = bisect.bisect_right(rows, row) - 1
        return comms[at] if at >= 0 else None

    def fd_param_text(self, row, position):
        """The text sysdig shows for the FD parameter at this position of this event."""
        texts = self._data.fd_param_texts.get(position)
        return texts[row] if texts is not None else None

    def fd_text(self, row, fd):
        import numpy as np
        found = self._data.fd_lookup(np.array([row]), np.array([fd]))
        value = found[0] if len(found) else None
        return value if value is None or isinstance(value, str) else str(value)

    # -- the same lookups for many (row, value) pairs at once (query.info_columns) -------------

    @functools.cached_property
    def _version_table(self):
        """Thread versions by (section, tid), ordered by row: the last of several at one row
        wins, as bisect_right finds it in _versions."""
        import polars as pl
        versions = self._data.thread_versions
        return versions.select(
            pl.col("section").cast(pl.Int64), pl.col("tid").cast(pl.Int64),
            pl.col("row").cast(pl.Int64),
            pl.when(pl.col("alive")).then(pl.col("comm")).alias("comm")) \
            .unique(subset=["section", "tid", "row"], keep="last", maintain_order=True) \
            .sort("row")

    def comm_of_pids(self, rows, pids):
        """comm_of_pid of each (rows[i], pids[i]), as a pl.String Series."""
        import numpy as np
        import polars as pl
        rows = np.asarray(rows, dtype=np.int64)
        sections = np.searchsorted(np.asarray(self._sections, dtype=np.int64), rows,
                                   side="right") - 1
        asked = pl.DataFrame({"i": np.arange(len(rows), dtype=np.int64), "section": sections,
                              "tid": np.asarray(pids, dtype=np.int64), "row": rows}).sort("row")
        found = asked.join_asof(self._version_table, on="row", by=["section", "tid"],
                                strategy="backward", check_sortedness=False)
        return found.sort("i")["comm"]

    def fd_texts(self, rows, fds):
        """fd_text of each (rows[i], fds[i]), as a pl.String Series."""
        import numpy as np
        import polars as pl
        if not len(rows):
            return pl.Series(values=[], dtype=pl.String)
        return self._data.fd_lookup(np.asarray(rows, dtype=np.int64),
                                    np.asarray(fds, dtype=np.int64)).cast(pl.String)

    def cwds(self, rows):
        """cwd of each of the rows (any order), as a pl.String Series."""
        import numpy as np
        rows = np.asarray(rows, dtype=np.int64)
        full = self._data.__dict__.get("_thread_columns", {})
        if "proc.cwd" in full:
            return full["proc.cwd"].gather(rows)
        distinct, inverse = np.unique(rows, return_inverse=True)
        return self._data.threads_at(distinct, ["proc.cwd"])["proc.cwd"] \
            .gather(inverse.reshape(-1))

    def fd_dir(self, row, fd):
        text = self.fd_text(row, fd)
        if not text or not text.startswith("<"):
            return None
        return text[text.index(">") + 1:]


def capture_state(capture, data=None):
    """The state of every event of the capture, for rendering."""
    if data is None:
        from .events import EventData
        data = EventData(capture)
    return CaptureState(capture, data)
