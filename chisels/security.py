"""Security chisels: what users do interactively (spy_users) and which login shells ran
what (list_login_shells). Both read a chunk at a time: spy_users prints each chunk's lines and
keeps the process tree it has learnt; list_login_shells keeps the last matching session."""
from . import Arg, chisel
from .io import chisel_rows, end_with_reset, extend, lua_tonumber, palette

# How far up the ancestors spy_users looks for a shell (sysdig's limit).
MAX_ANCESTORS = 16

_SPY_USERS_FILTER = ("((evt.type=execve and evt.dir=<) or (evt.type=chdir and evt.dir=< and "
                     "proc.name contains sh and not proc.name contains sshd)) "
                     "and evt.failed=false")


class _Ancestors:
    """proc.aname[j] / proc.apid[j] at the chisel's rows, computed once per level asked."""

    def __init__(self, run, rows):
        self.run, self.rows = run, rows
        self.levels = {}

    def at(self, level, i):
        if level not in self.levels:
            names = [f"proc.aname[{level}]", f"proc.apid[{level}]"]
            frame = self.run.fields(self.rows, names)
            self.levels[level] = (frame[names[0]].to_list(), frame[names[1]].to_list())
        names, pids = self.levels[level]
        return names[i], pids[i]


@chisel("spy_users", "Security",
        "Show the commands and directory changes of interactive users",
        args=(Arg("max_depth", "int", "the deepest level of the process tree under the shell "
                  "to show", True),
              Arg("disable_color", "string", "the word disable_color turns colours off",
                  True)),
        details="Every command run (successful execve) by a process with a shell among its "
                "ancestors, and every directory change of a shell, indented by how deep the "
                "process is under its shell: `shell-pid time user) command args` or "
                "`shell-pid time user) cd directory`.", chunked=True)
def spy_users(run):
    colors = palette(run)
    max_depth = -1
    if run.arg("max_depth") is not None:
        max_depth = lua_tonumber(run.arg("max_depth"))
        if max_depth is None:
            run.line("Input max_depth must be a number.")
            run.stop()
            return
    rows = chisel_rows(run, _SPY_USERS_FILTER)
    names = ["evt.type", "user.name", "evt.time.s", "proc.pid", "proc.ppid", "proc.exe",
             "proc.args", "evt.arg.path"]
    texts = run.texts(rows, names)
    where = run.containers(rows) if run.print_container else None
    pids = run.fields(rows, ["proc.pid", "proc.ppid"])
    pid_values, ppid_values = pids["proc.pid"].to_list(), pids["proc.ppid"].to_list()
    ancestors = _Ancestors(run, rows)
    # pid -> (depth, pid of its shell), or (-1,) when no shell is above it; from one chunk
    # to the next
    tree = run.state.setdefault("tree", {})
    # sysdig's chisel shifts its table of ancestor fields by one at every chdir it sees (a Lua
    # table.insert at index 0): the j-th lookup then reads level j - shifts, and nothing at
    # all for j < shifts. Kept, since it decides which commands are shown.
    shifts = run.state.get("shifts", 0)
    out = []
    for i in range(len(rows)):
        is_chdir = texts["evt.type"][i] == "chdir"
        pid, ppid = pid_values[i], ppid_values[i]
        correction = 1
        if is_chdir:
            ppid = pid
            shifts += 1
            correction = 0
        user = texts["user.name"][i]
        if user is None:
            user = "<NA>"
        if ppid not in tree:
            tree[ppid] = (-1,)
            for j in range(1, MAX_ANCESTORS + 1):
                level = j - shifts
                name, apid = ancestors.at(level, i) if level >= 0 else (None, None)
                if name is None:
                    if apid is None:
                        break  # no shell above: hide this process and its children
                elif len(name) >= 2 and name.endswith("sh"):
                    tree[ppid] = (j - 1 if apid in tree else 0, apid)
        if tree[ppid][0] == -1:
            continue
        if pid not in tree:
            tree[pid] = (1 + tree[ppid][0], tree[ppid][1])
        depth, shell = tree[pid]
        if max_depth != -1 and depth - correction > max_depth:
            continue
        color = ""
        if where is not None:
            # with -pc: the user's container after its name, blue unless on the host
            container = where[i][1]
            user = f"{user}@{container}"
            color = colors.green if container == "host" else colors.blue
        if is_chdir:
            out.append(f"{color}{extend('', 4 * depth)}{_lua_number(shell)} "
                       f"{texts['evt.time.s'][i]} {user}) cd {texts['evt.arg.path'][i]}")
        else:
            # (sysdig's chisel indents these lines by 4 per level with -pc, by 3 without)
            indent = (4 if run.print_container else 3) * (depth - 1)
            out.append(f"{color}{extend('', indent)}{_lua_number(shell)} "
                       f"{texts['evt.time.s'][i]} {user}) {texts['proc.exe'][i]} "
                       f"{texts['proc.args'][i]}")
    run.state["shifts"] = shifts
    end_with_reset(run, out, colors)


