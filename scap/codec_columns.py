"""Each codec's render(), for a whole column of raw parameter values at once.

`render_column(codec, param, raw, ctx, previous)` gives what `codec.render` gives for each
value of the column (raw: the buffer and each value's offset and length), as Polars columns:
the text, the resolved text (null where there is none) and, rarely, rows it could not render
(left to the scalar code). The scalar render() stays the reference: tests hold the two equal.

Three ways of building text, from the cheapest:
- numbers and bytes transformed as whole arrays (decimal casts, hex digits, dotted bytes,
  IPv4 tuples), for the columns whose values are all different (sizes, fds, buffers);
- the scalar render() once per *distinct* value, spread back to the rows: flags, modes,
  signals, uids, syscall ids, errno names, IPv6 and unix addresses repeat a lot;
- nothing else: a value neither covers (a CHARBUF that is not UTF-8) is a fallback row.

State (the name of a pid, the type of an fd) comes from ctx in bulk: see NoStateColumns.
"""
from typing import NamedTuple

import numpy as np
import polars as pl

from . import byte_columns as bc
from .codecs import (AT_FDCWD, PPM_AF_INET, ByteBufCodec, Codec, DynCodec, ErrnoCodec,
                     FdCodec, FdListCodec, IntCodec, NotRenderedInt, AbstimeCodec, PidCodec,
                     SockAddrCodec, SockTupleCodec, StringCodec, codec_for, _DOTTED)
from .columns import binary_view, constant_series, gather_le, polars_series
from .eventtable import DYN_TABLES, PF, PT


class Raw(NamedTuple):
    """One parameter of several events: value i is buf[offsets[i]:offsets[i] + lengths[i]]."""
    buf: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray

    def take(self, positions):
        return Raw(self.buf, self.offsets[positions], self.lengths[positions])

    def shifted(self, by):
        """The values without their first `by` bytes (a DYN payload)."""
        return Raw(self.buf, self.offsets + by, np.maximum(self.lengths - by, 0))


class Rendered(NamedTuple):
    text: pl.Series                # pl.String, never null
    resolved: pl.Series = None     # pl.String, null where there is none; None: none at all
    fallback: np.ndarray = None    # bool per value: left to the scalar render(); None: none


class NoStateColumns:
    """What a column renderer knows without thread and fd state (as render.NoState): no pid
    names, no fd types. A stateful one answers for the events of a group of rows; positions
    index those rows."""
    bytebuf_limit = 80
    users = None
    groups = None

    def comm_of_pid(self, positions, pids):
        return constant_series(None, len(positions))

    def fd_typechar(self, positions, fds):
        """The type char of fd fds[i] in the table of row positions[i], null where unknown."""
        return constant_series(None, len(positions))

    def subset(self, positions):
        return self


def render_column(codec, param, raw, ctx=None, previous=None):
    """Rendered of the values of `raw` as codec.render(codec.decode(value), param, ...) gives
    them; previous: the text column of the parameter before (for empty paths)."""
    ctx = ctx or NoStateColumns()
    for kind, renderer in _RENDERERS:
        if isinstance(codec, kind):
            return renderer(codec, param, raw, ctx, previous)
    if type(codec).render is Codec.render:
        return Rendered(_constant("(n.a.)", len(raw.offsets)))
    raise TypeError(f"no column renderer for {type(codec).__name__}")


# -- helpers ------------------------------------------------------------------------------------

def _constant(text, n, dtype=pl.String):
    return constant_series(text, n, dtype)


def _spread(n, where, values, default):
    """A column of n values: `values` at the rows where `where` is True, default elsewhere."""
    if where.all():
        return values
    out = _constant(default, n)
    at = np.flatnonzero(where)
    return out.scatter(at, values) if len(at) else out


def _decimal(values):
    return pl.Series(values=np.asarray(values)).cast(pl.String)


