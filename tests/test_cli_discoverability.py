"""What a new user finds first: --version, the one-page --help, shell completion, the man page.

Completion is tested through click's real protocol: scaptool run in a subprocess with
_SCAPTOOL_COMPLETE and the words a shell would pass, as the sourced scripts do.
"""
import importlib.metadata
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import click
import pytest

from conftest import require_tool
from scaptool.cli import manpage
from scaptool.cli.main import cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "php-database-error.scap"
ENV = dict(os.environ, TZ="UTC", LC_ALL="C")
ENV.pop("_SCAPTOOL_COMPLETE", None)
READ = cli.commands["read"]
SPIES = {"spy_file", "spy_ip", "spy_logs", "spy_port", "spy_syslog", "spy_users"}


def scaptool(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scaptool", *map(str, args)],
                          capture_output=True, text=True, env=env or ENV)


def squeezed(text):
    """Text without its blanks: help texts are wrapped (hyphens included) where they are shown."""
    return re.sub(r"\s+", "", text)


# --version

@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    r = scaptool(flag)
    assert r.returncode == 0 and r.stderr == ""
    first, *rest = r.stdout.splitlines()
    assert first == f"scaptool version {importlib.metadata.version('scaptool')}"
    assert "sysdig version 0.29.3" in " ".join(rest)


def test_version_comes_before_anything_else():
    r = scaptool("--version", "-r", "/nonexistent.scap", "proc.name=x")
    assert r.returncode == 0 and r.stdout.startswith("scaptool version ")


@pytest.mark.sysdig
def test_version_line_has_sysdigs_shape():
    sysdig = require_tool("sysdig")
    theirs = subprocess.run([sysdig, "--version"], capture_output=True, text=True, env=ENV)
    shape = re.compile(r"(\w+) version (\d+\.\d+\.\d+)")
    assert shape.fullmatch(theirs.stdout.splitlines()[0]).group(1) == "sysdig"
    assert shape.fullmatch(scaptool("--version").stdout.splitlines()[0]).group(1) == "scaptool"


# --help

@pytest.fixture(scope="module")
def help_page():
    r = scaptool("--help")
    assert r.returncode == 0 and r.stderr == ""
    assert scaptool("-h").stdout == r.stdout
    return r.stdout


def test_help_has_both_usages(help_page):
    assert help_page.startswith("Usage: scaptool [-r FILE] [OPTIONS] [FILTER]...\n"
                                "       scaptool COMMAND [ARGS]...\n")


def test_help_shows_every_read_option_with_its_own_help(help_page):
    """The page lists the read command's options as read declares them: one source."""
    page = squeezed(help_page)
    options = [p for p in READ.params if isinstance(p, click.Option)]
    assert len(options) >= 18
    for option in options:
        for name in option.opts:
            assert re.search(rf"(^|[\s,]){re.escape(name)}([\s,]|$)", help_page, re.M), name
        assert squeezed(option.help) in page, option.name
    for name in ("-r", "-c", "-p", "-w", "-j", "-A", "-S", "-V", "--version", "-h"):
        assert re.search(rf"^\s+{re.escape(name)}\b", help_page, re.M) or \
            f", {name}" in help_page, name


def test_help_lists_the_commands_with_their_descriptions(help_page):
    commands = help_page.split("\nCommands:\n", 1)[1]
    for name in ("read", "info", "slice", "capture", "completion"):
        command = cli.get_command(None, name)
        first_sentence = command.get_short_help_str(200)
        assert re.search(rf"^  {name}\s", commands, re.M), name
        assert squeezed(first_sentence) in squeezed(commands), name
    examples = help_page.split("\nExamples:\n", 1)[1]
    assert "\n    $ scaptool -r trace.scap\n" in examples and "-c spy_logs" in examples


@pytest.mark.parametrize("command, usage", [
    ("read", "Usage: scaptool read [OPTIONS] [FILTER]..."),
    ("info", "Usage: scaptool info [OPTIONS] FILE"),
    ("slice", "Usage: scaptool slice [OPTIONS] IN"),
    ("capture", "Usage: scaptool capture [OPTIONS] [FILTER]... [-- COMMAND ARGS...]"),
    ("completion", "Usage: scaptool completion [OPTIONS] {bash|zsh|fish}"),
])
def test_commands_keep_their_own_help(command, usage):
    r = scaptool(command, "--help")
    assert r.returncode == 0 and r.stdout.startswith(usage + "\n")


