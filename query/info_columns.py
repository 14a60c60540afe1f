"""evt.info, evt.args, evt.arg.NAME and evt.arg[N] of many events at once, as columns.

The rows are grouped by event type and parameter count; each parameter position of a group
is rendered as one text column by its codec's column renderer (scap.codec_columns), dumped
with -A/-x/-X (query.buffer_dumps), resolved with state looked up in bulk for the group (fd
names, the cwd of relative paths, the name of a pid, the type of each polled fd), and the
`name=text(resolved) ` pieces are joined with concat_str.

render.Renderer, one event at a time, is the reference, and still renders the rows this
module leaves to it (`fallback`): writes sysdig decodes as syslog, values that run past their
event record (damaged captures), CHARBUF values that are not UTF-8 and hex dumps of buffers
over 64 KiB. Tests hold the two equal on every event of every corpus capture.
"""
import numpy as np
import polars as pl

from scaptool.scap.codec_columns import NoStateColumns, Raw, render_column
from scaptool.scap import sysdig0293
from scaptool.scap.codecs import AT_FDCWD, IntCodec
from scaptool.scap.columns import binary_view, constant_series, polars_series
from scaptool.scap.eventtable import DYN_TABLES, PT
from scaptool.scap.row_params import RowParams

from . import buffer_dumps
from .render import GENERIC, Renderer, _params_of


class GroupState(NoStateColumns):
    """The state a column renderer asks for, for the events at `rows`, in bulk."""

    def __init__(self, data, rows, bytebuf_limit, users, groups):
        self.data = data
        self.rows = rows
        self.bytebuf_limit = bytebuf_limit
        self.users = users
        self.groups = groups

    def comm_of_pid(self, positions, pids):
        return self.data.state.comm_of_pids(self.rows[positions], pids)

    def fd_typechar(self, positions, fds):
        text = self.data.state.fd_texts(self.rows[positions], fds)
        return pl.select(pl.when(pl.lit(text).str.starts_with("<"))
                         .then(pl.lit(text).str.slice(1, 1))).to_series()

    def subset(self, positions):
        return GroupState(self.data, self.rows[positions], self.bytebuf_limit, self.users,
                          self.groups)


# rows rendered together: the parameter offsets of a group are (rows x parameters) matrices
CHUNK_ROWS = 1 << 16


def rendered_texts(data, what, arg, rows):
    """(Series of the text of `what` at the rows, rows rendered by the per-event Renderer).
    what: evt.info, evt.args or evt.arg (arg: a parameter name, or its index as digits)."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) > CHUNK_ROWS:
        parts = [rendered_texts(data, what, arg, rows[lo:lo + CHUNK_ROWS])
                 for lo in range(0, len(rows), CHUNK_ROWS)]
        return pl.concat([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    n = len(rows)
    renderer = data.renderer
    which = None
    if what == "evt.arg":
        which = int(arg) if arg is not None and arg.isdigit() else arg
    out = constant_series(None if what == "evt.arg" else "", n)
    fallback = np.zeros(n, dtype=bool)
    types = data.headers.type[rows].astype(np.int64)
    if what == "evt.info":
        fallback |= _syslog_candidates(data, rows, types)
    order = np.argsort(types, kind="stable")
    bounds = np.flatnonzero(np.diff(types[order])) + 1
    groups = []
    for positions in np.split(order, bounds):
        if not len(positions):
            continue
        etype = int(types[positions[0]])
        if etype >= sysdig0293.EVENT_MAX or (etype in GENERIC and what != "evt.arg"):
            continue
        groups.append((positions, _Group(data, renderer, rows[positions], etype)))
    _resolve_fds(data, [g for _, g in groups])
    for positions, group in groups:
        fallback[positions] |= group.fallback
        text = group.info() if what != "evt.arg" else group.arg(which)
        if text is not None:
            out = out.scatter(positions, text)
    at = np.flatnonzero(fallback)
    if len(at):
        texts = [_valid_utf8(t) for t in _per_event(renderer, what, which, rows[at])]
        out = out.scatter(at, pl.Series(values=texts, dtype=pl.String))
    return out.alias(what), rows[at]



def _valid_utf8(text):
    """A text made one by one, as a Polars string: bytes that decoding kept as surrogates
    (a damaged value) become U+FFFD."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")

