"""`scaptool --help`: sysdig's options and scaptool's commands on one page.

The group's own help would list only the command names, while what a sysdig user looks for
first is -r, -c, -p and the rest, which belong to the default command, `read`. So the page is
assembled from the click objects themselves (the read command's options with their help,
the group's options, each command's one-line description), and the man page
(cli/manpage.py) is made from the same objects: one source for every text. Loaded only when
help is asked for.
"""
import click

# (what it does, the command): shown at the end of --help and in the man page's EXAMPLES
EXAMPLES = (
    ("Print every event of a capture", "scaptool -r trace.scap"),
    ("Print the files cat opened",
     'scaptool -r trace.scap -p "%evt.arg.name" proc.name=cat and evt.type=open'),
    ("Print the events of nginx as JSON, data buffers whole",
     "scaptool -r trace.scap -j -v proc.name=nginx"),
    ("Show the text read and written on port 3306", "scaptool -r trace.scap -A fd.sport=3306"),
    ("Count the events by type", "scaptool -r trace.scap -S -q"),
    ("Write the events of process 812 to a capture of their own",
     "scaptool -r trace.scap -w pid812.scap proc.pid=812"),
    ("List the chisels, then run one", "scaptool -cl; scaptool -r trace.scap -c spy_logs"),
    ("Tell what the thread behind each matching log line did around it",
     'scaptool -r trace.scap -c explain "evt.buffer contains error"'),
    ("Show every line written to a log file on this machine, as it is written (root)",
     "scaptool -c spy_logs"),
    ("Record this machine's syslog messages, with what names them, to a capture (root)",
     "scaptool -F -w trace.scap evt.is_syslog=true"),
    ("Describe a capture", "scaptool info trace.scap"),
    ("Keep 2 s from 10 s after the start", "scaptool slice trace.scap -w part.scap "
     "--from 10s --to 12s"),
    ("Write the writes of a capture as a Parquet table",
     "scaptool export trace.scap -o writes.parquet -f evt.time,proc.name,fd.name,evt.rawres "
     "evt.type=write"),
    ("Count the events per process in SQL",
     "scaptool sql 'SELECT \"proc.name\", count(*) FROM events GROUP BY 1' trace.scap"),
    ("Draw what each thread did around an error, as a page",
     "scaptool plot timeline trace.scap -o story.html --around \"evt.buffer contains error\""),
)

USAGE = (("scaptool", "[-r FILE] [OPTIONS] [FILTER]..."), ("scaptool", "COMMAND [ARGS]..."))
# (without -r, the default command reads this machine live: cli/live.py)


def read_context(group, ctx):
    """A context for the default command, under the group's: what its help records need."""
    return click.Context(group.get_command(ctx, group.default_command),
                         info_name=group.default_command, parent=ctx)


def option_records(group, ctx):
    """(options, help) rows: the default command's options as it declares them, then the
    group's own (-V, -h)."""
    read = group.get_command(ctx, group.default_command)
    sub = read_context(group, ctx)
    rows = [p.get_help_record(sub) for p in read.params if isinstance(p, click.Option)]
    rows += [p.get_help_record(ctx) for p in group.get_params(ctx)]
    return [row for row in rows if row]


def commands(group, ctx):
    """(name, command) for each command to show, the default command first."""
    names = sorted(group.list_commands(ctx), key=lambda name: name != group.default_command)
    found = ((name, group.get_command(ctx, name)) for name in names)
    return [(name, command) for name, command in found if command and not command.hidden]


def command_records(group, ctx, limit=200):
    """(name, first sentence of its help) for each command, the default command first."""
    rows = []
    for name, command in commands(group, ctx):
        text = command.get_short_help_str(limit)
        if name == group.default_command:
            text = f"(the default) {text}"
        rows.append((name, text))
    return rows


def format_group_help(group, ctx, formatter):
    prog = ctx.command_path
    for i, (_, args) in enumerate(USAGE):
        formatter.write_usage(prog, args, prefix=None if i == 0 else " " * len("Usage: "))
    with formatter.indentation():
        for paragraph in (group.help or "").split("\n\n"):
            formatter.write_paragraph()
            formatter.write_text(" ".join(paragraph.split()))
    with formatter.section("Options"):
        formatter.write_dl(option_records(group, ctx))
    with formatter.section("Commands"):
        formatter.write_dl(command_records(group, ctx))
    with formatter.section("Examples"):
        for what, command in EXAMPLES:
            formatter.write_text(what)
            # a command line is not wrapped: it is meant to be copied
            formatter.write(f"{'':>{formatter.current_indent + 2}}$ {command}\n")
    formatter.write_paragraph()
    formatter.write_text(f"'{prog} COMMAND --help' shows a command's options; 'man scaptool' "
                         f"the manual; '{prog} completion bash|zsh|fish' a shell's completion "
                         "script.")