def test_help_among_read_options_is_reads():
    r = scaptool("-r", FIXTURE, "-h")
    assert r.returncode == 0 and r.stdout.startswith("Usage: scaptool read ")


def test_reading_loads_none_of_it():
    """The cold start is benchmarked: help, completion and the man page load only when asked."""
    code = ("import sys\n"
            "from scaptool.cli.main import main\n"
            "try:\n"
            f"    main(['-r', {str(FIXTURE)!r}, '-q', 'proc.name=php'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('scaptool.cli')))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    loaded = eval(r.stdout)
    assert not {"scaptool.cli.completion", "scaptool.cli.helppage",
                "scaptool.cli.manpage"} & set(loaded), loaded


# completion

def complete(words, shell="bash", line=None):
    """What scaptool answers a shell completing the last of `words` (a list: the words before
    the one being completed, then that one, possibly empty). `line`: the command line as the
    shell passes it, when it is not those words joined (an open quote)."""
    line = line or " ".join(["scaptool", *words])
    environ = dict(ENV, _SCAPTOOL_COMPLETE=f"{shell}_complete", COMP_WORDS=line)
    environ["COMP_CWORD"] = words[-1] if shell == "fish" else str(len(words))
    r = subprocess.run([sys.executable, "-m", "scaptool"], capture_output=True, text=True,
                       env=environ, cwd=ROOT)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout


def bash_values(words, kind="plain"):
    lines = complete(words).splitlines()
    return [line.split(",", 1)[1] for line in lines if line.startswith(kind + ",")]


def test_every_completer_has_its_parameter():
    """A renamed parameter would silently lose its completion."""
    from scaptool.cli.completion import COMPLETERS
    for command, name in COMPLETERS:
        assert name in {p.name for p in cli.get_command(None, command).params}, (command, name)


def test_chisel_names_after_c():
    assert set(bash_values(["-c", "sp"])) == SPIES
    assert set(bash_values(["-r", "x.scap", "--chisel", "spy_"])) == SPIES


def test_chisel_names_after_i_and_in_the_same_word():
    assert bash_values(["-i", "ls"]) == ["lsof"]
    assert set(bash_values(["-csp"])) == {"-c" + name for name in SPIES}


def test_a_chisel_file_completes_as_a_file():
    assert complete(["-c", "./mine"]).splitlines() == ["file,./mine"]


def test_field_names_in_a_filter():
    assert bash_values(["-r", "f.scap", "proc.na"]) == ["proc.name"]
    fd = bash_values(["-r", "f.scap", "proc.name=php", "and", "fd.na"])
    assert fd == ["fd.name", "fd.name_changed"]
    assert bash_values(["-r", "f.scap", "(fd.sp"]) == ["(fd.sport", "(fd.sproto"]
    every = bash_values(["-r", "f.scap", ""])
    assert {"evt.type", "proc.name", "fd.name", "evt.buffer"} <= set(every)


def test_operators_after_a_field_and_keywords_between_conditions():
    assert bash_values(["-r", "f.scap", "evt.buffer", "con"]) == ["contains"]
    operators = bash_values(["-r", "f.scap", "evt.arg.fd", ""])
    assert {"=", "!=", "contains", "in", "exists", "startswith"} <= set(operators)
    assert bash_values(["-r", "f.scap", "proc.name", "=", "ph"]) == []
    assert bash_values(["-r", "f.scap", "proc.name", "=", "php", "a"]) == ["and"]


def test_fields_in_a_format():
    assert bash_values(["-p", "%proc.na"]) == ["%proc.name"]
    assert bash_values(["-p%proc.na"]) == ["-p%proc.name"]
    # zsh passes a word that is being quoted with its quote: the field after the last %
    quoted = complete(["-p", "%evt.num %10proc.na"], shell="zsh",
                      line='scaptool -p "%evt.num %10proc.na').splitlines()
    assert quoted[:2] == ["plain", "%evt.num %10proc.name"]


def test_files_after_r_and_for_commands():
    assert complete(["-r", "fix"]).splitlines() == ["file,fix"]
    assert complete(["-r", "a.scap", "-w", ""]).splitlines() == ["file,"]
    assert complete(["info", "fix"]).splitlines() == ["file,fix"]
    assert complete(["slice", "a.scap", "-w", "o"]).splitlines() == ["file,o"]


def test_first_word_offers_commands_and_options():
    assert bash_values(["in"]) == ["info"]
    first = bash_values([""])
    assert {"read", "info", "slice", "capture", "completion", "proc.name"} <= set(first)
    options = bash_values(["-"])
    assert {"-r", "-c", "-p", "-V", "--version", "-h", "--help"} <= set(options)
    assert len(options) == len(set(options))
    assert bash_values(["completion", ""]) == ["bash", "zsh", "fish"]


def test_zsh_and_fish_formats():
    zsh = complete(["-c", "spy_l"], shell="zsh").splitlines()
    assert zsh[:2] == ["plain", "spy_logs"] and zsh[2].startswith("Show every write")
    fish = complete(["-r", "f.scap", "proc.na"], shell="fish").splitlines()
    assert fish == ["plain,proc.name\tthe process name (comm)"]


@pytest.mark.parametrize("shell, marker", [
    ("bash", "_SCAPTOOL_COMPLETE=bash_complete"),
    ("zsh", "_SCAPTOOL_COMPLETE=zsh_complete"),
    ("fish", "_SCAPTOOL_COMPLETE=fish_complete"),
])
def test_completion_scripts(shell, marker):
    r = scaptool("completion", shell)
    assert r.returncode == 0 and marker in r.stdout and "scaptool" in r.stdout


def test_bash_completes_through_the_sourced_script(tmp_path):
    """The whole path: bash sources the script and calls its function as on a TAB."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scaptool").write_text(f"#!/bin/sh\nexec {sys.executable} -m scaptool \"$@\"\n")
    (bin_dir / "scaptool").chmod(0o755)
    script = ('eval "$(scaptool completion bash)"\n'
              'COMP_WORDS=(scaptool -c sp); COMP_CWORD=2\n'
              '_scaptool_completion scaptool\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = dict(ENV, PATH=f"{bin_dir}{os.pathsep}{ENV['PATH']}")
    r = subprocess.run([bash, "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0 and set(r.stdout.split()) == SPIES, r.stderr


# the man page

PAGE = ROOT / "man" / "scaptool.1"


def test_committed_man_page_is_generated_from_the_help_texts():
    """If this fails: python3 -m scaptool.cli.manpage > man/scaptool.1"""
    assert PAGE.read_text() == manpage.render(cli)


def test_man_page_is_installed_with_the_package():
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "data-files"]
    assert data_files["share/man/man1"] == ["man/scaptool.1"]


def test_man_page_sections_and_options():
    page = PAGE.read_text()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXAMPLES",
                    "SHELL COMPLETION", "ENVIRONMENT", "FILES", "SEE ALSO"):
        assert f"\n.SH {section}\n" in page, section
    options = page.split("\n.SH OPTIONS\n")[1].split("\n.SH ")[0]
    for option in READ.params:
        if isinstance(option, click.Option):
            for name in option.opts:
                assert f"\\fB{name.replace('-', chr(92) + '-')}\\fR" in options, name
    for name in ("info", "slice", "capture", "completion", "read"):
        assert re.search(rf"^\.SS \\fBscaptool\\fR \\fB{name}\\fR", page, re.M), name
    for variable in ("NO_COLOR", "SCAPTOOL_DEBUG"):
        assert f"\n\\fB{variable}\\fR\n" in page
    assert "\n.BR sysdig (8)\n" in page
    assert page.startswith('.\\" Generated') and '\n.TH SCAPTOOL 1 ' in page


def test_man_page_roff_is_well_formed():
    requests = {".TH", ".SH", ".SS", ".TP", ".PP", ".br", ".RS", ".RE", ".nf", ".fi", ".BR",
                ".nh", ".ad", '.\\"'}
    fonts = 0  # font changes not yet undone: none may outlast its paragraph
    for number, line in enumerate(PAGE.read_text().splitlines(), 1):
        assert not line.startswith("'"), number
        if line.startswith("."):
            assert line.split(" ", 1)[0] in requests, (number, line)
            assert fonts == 0, number
        fonts += line.count("\\fB") + line.count("\\fI") - line.count("\\fR")
        assert not re.search(r"\\[^-fe&\"(]", line), (number, line)
    assert fonts == 0


def test_man_page_renders_without_warnings():
    groff = require_tool("groff")
    checked = subprocess.run([groff, "-man", "-ww", "-z", str(PAGE)], capture_output=True,
                             text=True)
    assert checked.returncode == 0 and checked.stderr == ""
    shown = subprocess.run([groff, "-man", "-Tascii", "-P-c", "-P-b", "-P-u", str(PAGE)],
                           capture_output=True, text=True, env=ENV)
    text = shown.stdout
    assert "SCAPTOOL(1)" in text and "-r, --read FILE" in text
    assert "scaptool [-r FILE] [OPTIONS] [FILTER]..." in text
