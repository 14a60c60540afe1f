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


def load():
    """Import Polars (if not yet imported) with the stand-ins in place."""
    if "polars" in sys.modules or "asyncio" in sys.modules or sys.version_info >= (3, 13):
        return
    coroutines = _AsyncioStandIn("asyncio.coroutines")
    coroutines.iscoroutinefunction = inspect.iscoroutinefunction
    package = _AsyncioStandIn("asyncio")
    package.coroutines = coroutines
    sys.modules.update({"asyncio": package, "asyncio.coroutines": coroutines})
    try:
        import polars  # noqa: F401
    finally:
        _drop_stand_ins()