def _lua_number(value):
    """A number as Lua's tostring writes it (integers without a decimal point)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- list_login_shells ---------------------------------------------------------------------------

_LUA_CLASSES = {"a": "A-Za-z", "c": "\\x00-\\x1f\\x7f", "d": "0-9", "g": "!-~",
                "l": "a-z", "p": "!-/:-@\\[-`{-~", "s": " \\t\\n\\r\\f\\v", "u": "A-Z",
                "w": "0-9A-Za-z", "x": "0-9A-Fa-f"}


def lua_pattern(pattern):
    """A Python regex for a Lua pattern (string.find's syntax: %a-style classes, . [] ^ $,
    the * + - ? repetitions), so that the chisel's arguments match as in sysdig."""
    import re
    out, i, n = [], 0, len(pattern)

    def single(i):
        """(regex of one Lua single-character class at i, next index)."""
        c = pattern[i]
        if c == "%" and i + 1 < n:
            k = pattern[i + 1]
            if k.lower() in _LUA_CLASSES:
                cls = _LUA_CLASSES[k.lower()]
                return (f"[^{cls}]" if k.isupper() else f"[{cls}]"), i + 2
            return re.escape(k), i + 2
        if c == ".":
            return "[\\s\\S]", i + 1
        if c == "[":
            j, body = i + 1, []
            if j < n and pattern[j] == "^":
                body.append("^")
                j += 1
            first = True
            while j < n and (pattern[j] != "]" or first):
                first = False
                if pattern[j] == "%" and j + 1 < n:
                    k = pattern[j + 1]
                    body.append(_LUA_CLASSES.get(k.lower(), re.escape(k))
                                if k.lower() in _LUA_CLASSES and k.islower()
                                else re.escape(k))
                    j += 2
                elif j + 2 < n and pattern[j + 1] == "-" and pattern[j + 2] != "]":
                    body.append(re.escape(pattern[j]) + "-" + re.escape(pattern[j + 2]))
                    j += 3
                else:
                    body.append(re.escape(pattern[j]))
                    j += 1
            return "[" + "".join(body) + "]", j + 1
        return re.escape(c), i + 1

    if pattern.startswith("^"):
        out.append("^")
        i = 1
    while i < n:
        if pattern[i] == "$" and i == n - 1:
            out.append("$")
            break
        piece, i = single(i)
        if i < n and pattern[i] in "*+?":
            piece += pattern[i]
            i += 1
        elif i < n and pattern[i] == "-":
            piece += "*?"
            i += 1
        out.append(piece)
    try:
        return re.compile("".join(out))
    except re.error:
        return re.compile(re.escape(pattern))


@chisel("list_login_shells", "Security", "List the login shell sessions",
        args=(Arg("command", "string", "only the shells that ran a command whose name "
                  "contains this (a Lua pattern; * for any)", True),
              Arg("arguments", "string", "only the shells that ran a command whose arguments "
                  "contain this (a Lua pattern)", True)),
        details="The ids (proc.loginshellid, the pid of the oldest shell above a process) of "
                "the login sessions that ran commands, optionally only those that ran a given "
                "command; spy_users can then be filtered on one of them. As in sysdig, only "
                "the last matching session is kept, and it is printed once per piece of "
                "information remembered about it (id, container name and container id).",
        at_end=True, chunked=True)
def list_login_shells(run):
    command = run.arg("command")
    if command == "*":
        command = None
    arguments = run.arg("arguments")
    rows = chisel_rows(run, "evt.type=execve")
    frame = run.fields(rows, ["proc.loginshellid"])
    texts = run.texts(rows, ["evt.arg.exe", "evt.arg.args"])
    command_re = lua_pattern(command) if command else None
    arguments_re = lua_pattern(arguments) if arguments else None
    last = last_row = None
    for i, sid in enumerate(frame["proc.loginshellid"].to_list()):
        exe, args = texts["evt.arg.exe"][i], texts["evt.arg.args"][i]
        if sid is None or exe is None:
            continue
        if command_re is not None and not command_re.search(exe):
            continue
        if arguments_re is not None and args is not None and not arguments_re.search(args):
            continue
        last, last_row = sid, rows[i]
    if last is not None:
        # sysdig keeps the id, the container name and the container id, and prints the id
        # once for each of them (all three are set: 'host' outside containers); with -pc,
        # followed by the container's name and id
        line = _lua_number(last)
        if run.print_container:
            cid, cname = run.containers([last_row])[0]
            line += f" {cname} {cid}"
        run.state["line"] = line   # the last one of the chunks so far
    if not run.final:
        return
    run.line(f"Shells containing {command}:" if command else "All shells:")
    if "line" in run.state:
        for _ in range(3):
            run.line(run.state["line"])