def per_distinct(values, render):
    """render(value) -> (text, resolved) called once per distinct value (numbers), spread to
    every row: (text Series, resolved Series)."""
    distinct, inverse = np.unique(np.asarray(values), return_inverse=True)
    pairs = [render(v) for v in distinct.tolist()]
    inverse = inverse.reshape(-1)
    # (indexing, not Series.gather: that runs a query per call)
    text = pl.Series(values=[p[0] for p in pairs], dtype=pl.String)[inverse]
    resolved = pl.Series(values=[p[1] for p in pairs], dtype=pl.String)[inverse]
    return text, resolved


def per_distinct_bytes(raw, render):
    """As per_distinct, for byte values (addresses): render(bytes) -> (text, resolved)."""
    column = polars_series("v", binary_view(raw.buf, raw.offsets, raw.lengths))
    frame = column.to_frame()
    distinct = frame.unique(maintain_order=True)
    pairs = [render(v) for v in distinct["v"].to_list()]
    table = distinct.with_columns(
        pl.Series("t", [p[0] for p in pairs], dtype=pl.String),
        pl.Series("r", [p[1] for p in pairs], dtype=pl.String))
    joined = frame.join(table, on="v", how="left", maintain_order="left", nulls_equal=True)
    return joined["t"], joined["r"]


def signed_wrap(values, bits):
    """The values' low `bits` bits as a signed number (int64)."""
    values = np.asarray(values)
    if bits == 64:
        return values.astype(np.int64) if values.dtype.kind == "i" else values.view(np.int64)
    low = values.astype(np.int64) & ((1 << bits) - 1)
    return np.where(low >= 1 << (bits - 1), low - (1 << bits), low)


def c_numbers(values, ptype, fmt):
    """codecs.c_number of every value (numpy), as a Series."""
    bits = 64 if ptype in (PT.INT64, PT.UINT64) else 32
    arg = signed_wrap(values, bits)
    if fmt in (PF.HEX, PF.OCT):
        unsigned = arg.view(np.uint64) if bits == 64 else (arg & 0xFFFFFFFF).astype(np.uint64)
        if fmt == PF.HEX:
            return bc.digits(unsigned, 16).strings()
        octal = bc.digits(unsigned, 8).strings()
        return pl.select(pl.when(pl.lit(pl.Series(values=unsigned)) != 0)
                         .then(pl.concat_str(pl.lit("0"), pl.lit(octal)))
                         .otherwise(pl.lit(octal))).to_series()
    text = _decimal(arg)
    return text.str.zfill(9) if fmt == PF.PADDED_DEC else text


# -- integers -----------------------------------------------------------------------------------

def _integers(codec, param, raw, ctx, previous):
    n = len(raw.offsets)
    values, valid = codec.decode_numbers(raw.buf, raw.offsets, raw.lengths)
    at = np.flatnonzero(valid)
    values = values[at]
    resolved = None
    if isinstance(codec, (NotRenderedInt, AbstimeCodec)):
        text = _constant(codec.render_number(0, param)[0], len(at))
    elif type(codec) is IntCodec:
        text = c_numbers(values, codec.pt, param.fmt)
    elif isinstance(codec, (ErrnoCodec, FdCodec)):
        # the number as is; a name for the few negative values (errno, AT_FDCWD)
        text = _decimal(values)
        named = values < 0
        _, names = per_distinct(values[named], lambda v: codec.render_number(v, param))
        resolved = _spread(len(at), named, names, None)
    elif isinstance(codec, PidCodec):
        text = _decimal(values)
        resolved = ctx.comm_of_pid(at, values)
        resolved = pl.select(pl.when(pl.lit(resolved) != "").then(pl.lit(resolved))).to_series()
    else:
        # flags, modes, uids, signals, syscall ids...: few distinct values per column
        text, resolved = per_distinct(values, lambda v: codec.render_number(
            v, param, users=ctx.users, groups=ctx.groups))
    return Rendered(_spread(n, valid, text, ""),
                    None if resolved is None else _spread(n, valid, resolved, None))


# -- strings and buffers ------------------------------------------------------------------------

_PRINTABLE = np.zeros(256, dtype=bool)
_PRINTABLE[0x20:0x7F] = True
_DOTTED_TABLE = np.frombuffer(_DOTTED, dtype=np.uint8)


