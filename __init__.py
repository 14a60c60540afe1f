"""scaptool: read, query, slice and write the .scap system-call captures of sysdig and Falco.

    import scaptool

    with scaptool.open("trace.scap") as cap:
        scaptool.frame(cap, ["proc.name", "fd.name"], "evt.type=open")

frame/lazy_frame (and Capture.events/lazy_events) are eager/lazy twins; query/api.py tells
more. A chisel file of your own starts with `from scaptool import chisel, Arg`.

The names below load on first use, so that `import scaptool` (and every command, which starts
with it) costs nothing until they are asked for.
"""
# public name -> (module inside the package, attribute)
_PUBLIC = {
    "open": ("scap", "open"),
    "Capture": ("scap", "Capture"),
    "write_capture": ("scap", "write_capture"),
    "frame": ("query.api", "frame"),
    "lazy_frame": ("query.api", "lazy_frame"),
    "batches": ("query.api", "batches"),
    "filter_expr": ("query.api", "filter_expr"),
    "filter_fields": ("query.api", "filter_fields"),
    "text": ("query.api", "text"),
    "fields": ("query.api", "fields"),
    "export": ("query.export", "export"),
    "sql": ("query.sql", "sql"),
    "window_mask": ("query.windows", "window_mask"),
    "chisel": ("chisels", "chisel"),
    "Arg": ("chisels", "Arg"),
    "run_chisel": ("chisels.run", "run_chisel"),
    "ScapError": ("scap.errors", "ScapError"),
    "NotAScapError": ("scap.errors", "NotAScapError"),
    "UnsupportedVersionError": ("scap.errors", "UnsupportedVersionError"),
    "CorruptBlockError": ("scap.errors", "CorruptBlockError"),
    "TruncatedError": ("scap.errors", "TruncatedError"),
    "ScapWarning": ("scap.errors", "ScapWarning"),
    "FilterError": ("query.filter", "FilterError"),
    "UnknownFieldError": ("query.fields", "UnknownFieldError"),
    "ChiselError": ("chisels", "ChiselError"),
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name == "__version__":  # pyproject.toml holds it; read from the installed metadata
        from importlib.metadata import version
        return version("scaptool")
    if name not in _PUBLIC:
        raise AttributeError(f"module 'scaptool' has no attribute {name!r}")
    import importlib
    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
