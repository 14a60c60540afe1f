"""Chisels: small analyses over a filtered capture, run by `scaptool -c NAME [ARGS] [FILTER]`.

A chisel is a plain function registered with @chisel: its name, category, description and
arguments (for -cl, -i and sysdig's rules of argument parsing) and a function that receives a
ChiselRun (the capture, the user's filter, the arguments, helpers to select events and
compute fields, the output stream and whether to colour it).

    from scaptool import chisel, Arg

    @chisel("count_opens", "Misc", "Count the files each process opened",
            args=[Arg("min", "int", "only show processes with at least this many", True)])
    def count_opens(run):
        rows = run.select("evt.type in (open, openat) and evt.dir=<")
        ...

`scaptool -c path/to/mine.py` loads a file like that and runs the chisel it defines.

A chisel like that one is called once, with the whole capture. One registered with
`chunked=True` is called once per chunk of the capture instead (query.chunks: a bounded
number of events, with sysdig's state carried from the chunks before), so that memory does not
grow with the capture and its output starts after the first chunk. Its ChiselRun then holds
that chunk, and says where the chunk is in the reading:

    run.first / run.final  the capture's first / last chunk (both for a whole capture);
    run.state              a dict kept from one chunk of a capture to the next (what the
                           chisel has counted so far, a request waiting for its response);
    run.carry              a dict kept across the captures of one command (sysdig's tables
                           count the captures read before);
    run.stop()             read no further of this capture (the chisel has what it needs);
    run.read_again()       the capture read again from its start, an EventData per chunk
                           (for what needs events of chunks given up already); a chisel
                           that calls it registers with rereads=True (or a function of its
                           arguments), and from a pipe, which cannot be read twice, it is
                           called once with the whole capture instead.

Its helpers (select, mask, fields, texts...) see the chunk's own events only; rows are the
chunk's, and run.reading_rows(rows) gives their positions in the whole reading. A table is
built from what each chunk adds to run.state and printed when run.final is true:

    @chisel("count_opens", "Misc", "Count the files each process opened", chunked=True)
    def count_opens(run):
        rows = run.select("evt.type in (open, openat) and evt.dir=<")
        counts = run.state.setdefault("counts", {})
        for name in run.texts(rows, ["proc.name"])["proc.name"]:
            counts[name] = counts.get(name, 0) + 1
        if run.final:
            for name, count in sorted(counts.items(), key=lambda kv: -kv[1]):
                run.line(f"{name} {count}")
"""
import importlib
import pathlib
from dataclasses import dataclass, field
from typing import Callable

REGISTRY = {}

# Modules of the chisels that ship with scaptool (each registers its chisels on import).
_BUILTIN_MODULES = ("logs", "io", "tables", "system", "performance", "security", "http",
                    "explain")


@dataclass(frozen=True)
class Arg:
    name: str
    type: str          # string, int, filter, ipv4, ... (shown by -i; "filter" changes parsing)
    description: str
    optional: bool = False


@dataclass(frozen=True)
class Chisel:
    name: str
    category: str
    description: str
    run: Callable
    args: tuple = field(default_factory=tuple)
    details: str = ""   # a longer explanation for -i
    # sysdig prints all this chisel's output once the events are read (a table)
    at_end: bool = False
    # on a terminal, the chisel ends with a line that resets the colours
    resets: bool = False
    # the function is called once per chunk of the capture (see the module's docstring);
    # without it, once with the whole capture
    chunked: bool = False
    # a chunked chisel that reads its capture again (ChiselRun.read_again): from a pipe, which
    # cannot be read twice, it is called once with the whole capture. True, or a function of
    # the arguments (a dict by name) that says whether they make it read again
    rereads: object = False

    def reads_again(self, args):
        """Does the chisel read its capture again, given these arguments?"""
        return bool(self.rereads(args) if callable(self.rereads) else self.rereads)


def chisel(name, category, description, args=(), details="", at_end=False, resets=False,
           chunked=False, rereads=False):
    """Register the decorated function as a chisel."""
    def register(function):
        REGISTRY[name] = Chisel(name, category, description, function, tuple(args), details,
                                at_end, resets, chunked, rereads)
        return function
    return register


class ChiselError(ValueError):
    """A chisel that cannot run as asked (unknown name, bad arguments): one line for the user."""


def load_builtins():
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{module}":
                raise


def find(name):
    """The chisel called `name`, or the one defined by the Python file at that path."""
    if name.endswith(".py") or "/" in name:
        return load_file(name)
    load_builtins()
    if name not in REGISTRY:
        raise ChiselError(f"unknown chisel {name!r} (scaptool -cl lists them)")
    return REGISTRY[name]


def load_file(path):
    """Run a user's chisel file; the chisel it registers (the last one, if several)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ChiselError(f"{path}: no such chisel file")
    before = dict(REGISTRY)
    spec = importlib.util.spec_from_file_location(f"_scaptool_user_chisel_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise ChiselError(f"{path}:{e.lineno}: {e.msg}") from None
    new = [c for n, c in REGISTRY.items() if before.get(n) is not c]
    if not new:
        raise ChiselError(f"{path}: defines no chisel (decorate a function with @chisel)")
    return new[-1]


def listing():
    """-cl: the chisels by category."""
    load_builtins()
    by_category = {}
    for c in sorted(REGISTRY.values(), key=lambda c: (c.category, c.name)):
        by_category.setdefault(c.category, []).append(c)
    out = []
    for category, members in by_category.items():
        title = f"Category: {category}"
        out.append(f"\n{title}\n{'-' * len(title)}\n")
        for c in members:
            if len(c.name) > 15:
                out.append(f"{c.name}\n{'':16}{c.description}\n")
            else:
                out.append(f"{c.name:<16}{c.description}\n")
    out.append("\nUse the -i flag to get detailed information about a specific chisel\n")
    return "".join(out)


def describe(c):
    """-i NAME: what the chisel does and its arguments."""
    out = [f"{c.name:<16}{c.description}\n"]
    if c.details:
        out.append(f"\n{c.details}\n")
    if c.args:
        out.append("Args:\n")
        for a in c.args:
            opt = " (optional)" if a.optional else ""
            out.append(f"[{a.type}] {a.name}{opt} - {a.description}\n")
    else:
        out.append("Args: (none)\n")
    return "".join(out)
