"""Load Polars for a command without loading asyncio.

Before Python 3.13, Polars marks its deprecated functions with typing_extensions.deprecated,
which imports asyncio.coroutines to ask whether each one is a coroutine function; that import
loads the whole asyncio package (event loops, sockets, ssl, subprocess): 11 ms of a 0.4 s
command, for a package no command uses. While Polars loads, stand-ins answer that question
with inspect; afterwards they are gone, and an `import asyncio` gets the real package. The
library itself never does this: it is a command's choice, made where a command first needs
Polars.
"""
import inspect
import os
import sys
import types


class _AsyncioStandIn(types.ModuleType):
    """Stands for `asyncio` or `asyncio.coroutines` while Polars loads. Whatever it is asked
    beyond `iscoroutinefunction` loads the real package and comes from there."""

    def __getattr__(self, name):
        _drop_stand_ins()
        import asyncio.coroutines  # noqa: F401 - the real package, now
        return getattr(sys.modules[self.__name__], name)


def _drop_stand_ins():
    for name in ("asyncio.coroutines", "asyncio"):
        if isinstance(sys.modules.get(name), _AsyncioStandIn):
            del sys.modules[name]


# Polars allocates through its own jemalloc, which by default keeps freed pages for ten
# seconds before giving them back: a command reading chunk after chunk then holds the pages
# of several chunks at once (about 35 MB of a 2.5M-event filter's peak). Returned at once,
# they are reused by the next chunk all the same; no slower in our runs. Read by jemalloc
# when Polars first allocates, so set before Polars loads, for the command's process only.
_JEMALLOC = ("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")


def load():
    """Import Polars (if not yet imported) with the stand-ins in place."""
    if "polars" in sys.modules:
        return
    name, value = _JEMALLOC
    if name not in os.environ:
        os.environ[name] = value
        _restore.append(name)
    if "asyncio" in sys.modules or sys.version_info >= (3, 13):
        import polars  # noqa: F401
        _forget_setting()
        return
    coroutines = _AsyncioStandIn("asyncio.coroutines")
    coroutines.iscoroutinefunction = inspect.iscoroutinefunction
    package = _AsyncioStandIn("asyncio")
    package.coroutines = coroutines
    sys.modules.update({"asyncio": package, "asyncio.coroutines": coroutines})
    try:
        import polars as pl
        pl.Series([1])  # (jemalloc reads its setting at its first allocation)
    finally:
        _drop_stand_ins()
        _forget_setting()


_restore = []


def _forget_setting():
    """Programs the command starts (scaptool capture's helper) get the environment it had."""
    while _restore:
        os.environ.pop(_restore.pop(), None)
