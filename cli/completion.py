"""Shell completion: `scaptool completion bash|zsh|fish`, and what the shell is offered.

The protocol is click's: the script a shell sources runs `scaptool` again with
_SCAPTOOL_COMPLETE=<shell>_complete and the words typed so far, and prints the candidates.
This module is loaded only then (and for the `completion` command): main() calls attach()
before click answers, so that a read of a capture never imports it, nor the field catalog
and the chisels it looks at.

What is offered: chisel names after -c and -i, field names in filters (at the start of a
filter word; after a field, the operators) and after % in -p formats, files after -r, -w
and for the commands' capture arguments, and at the first word the command names along
with what `read` takes there.
"""
import re

import click
from click.shell_completion import CompletionItem, get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell):
    """Print the shell completion script for bash, zsh or fish.

    Load it in the shell's start-up file: eval "$(scaptool completion bash)" in ~/.bashrc,
    eval "$(scaptool completion zsh)" in ~/.zshrc, or scaptool completion fish >
    ~/.config/fish/completions/scaptool.fish. It completes chisel names after -c and -i,
    field names in filters and -p formats, file names and options.
    """
    from .main import COMPLETE_VAR
    ctx = click.get_current_context()
    root = ctx.find_root()
    script = get_completion_class(shell)(root.command, {}, root.info_name, COMPLETE_VAR)
    click.echo(script.source(), nl=False)


def attach(group):
    """Give the parameters whose values we can name a way to complete them (COMPLETERS, at
    the end). click asks each parameter's shell_complete; those are set here rather than in
    the declarations so that the commands' modules need not load this one."""
    for command_name in group.list_commands(None):
        command = group.get_command(None, command_name)
        for param in command.params:
            completer = COMPLETERS.get((command_name, param.name))
            if completer is not None:
                param.shell_complete = _bound(completer, param)
    read = group.get_command(None, group.default_command)
    read.shell_complete = _bound(_read_word, read, read.shell_complete)


def _bound(function, *leading):
    """function(*leading, ctx, incomplete), shaped as the shell_complete method it replaces."""
    def complete(ctx, incomplete):
        return function(*leading, ctx, incomplete)
    return complete


def _first_word(ctx):
    """Is the word being completed the first after `scaptool`? There, where a command name
    could stand, those are offered too; the default command was put in front by the group."""
    from click.core import ParameterSource

    from .main import DEFAULT_IMPLIED
    return bool(ctx.meta.get(DEFAULT_IMPLIED)) and ctx.parent is not None and all(
        ctx.get_parameter_source(p.name) in (None, ParameterSource.DEFAULT)
        for p in ctx.command.params)


def _group_items(ctx, incomplete):
    """At the first word: the group's command names, or with a leading -, its options
    (-V, --version; -h and --help the read command has too)."""
    if not _first_word(ctx):
        return []
    group = ctx.parent
    return [item for item in group.command.shell_complete(group, incomplete)
            if item.value not in ("-h", "--help")]


def _files(param, ctx, incomplete):
    return [CompletionItem(incomplete, type="file")]


def _chisels(param, ctx, incomplete):
    """The chisels' names; a path (for a chisel file of one's own) completes as a file."""
    if "/" in incomplete or incomplete.startswith((".", "~")):
        return _files(param, ctx, incomplete)
    from scaptool import chisels
    chisels.load_builtins()
    return [CompletionItem(name, help=chisel.description)
            for name, chisel in sorted(chisels.REGISTRY.items()) if name.startswith(incomplete)]


def _read_word(read, own, ctx, incomplete):
    """The read command's own completions (option names), plus the value of a short option
    written in the same word, as sysdig users do: -p%proc.name, -cspy_logs."""
    attached = {"-p": "fmt", "-c": "chisel_name", "-i": "chisel_info"}
    option = attached.get(incomplete[:2])
    if option and len(incomplete) > 2:
        param = next(p for p in read.params if p.name == option)
        return [CompletionItem(incomplete[:2] + item.value, help=item.help)
                for item in param.shell_complete(ctx, incomplete[2:]) if item.type == "plain"]
    return _group_items(ctx, incomplete) + own(ctx, incomplete)


def _fields():
    from . import polars_import
    polars_import.load()  # the catalog imports Polars: without asyncio, as commands do
    from scaptool.query.fields import FIELDS
    return FIELDS


# % and an optional width (%10proc.name), as in a -p format
_FORMAT_FIELD = re.compile(r"%(\d*)([A-Za-z0-9_.]*)$")


def _format(param, ctx, incomplete):
    """-p: the field being typed after the last %."""
    match = _FORMAT_FIELD.search(incomplete)
    if match is None:
        return []
    head = incomplete[:match.start(2)]
    return [CompletionItem(head + name, help=definition.description)
            for name, definition in sorted(_fields().items())
            if name.startswith(match.group(2))]


def _operators():
    from scaptool.query.filter.grammar import LIST_OPS, NUM_OPS, WORD_STR_OPS
    return ("=", "!=", *NUM_OPS, *WORD_STR_OPS, *LIST_OPS, "exists")


def _filter(param, ctx, incomplete):
    """A filter word: a field name where one begins; after a field, the operators.

    Words are those the shell gives: `proc.name=php and fd.na` typed unquoted is several,
    typed inside quotes may be one (zsh), so the text of the current word before its last
    blank counts as the words before it."""
    commands = _group_items(ctx, incomplete)
    before = list(ctx.params.get("filter_words") or ())
    head, blank, last = incomplete.rpartition(" ")
    if blank:
        before += head.split()
        head += blank
    previous = before[-1] if before else ""
    fields = _fields()
    if _is_field(previous, fields):
        return [CompletionItem(head + op) for op in _operators() if op.startswith(last)]
    if previous in _operators() and previous != "exists":
        return []  # a value: not ours to guess
    # what may open a word before the field: parentheses and negation
    opening = re.match(r"[(!]*", last).group(0)
    word = last[len(opening):]
    if not re.fullmatch(r"[A-Za-z0-9_.]*", word):
        return []  # an operator or a value is being typed: nothing to offer
    items = commands + [CompletionItem(head + opening + name, help=definition.description)
                        for name, definition in sorted(fields.items()) if name.startswith(word)]
    if word and not opening:
        items += [CompletionItem(head + keyword) for keyword in ("and", "or", "not")
                  if keyword.startswith(word)]
    return items


def _is_field(word, fields):
    """Is this word a field name (with its argument, for those that take one)?"""
    name = word.lstrip("(!").split("[", 1)[0]
    if name in fields:
        return True
    # evt.arg.fd, proc.aname.2 ...: a field whose argument follows a dot
    stem = name.rpartition(".")[0]
    return stem in fields and fields[stem].arg != "none"


# (command, parameter name) -> what completes its values
COMPLETERS = {
    ("read", "paths"): _files, ("read", "out"): _files,
    ("read", "chisel_name"): _chisels, ("read", "chisel_info"): _chisels,
    ("read", "fmt"): _format, ("read", "filter_words"): _filter,
    ("info", "path"): _files, ("slice", "path"): _files, ("slice", "out"): _files,
    ("capture", "out"): _files,
}