def sanitized(raw):
    """codecs.sanitize of every value: up to the first NUL, printable bytes only."""
    segments = bc.gather(raw.buf, raw.offsets, raw.lengths).before_nul()
    return segments.keep(_PRINTABLE[segments.flat]).strings()


def _strings(codec, param, raw, ctx, previous):
    n = len(raw.offsets)
    valid = raw.lengths > 0
    # the value is the bytes before a final NUL; both renderings stop at the first NUL anyway
    if codec.pt != PT.CHARBUF:
        text = sanitized(raw)
        if not valid.all():
            # 0.29.3 copies nothing for an empty path and prints the previous param's text
            empty = previous if previous is not None else _constant("", n)
            text = pl.select(pl.when(pl.lit(pl.Series(values=valid)))
                             .then(pl.lit(text)).otherwise(pl.lit(empty))).to_series()
        return Rendered(text)
    segments = bc.gather(raw.buf, raw.offsets, raw.lengths).before_nul()
    wide = segments.non_ascii()
    fallback = None
    if wide.any():
        # UTF-8 (or not) text: decoded one value at a time, rare outside a few fields
        at = np.flatnonzero(wide)
        texts, bad = [], np.zeros(n, dtype=bool)
        for i in at.tolist():
            value = segments.flat[segments.starts[i]:segments.starts[i + 1]].tobytes()
            try:
                texts.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append("")
                bad[i] = True
        segments = segments.keep(~np.repeat(wide, segments.lengths))
        text = segments.strings().scatter(at, pl.Series(values=texts, dtype=pl.String))
        fallback = bad if bad.any() else None
    else:
        text = segments.strings()
    return Rendered(text, None, fallback)


def bytebuf_texts(raw, limit):
    """codecs.bytebuf_text of every value: dotted, cut to limit with '...'."""
    lengths = raw.lengths
    if not limit:
        def make(lo, hi):
            part = raw.take(slice(lo, hi))
            return bc.gather(part.buf, part.offsets, part.lengths) \
                .translate(_DOTTED_TABLE).strings()
        return bc.in_batches(lengths, make)
    cut = lengths > limit
    segments = bc.gather(raw.buf, raw.offsets, np.minimum(lengths, limit)) \
        .translate(_DOTTED_TABLE)
    if limit > 3 and cut.any():
        tail = (segments.index_in_value() >= limit - 3) & np.repeat(cut, segments.lengths)
        segments.flat[tail] = ord(".")
    return segments.strings()


def _bytebuf(codec, param, raw, ctx, previous):
    return Rendered(bytebuf_texts(raw, ctx.bytebuf_limit))


# -- addresses ----------------------------------------------------------------------------------

def _u8(raw, at, k):
    return raw.buf[raw.offsets[at] + k]


def _ipv4(raw, at, k):
    """The IPv4 address at byte k of the values at rows `at`, as dotted-quad expressions."""
    return [pl.lit(_decimal(_u8(raw, at, k + j))) if j == 0 else
            pl.concat_str(pl.lit("."), pl.lit(_decimal(_u8(raw, at, k + j)))) for j in range(4)]


def _port(raw, at, k):
    return pl.lit(_decimal(gather_le(raw.buf, raw.offsets[at] + k, 2, np.uint16)))


def _addresses(codec, param, raw, ctx, previous, v4_size, v4_parts):
    """SOCKADDR / SOCKTUPLE: IPv4 ones built as columns, the others (unix, IPv6, other
    families, damaged) by the scalar render() once per distinct value; NULL when empty."""
    n = len(raw.offsets)
    text = _constant("NULL", n)
    valid = raw.lengths > 0
    family = np.where(valid, raw.buf[np.where(valid, raw.offsets, 0)], 0)
    v4 = valid & (family == PPM_AF_INET) & (raw.lengths == v4_size)
    at = np.flatnonzero(v4)
    if len(at):
        text = text.scatter(at, pl.select(pl.concat_str(v4_parts(raw, at))).to_series())
    others = np.flatnonzero(valid & ~v4)
    if len(others):
        shown, _ = per_distinct_bytes(raw.take(others),
                                      lambda v: codec.render(codec.decode(v), param))
        text = text.scatter(others, shown)
    return Rendered(text)


