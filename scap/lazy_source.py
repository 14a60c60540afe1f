"""A LazyFrame whose columns are computed only when a query needs them.

Polars' IO-plugin hook (polars.io.plugins.register_io_source) tells the source which columns
a query uses, the row filter it may apply and how many rows it needs. lazy_source turns that
into one call of `produce(names, batch_size)`, an iterator of DataFrames holding those columns
for consecutive rows, and takes care of the rest: the filter's own columns, the declared
dtypes, the row limit.
"""
import functools

_BATCH_ROWS = 100_000


def lazy_source(schema, produce, name):
    """A LazyFrame over `produce`.

    schema: a function giving {column: dtype} of every column, called once, when Polars first
    needs it. produce(names, batch_size): DataFrames with at least the columns `names`, in row
    order, each cast to the declared dtypes here. name: what `explain()` shows."""
    import polars as pl
    from polars.io.plugins import register_io_source

    schema = functools.cache(lambda declared=schema: pl.Schema(declared()))

    def source(with_columns, predicate, n_rows, batch_size):
        declared = schema()
        wanted = list(declared) if with_columns is None else list(with_columns)
        needed = list(wanted)
        if predicate is not None:  # the filter may use columns the query does not keep
            needed += [c for c in predicate.meta.root_names() if c not in needed]
        if not needed:  # pl.len() alone: still one column, to count the rows
            needed = list(declared)[:1]
        left = n_rows
        for batch in produce(needed, batch_size or _BATCH_ROWS):
            if left is not None and left <= 0:
                return
            batch = batch.select(pl.col(c).cast(declared[c]) for c in needed)
            if predicate is not None:
                batch = batch.filter(predicate)
            batch = batch.select(wanted) if wanted else pl.DataFrame(height=batch.height)
            if left is not None:
                batch = batch.head(left)
                left -= batch.height
            yield batch

    return register_io_source(source, schema=schema, explain_name=name)