def _per_event(renderer, what, which, rows):
    if what == "evt.arg":
        text = lambda row, raw: renderer.arg(row, which, raw)  # noqa: E731
    else:
        text = renderer.info if what == "evt.info" else renderer.args
    return [text(row, raw) for row, raw in zip(rows.tolist(), renderer.raw_params_at(rows))]


def _syslog_candidates(data, rows, types):
    """The rows of writes that may be decoded as syslog: Renderer.info knows how."""
    from .syslog import decoded, decoded_exit_types
    maybe = decoded_exit_types()[types]
    if not maybe.any():
        return maybe
    found = decoded(data.capture)["row"].to_numpy()
    return maybe & np.isin(rows, found)


def _resolve_fds(data, groups):
    """The names of every fd parameter >= 0 of every group, looked up in the fd tables in one
    go (one as-of join for the chunk, not one per group and parameter)."""
    asked = []   # (group, k, positions in the group, values)
    for group in groups:
        for k in range(int(group.count.max()) if len(group.rows) else 0):
            if group.params[k][0].type != PT.FD:
                continue
            values, valid = group.params[k][1].decode_numbers(
                group.buf, group.offsets[:, k], group.lengths[:, k])
            at = np.flatnonzero(valid & (values >= 0) & (group.count > k))
            group.fd_names[k] = (values, valid, None)
            if len(at):
                asked.append((group, k, at, values[at].astype(np.int64)))
    if not asked:
        return
    from .fds import fd_state
    found = fd_state(data.capture).resolved_text(
        np.concatenate([g.rows[at] for g, _, at, _ in asked]),
        np.concatenate([v for _, _, _, v in asked]))
    start = 0
    for group, k, at, _ in asked:
        values, valid, _ = group.fd_names[k]
        group.fd_names[k] = (values, valid, (at, found.slice(start, len(at))))
        start += len(at)


