"""The scaptool command line: sysdig's own invocations, plus subcommands of our own.

`scaptool -r trace.scap ...` reads like sysdig; `scaptool info trace.scap` and friends are
subcommands. Arguments that are not a subcommand name go to the default `read` command, so both
styles share one parser. This module only parses arguments, calls the library, and prints.
"""
import gc
import os
import signal
import sys
import warnings

# A command is a short process: the cycle collector, run every 700 allocations by default,
# spent ~25 ms of a filter run on the objects of the imports alone. Collections stay, rarely
# (and `read` freezes what its imports made out of them: cli.read._imports_done).
gc.set_threshold(100_000, 50, 100)


def _single_threaded_blas():
    """Load numpy with its BLAS on one thread. scaptool does no linear algebra, but
    OpenBLAS starts a thread per core when numpy loads, and those threads spin for a while:
    on a 2-core machine they took an eighth of a run's CPU from the scan. The setting is
    read when the library loads, so it is made for that moment only (commands that
    `scaptool capture` runs see the environment they were given)."""
    before = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        if before is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = before


_single_threaded_blas()

import click  # noqa: E402

from scaptool.scap.errors import ScapError, ScapWarning, error_line  # noqa: E402

from . import capture as capture_command  # noqa: E402
from . import info as info_command  # noqa: E402
from . import read as read_command  # noqa: E402
from . import slice as slice_command  # noqa: E402


# The sysdig release whose command line and output scaptool follows (for --version).
SYSDIG_VERSION = "0.29.3"

# The environment variable through which a shell asks for completions (click's protocol).
COMPLETE_VAR = "_SCAPTOOL_COMPLETE"
# ctx.meta key: the default command was put in front of the arguments
DEFAULT_IMPLIED = "scaptool.default_command_implied"


class DefaultGroup(click.Group):
    """A group that hands anything that is not a subcommand to its default command.

    Its help is one page (cli/helppage.py), and its commands may be lazy: those that only
    print something about scaptool itself are imported when named, so that a read of a
    capture imports nothing for them."""

    default_command = "read"
    # name -> module (in this package) defining a click command of that name
    lazy_commands = {"completion": "completion", "explain": "explain", "export": "export",
                      "merge": "merge", "plot": "plot", "sql": "sql"}

    def list_commands(self, ctx):
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx, name):
        if name not in self.commands and name in self.lazy_commands:
            import importlib
            module = importlib.import_module(f"{__package__}.{self.lazy_commands[name]}")
            self.add_command(getattr(module, name))
        return self.commands.get(name)

    def parse_args(self, ctx, args):
        if args and args[0] in ("--version", "-V"):
            return super().parse_args(ctx, args[:1])  # the version, whatever follows
        known = args and (args[0] in self.commands or args[0] in self.lazy_commands)
        if not known or args[0] == self.default_command:
            if args and args[0] in ("--help", "-h") and len(args) == 1:
                return super().parse_args(ctx, args)
            if not args or args[0] != self.default_command:
                args = [self.default_command, *args]
                # (for completion: where a command name could have stood, offer those too)
                ctx.meta[DEFAULT_IMPLIED] = True
        return super().parse_args(ctx, args)

    def format_help(self, ctx, formatter):
        from . import helppage
        helppage.format_group_help(self, ctx, formatter)


def _print_version(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version
    try:
        mine = version("scaptool")
    except PackageNotFoundError:  # run from a checkout that was never installed
        mine = "unknown (not installed)"
    # line 1 as sysdig's own (`sysdig version 0.29.3`), for scripts that read it
    click.echo(f"scaptool version {mine}\n"
               f"(reads captures and prints them as sysdig version {SYSDIG_VERSION} does)")
    ctx.exit()


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Print scaptool's version and exit.")
def cli():
    """Read, query, slice and write the .scap system-call captures of sysdig and Falco.

    Without a command, the arguments are sysdig's: `scaptool -r FILE [options] [filter]`
    reads FILE and prints its events, or the events that match the filter (the sysdig/Falco
    filter language), as sysdig 0.29.3 prints them; -c runs a chisel on them instead.
    Without -r, the same options read this machine live (as root, through a libbpf helper
    built on first use) until Ctrl+C, -M or -n. The other commands do what sysdig has no
    option for.
    """


cli.add_command(read_command.read)
cli.add_command(info_command.info)
cli.add_command(slice_command.slice_command)
cli.add_command(capture_command.capture)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, ScapWarning):
        click.echo(f"scaptool: warning: {message}", err=True)
    else:
        click.echo(f"scaptool: warning: {category.__name__}: {message}", err=True)


def main(argv=None):
    warnings.showwarning = _show_warning
    if os.environ.get(COMPLETE_VAR):
        # a shell asking for completions: teach the options what their values are first
        from . import completion
        completion.attach(cli)
    try:
        cli.main(args=argv, prog_name="scaptool", complete_var=COMPLETE_VAR,
                 standalone_mode=False)
    except ScapError as e:
        click.echo(f"scaptool: {error_line(e)}", err=True)
        sys.exit(1)
    except ValueError as e:
        # bad filters, formats and chisel arguments (query.filter.FilterError,
        # query.format.FormatError, chisels.ChiselError)
        if type(e).__name__ not in ("FilterError", "FormatError", "ChiselError"):
            raise
        click.echo(f"scaptool: {error_line(e)}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): not an error worth a message
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as e:
        click.echo(f"scaptool: {error_line(e.filename or '')}: {e.strerror or e}", err=True)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - a bug of ours: one line, the details on request
        if os.environ.get("SCAPTOOL_DEBUG"):
            raise
        click.echo(f"scaptool: internal error: {type(e).__name__}: {e} "
                   "(SCAPTOOL_DEBUG=1 shows where; please report it)", err=True)
        sys.exit(3)


# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _keep_freed_memory():
    """Let glibc's malloc keep freed memory for reuse rather than give it back at once.

    By default every block over 128 KiB is mapped on allocation and unmapped on release, so
    each of numpy's large temporaries page-faults anew: reading a 5-million-event capture
    made some 40,000 such faults, a tenth of a second of the run. A process-wide setting,
    so the command line makes it, not the library. Elsewhere than glibc: nothing to do."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # the largest glibc accepts
        libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20)
    except (OSError, AttributeError):
        pass


def run():
    """The console script: main(), then leave without tearing down the interpreter.

    Freeing millions of objects and arrays one by one at exit costs a tenth of a second on a
    big capture, for nothing: output is flushed and files are closed (writers renamed their
    results already), so the process ends at once."""
    code = 0
    _keep_freed_memory()
    # Output into a pipe whose reader has gone (`scaptool -r big.scap | head -1`) ends the
    # process at once and quietly, killed by SIGPIPE, as it ends sysdig (status 141 in a
    # shell): Python ignores SIGPIPE and would raise, then Click would exit with status 1.
    # Nothing is lost: an output file being written has no name until it is complete.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            click.echo(e.code, err=True)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 0
    os._exit(code)


if __name__ == "__main__":
    run()