def _sockaddr_v4(raw, at):
    return [*_ipv4(raw, at, 1), pl.lit(":"), _port(raw, at, 5)]


def _socktuple_v4(raw, at):
    return [*_ipv4(raw, at, 1), pl.lit(":"), _port(raw, at, 5), pl.lit("->"),
            *_ipv4(raw, at, 7), pl.lit(":"), _port(raw, at, 11)]


def _sockaddr(codec, param, raw, ctx, previous):
    return _addresses(codec, param, raw, ctx, previous, 7, _sockaddr_v4)


def _socktuple(codec, param, raw, ctx, previous):
    return _addresses(codec, param, raw, ctx, previous, 13, _socktuple_v4)


# -- fd lists -----------------------------------------------------------------------------------

def _fdlist(codec, param, raw, ctx, previous):
    """`fd:<typechar><flags hex>` per entry, space separated (poll's fds)."""
    n = len(raw.offsets)
    lengths = raw.lengths
    counts = np.zeros(n, dtype=np.int64)
    has = lengths >= 2
    counts[has] = gather_le(raw.buf, raw.offsets[has], 2, np.uint16)
    counts = np.minimum(counts, np.maximum(lengths - 2, 0) // 10)
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    if not len(owner):
        return Rendered(_constant("", n))
    first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=first[1:])
    at = raw.offsets[owner] + 2 + 10 * (np.arange(len(owner)) - first[owner])
    fds = gather_le(raw.buf, at, 8, np.int64)
    flags = gather_le(raw.buf, at + 8, 2, np.int16)
    typechar = ctx.fd_typechar(owner, fds).fill_null("?")
    entries = pl.select(pl.concat_str(
        pl.lit(_decimal(fds.view(np.uint64))), pl.lit(":"), pl.lit(typechar),
        pl.lit(bc.digits((flags.astype(np.int64) & 0xFFFFFFFF).astype(np.uint64), 16,
                         upper=False).strings()))).to_series()
    joined = pl.DataFrame({"owner": owner, "entry": entries}) \
        .group_by("owner", maintain_order=True).agg(pl.col("entry").str.join(" "))
    return Rendered(_constant("", n).scatter(joined["owner"].to_numpy(), joined["entry"]))


# -- dynamic parameters -------------------------------------------------------------------------

def _dynamic(codec, param, raw, ctx, previous):
    """The first byte picks the sub-type; each sub-type's rows are rendered by its codec."""
    n = len(raw.offsets)
    subtypes = DYN_TABLES.get(param.extra, ())
    valid = raw.lengths > 0
    index = np.where(valid, raw.buf[np.where(valid, raw.offsets, 0)], 255).astype(np.int64)
    text = _constant("INVALID DYNAMIC PARAMETER", n)
    resolved, fallback = None, np.zeros(n, dtype=bool)
    for choice in np.unique(index[valid]).tolist():
        if choice >= len(subtypes):
            continue
        at = np.flatnonzero(valid & (index == choice))
        sub = subtypes[choice]
        shown = type(param)(param.name, sub.type, param.fmt, sub.extra)
        part = render_column(codec_for(sub.type), shown, raw.take(at).shifted(1),
                             ctx.subset(at), None if previous is None else previous.gather(at))
        text = text.scatter(at, part.text)
        if part.resolved is not None:
            resolved = _constant(None, n) if resolved is None else resolved
            resolved = resolved.scatter(at, part.resolved)
        if part.fallback is not None:
            fallback[at] |= part.fallback
    return Rendered(text, resolved, fallback if fallback.any() else None)


_RENDERERS = (
    (IntCodec, _integers),
    (StringCodec, _strings),
    (ByteBufCodec, _bytebuf),
    (SockAddrCodec, _sockaddr),
    (SockTupleCodec, _socktuple),
    (FdListCodec, _fdlist),
    (DynCodec, _dynamic),
)