class _Group:
    """Events of one type: their parameters as text columns, rendered on first use."""

    def __init__(self, data, renderer, rows, etype):
        self.data = data
        self.renderer = renderer
        self.rows = rows
        self.params = _params_of(etype)
        h = data.headers.take(rows)
        where = RowParams(data.capture.buffer, h)
        self.buf = data.capture.buffer
        self.count = np.minimum(where.nparams, len(self.params))
        self.offsets, self.lengths = where.offsets, where.lengths
        # a value running past its record is damage: the reference reads it as it lies
        shown = np.arange(where.lengths.shape[1])[None, :] < self.count[:, None]
        past = (where.offsets + where.lengths > where.end[:, None]) & shown
        self.fallback = past.any(axis=1) if past.size else np.zeros(len(rows), dtype=bool)
        self.state = GroupState(data, rows, renderer.bytebuf_limit, renderer._users,
                                renderer._groups)
        self._texts = {}
        # k -> (values, valid, (positions, names) or None): _resolve_fds fills it
        self.fd_names = {}

    def raw(self, k):
        # a value running past its record is rendered one by one (fallback); here it is cut
        # where the buffer ends (a chunk's buffer may end before the value does)
        offsets, lengths = self.offsets[:, k], self.lengths[:, k]
        return Raw(self.buf, offsets, np.clip(len(self.buf) - offsets, 0, lengths))

    def info(self):
        """`name=text(resolved) ` per parameter, over the rows' own parameter counts."""
        n = len(self.rows)
        pieces = []
        for k in range(int(self.count.max()) if n else 0):
            text, resolved = self.text(k)
            shown = self.count > k
            piece = pl.lit(f"{self.params[k][0].name}=") + pl.lit(text)
            if resolved is not None:
                resolved = pl.lit(resolved)
                piece = pl.when((resolved != "").fill_null(False)) \
                    .then(piece + "(" + resolved + ")").otherwise(piece)
            piece = piece + " "
            if not shown.all():
                piece = pl.when(pl.lit(pl.Series(values=shown))).then(piece).otherwise(pl.lit(""))
            pieces.append(piece)
        if not pieces:
            return None
        return pl.select(pl.concat_str(pieces)).to_series()

    def arg(self, which):
        """The resolved text (else the text) of one parameter, null where the row has none."""
        if isinstance(which, int):
            k = which
        else:
            k = next((i for i, (p, _) in enumerate(self.params) if p.name == which), None)
        if k is None or k >= len(self.params) or not (self.count > k).any():
            return None
        text, resolved = self.text(k)
        value = pl.lit(text)
        if resolved is not None:
            value = pl.when((pl.lit(resolved) != "").fill_null(False)) \
                .then(pl.lit(resolved)).otherwise(value)
        return pl.select(pl.when(pl.lit(pl.Series(values=self.count > k)))
                         .then(value)).to_series()

    def text(self, k):
        """(text, resolved or None) of parameter k, as Renderer.param_texts makes them."""
        if k in self._texts:
            return self._texts[k]
        param, codec = self.params[k]
        previous = self.text(k - 1)[0] if k and param.type in (PT.FSPATH, PT.FSRELPATH) \
            else None
        raw = self.raw(k)
        done = render_column(codec, param, raw, self.state, previous)
        if done.fallback is not None:
            self.fallback |= done.fallback
        text = self._dumped(param, raw, done.text)
        resolved = done.resolved
        if param.type == PT.FD:
            resolved = self._fd_names(k, raw, resolved)
        elif param.type in (PT.FSPATH, PT.FSRELPATH):
            resolved = self._paths(k, param, raw)
        self._texts[k] = (text, resolved)
        return self._texts[k]

    # -- -A / -x / -X -----------------------------------------------------------------------

    def _dumped(self, param, raw, text):
        style = self.renderer.buffer_style
        if style is None:
            return text
        if param.type == PT.BYTEBUF:
            dumped = raw.lengths > 0
            skip = 0
        elif param.type == PT.DYN:
            # a dynamic parameter whose variant is a byte buffer is dumped like one
            subtypes = DYN_TABLES.get(param.extra, ())
            buffers = [i for i, s in enumerate(subtypes) if s.type == PT.BYTEBUF]
            valid = raw.lengths > 1
            first = np.where(valid, self.buf[np.where(valid, raw.offsets, 0)], 255)
            dumped = valid & np.isin(first, buffers)
            skip = 1
        else:
            return text
        at = np.flatnonzero(dumped)
        if not len(at):
            return text
        part = raw.take(at).shifted(skip)
        if style == "ascii":
            return text.scatter(at, buffer_dumps.ascii_dumps(part))
        too_long = part.lengths > buffer_dumps.MAX_HEX_DUMP
        self.fallback[at[too_long]] = True
        part = Raw(part.buf, part.offsets, np.where(too_long, 0, part.lengths))
        return text.scatter(at, buffer_dumps.hex_dumps(part, style == "hexascii"))

    # -- resolution with state ----------------------------------------------------------------

    def _fd_names(self, k, raw, resolved):
        """An fd >= 0 shows the name its thread's table has for it, where it has one."""
        if k in self.fd_names:
            values, valid, found = self.fd_names[k]
        else:
            values, valid = self.params[k][1].decode_numbers(raw.buf, raw.offsets, raw.lengths)
            at = np.flatnonzero(valid & (values >= 0))
            found = None
            if len(at):
                from .fds import fd_state
                found = (at, fd_state(self.data.capture).resolved_text(
                    self.rows[at], values[at].astype(np.int64)))
        # looked up for the rows rendered only: a filter's few printed rows do not need the
        # fd text of every parameter of every event of the chunk (EventData.fd_param_texts)
        names = constant_series(None, len(self.rows))
        if found is not None:
            names = names.scatter(found[0], found[1])
        use = pl.Series(values=valid & (values >= 0)) & (names != "").fill_null(False)
        if resolved is None:
            return pl.select(pl.when(pl.lit(use)).then(pl.lit(names))).to_series()
        return pl.select(pl.when(pl.lit(use)).then(pl.lit(names))
                         .otherwise(pl.lit(resolved))).to_series()

    def _paths(self, k, param, raw):
        """A relative path shows itself joined to the cwd (FSPATH), or to the directory of
        its dirfd parameter (FSRELPATH: AT_FDCWD means the cwd)."""
        n = len(self.rows)
        # the value: the bytes before a final NUL
        ends_nul = (raw.lengths > 0) & \
            (self.buf[np.where(raw.lengths > 0, raw.offsets + raw.lengths - 1, 0)] == 0)
        size = raw.lengths - ends_nul
        first = self.buf[np.where(size > 0, raw.offsets, 0)]
        relative = (raw.lengths > 0) & (size > 0) & (first != ord("/"))
        if param.type == PT.FSRELPATH:
            use_cwd, dirfd = self._dirfd(k, param)
            relative &= use_cwd | (dirfd >= 0)
        else:
            use_cwd, dirfd = np.ones(n, dtype=bool), np.full(n, -1, dtype=np.int64)
        at = np.flatnonzero(relative)
        if not len(at):
            return None
        state = self.data.state
        base = constant_series(None, len(at))
        cwd = at[use_cwd[at]]
        if len(cwd):
            base = base.scatter(np.flatnonzero(use_cwd[at]), state.cwds(self.rows[cwd]))
        by_fd = at[~use_cwd[at]]
        if len(by_fd):
            names = state.fd_texts(self.rows[by_fd], dirfd[by_fd])
            dirs = pl.select(pl.when(pl.lit(names).str.starts_with("<"))
                             .then(pl.lit(names).str.replace(r"^[^>]*>", ""))).to_series()
            base = base.scatter(np.flatnonzero(~use_cwd[at]), dirs)
        paths = polars_series("path", binary_view(self.buf, raw.offsets[at], size[at]))
        joined = _per_distinct_pair(base, paths, Renderer._relative_to)
        return constant_series(None, n).scatter(at, joined)

    def _dirfd(self, k, param):
        """(use the cwd, dirfd or -1) per row, from the parameter FSRELPATH names."""
        n = len(self.rows)
        extra = param.extra
        if not isinstance(extra, int) or extra > k:
            return np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int64)
        raw = self.raw(extra)
        codec = self.params[extra][1]
        if not isinstance(codec, IntCodec):
            # 0.29.3's openat2 enter names the path itself as its dirfd parameter: sysdig
            # then resolves against the cwd, as for AT_FDCWD (an empty one resolves nothing)
            return raw.lengths > 0, np.full(n, -1, dtype=np.int64)
        values, valid = codec.decode_numbers(raw.buf, raw.offsets, raw.lengths)
        values = np.where(valid, values.astype(np.int64), -1)
        return valid & (values == AT_FDCWD), values


def _per_distinct_pair(base, paths, join):
    """join(base, path) once per distinct (base, path) pair, spread to every row."""
    frame = pl.DataFrame({"base": base, "path": paths})
    distinct = frame.unique(maintain_order=True)
    joined = [join(b, p) for b, p in distinct.iter_rows()]
    table = distinct.with_columns(pl.Series("joined", joined, dtype=pl.String))
    return frame.join(table, on=["base", "path"], how="left", maintain_order="left",
                      nulls_equal=True)["joined"]
