"""The filter compiler: AST → Polars expression, checked by the rows it selects.

A small frame holds one column per field kind, with nulls; a fake resolver maps field names to
those columns. Each row of the tables is (filter, selected row indices).
Semantics: reference/filter-and-chisels.md §1.4 (operators), §1.6 (values, NULL), §1.7, §1.8b.
"""
import os
import pathlib

import polars as pl
import pytest

from conftest import corpus_path
from scaptool.query.filter import Field, FilterError, UnknownField, compile_filter, parse
from scaptool.query.filter.compile import glob_to_regex

FRAME = pl.DataFrame({
    "name": ["cat", "bash", None, "Nginx", "sh", "CAT"],
    "pname": ["bash", "bash", "init", "nginx", None, "cat"],
    "fd": ["/etc/passwd", "/var/log/x.log", None, "/etcx", "/lib/x86_64/libc.so.6", "etc//shadow"],
    "buf": [b"GET / HTTP/1.1", None, b"\x00\x01ab", b"", b"zz", b"\xffGET"],
    "pid": [1, 200, None, 4000, 5, -3],
    "num": pl.Series([10, 20, 30, 40, 50, 60], dtype=pl.UInt64),
    "failed": [True, False, None, True, False, False],
    "sip": ["10.1.2.3", "::1", None, "192.168.0.1", "::ffff:10.0.0.9", "not-an-ip"],
    "sport": pl.Series([80, 443, None, 8080, 53, 22], dtype=pl.UInt16),
    "anc": [["bash", "init"], ["sshd", "init"], None, [], ["sh", "bash"], ["cron"]],
    "ancpid": [[10, 1], [2, 1], None, [], [7], [1]],
    "ips": [["10.0.0.1", "1.1.1.1"], ["::1"], None, [], ["192.168.1.1"], ["8.8.8.8"]],
    "tags": [["a", "b"], ["a"], None, [], ["c"], ["b", "z"]],
    "time": [1_000_000_000, 1_050_000_000, 1_100_000_000, 1_200_000_000, 900_000_000,
             2_000_000_000],
    "b64": ["Y2F0", "YmFzaA==", None, "!!", "", "Q0FU"],
    "res": ["SUCCESS", "ENOENT", None, "SUCCESS", "EAGAIN", "SUCCESS"],
})
ALL = list(range(FRAME.height))

FIELDS = {
    "proc.name": ("name", "string"),
    "proc.pname": ("pname", "string"),
    "fd.name": ("fd", "string"),
    "evt.buffer": ("buf", "bytes"),
    "proc.pid": ("pid", "int"),
    "evt.num": ("num", "uint"),
    "evt.failed": ("failed", "bool"),
    "fd.sip": ("sip", "ip"),
    "fd.sport": ("sport", "port"),
    "proc.aname": ("anc", "any"),
    "proc.apid": ("ancpid", "any"),
    "fd.ip": ("ips", "any"),
    "test.tags": ("tags", "list"),
    "evt.rawtime": ("time", "time"),
    "evt.around": ("time", "around"),
    "evt.arg.data": ("b64", "string"),
    "evt.res": ("res", "string"),
}
ITEMS = {"proc.apid": "int", "fd.ip": "ip"}


def resolve(name, arg):
    if name == "proc.aname" and arg is not None:
        if not arg.isdigit():
            raise UnknownField(name, f"proc.aname[{arg}]: the argument must be a number")
        return Field(pl.col("anc").list.get(int(arg) - 1, null_on_oob=True), "string")
    if name not in FIELDS:
        raise UnknownField(name)
    column, kind = FIELDS[name]
    return Field(pl.col(column), kind, item=ITEMS.get(name, "string"),
                 values=frozenset({"SUCCESS", "ENOENT", "EAGAIN", "EPERM"})
                 if name == "evt.res" else None)


def rows(text):
    expr = compile_filter(text, resolve)
    return FRAME.with_row_index("i").filter(expr)["i"].to_list()


CASES = [
    # equality, strings; null rows (2) never match a comparison
    ("proc.name = cat", [0]),
    ("proc.name == cat", [0]),
    ("proc.name != cat", [1, 3, 4, 5]),
    ("proc.name = CAT", [5]),
    ("proc.name = ''", []),
    # null semantics (§1.6): comparison false, exists false, not → true
    ("fd.name != /etc/passwd", [1, 3, 4, 5]),
    ("not fd.name = /etc/passwd", [1, 2, 3, 4, 5]),
    ("not fd.name != /etc/passwd", [0, 2]),
    ("fd.name exists", [0, 1, 3, 4, 5]),
    ("not fd.name exists", [2]),
    ("not (fd.name = x or proc.name = cat)", [1, 2, 3, 4, 5]),
    ("not not fd.name = /etcx", [3]),
    ("proc.pid != 1", [1, 3, 4, 5]),
    ("not proc.pid = 1", [1, 2, 3, 4, 5]),
    # text operators
    ("fd.name contains etc", [0, 3, 5]),
    ("fd.name contains ''", [0, 1, 3, 4, 5]),
    ("fd.name startswith /etc", [0, 3]),
    ("fd.name endswith .log", [1]),
    ("proc.name icontains NGI", [3]),
    ("proc.name icontains cat", [0, 5]),
    ("proc.name < c", None),   # the RHS of < must be a number: parse error, see ERRORS
    ("proc.name > 100", [0, 1, 3, 4, 5]),   # strings compare in byte order with the token
    ("fd.name bcontains 2f6c6962", [4]),     # bcontains on text: hex of '/lib'
    # glob / iglob: fnmatch without FNM_PATHNAME: * and ? cross '/'
    ("fd.name glob /lib/*", [4]),
    ("fd.name glob '/etc/*'", [0]),
    ("fd.name glob '/etc?'", [3]),
    ("fd.name glob '*.so.[0-9]'", [4]),
    ("fd.name glob '*.so.[!0-9]'", []),
    ("fd.name glob '*[[:digit:]]'", [4]),
    ("fd.name glob '/etc\\\\?'", []),         # \? is a literal '?'
    ("fd.name glob 'etc[/]*'", [5]),
    ("proc.name glob 'c[a]t'", [0]),
    ("proc.name glob 'ca['", []),              # an unclosed [ is literal
    ("proc.name iglob 'C?T'", [0, 5]),
    ("fd.name glob '*'", [0, 1, 3, 4, 5]),
    # regex: whole value, RE2-like syntax
    ("fd.name regex '/etc/.*'", [0]),
    ("fd.name regex etc", []),
    ("fd.name regex '.*etc.*'", [0, 3, 5]),
    ("proc.name regex '[[:lower:]]+'", [0, 1, 4]),
    ("proc.name regex 'cat|sh'", [0, 4]),
    ("fd.name regex '.*\\\\.log'", [1]),        # '\\.' in the filter text is regex '\.'
    # pmatch: whole components, empty components ignored, globs per component
    ("fd.name pmatch (/etc)", [0, 5]),
    ("fd.name pmatch (/etc/, /var/log)", [0, 1, 5]),
    ("fd.name pmatch (/et)", []),
    ("fd.name pmatch (/etc/passwd)", [0]),
    ("fd.name pmatch (/lib/x86*)", [4]),
    ("fd.name pmatch ('/l?b/*/libc.so.6')", [4]),
    ("fd.name pmatch (/)", [0, 1, 3, 4, 5]),
    ("fd.name pmatch ()", []),
    ("not fd.name pmatch (/etc)", [1, 2, 3, 4]),
    # in / intersects on single values
    ("proc.name in (cat, sh)", [0, 4]),
    ("proc.name in (a, \"b c\", 'sh')", [4]),
    ("proc.name in ()", []),
    ("not proc.name in (cat, sh)", [1, 2, 3, 5]),
    ("proc.name intersects (cat, sh)", [0, 4]),
    ("proc.pid in (1, 5, 99)", [0, 4]),
    ("proc.pid in (-3)", [5]),
    # integers
    ("proc.pid = 200", [1]),
    ("proc.pid > 100", [1, 3]),
    ("proc.pid >= 200", [1, 3]),
    ("proc.pid < 5", [0, 5]),
    ("proc.pid <= 5", [0, 4, 5]),
    ("proc.pid = +5", [4]),
    ("evt.num > 20 and evt.num < 50", [2, 3]),
    ("evt.num >= 60", [5]),
    # ports: numbers or service names
    ("fd.sport = 80", [0]),
    ("fd.sport = https", [1]),
    ("fd.sport in (http, 53)", [0, 4]),
    ("fd.sport > 1000", [3]),
    # booleans
    ("evt.failed = true", [0, 3]),
    ("evt.failed = false", [1, 4, 5]),
    ("evt.failed != true", [1, 4, 5]),
    ("not evt.failed = true", [1, 2, 4, 5]),
    # bytes: raw bytes, hex for b* operators
    ("evt.buffer contains GET", [0, 5]),
    ("evt.buffer startswith GET", [0]),
    ("evt.buffer endswith '1.1'", [0]),
    ("evt.buffer = zz", [4]),
    ("evt.buffer = ''", [3]),
    ("evt.buffer contains '\\x00\\x01'", [2]),
    ("evt.buffer startswith '\\xff'", [5]),
    ("evt.buffer bcontains 0001", [2]),
    ("evt.buffer bcontains 474554", [0, 5]),
    ("evt.buffer bstartswith FF47", [5]),
    ("evt.buffer in (zz, '')", [3, 4]),
    ("evt.buffer != zz", [0, 2, 3, 5]),
    # ip: addresses and CIDR networks
    ("fd.sip = 10.1.2.3", [0]),
    ("fd.sip = 10.0.0.0/8", [0, 4]),           # IPv4-mapped ::ffff:10.0.0.9 counts as IPv4
    ("fd.sip = 10.1.2.3/32", [0]),
    ("fd.sip = 10.1.2.0/24", [0]),
    ("fd.sip = ::1", [1]),
    ("fd.sip = 0:0::1", [1]),                   # any spelling of the address
    ("fd.sip = ::/0", [1]),
    ("fd.sip = 0.0.0.0/0", [0, 3, 4]),
    ("fd.sip != 10.0.0.0/8", [1, 3]),           # unparsable text: no value
    ("fd.sip in (::1, 192.168.0.0/16)", [1, 3]),
    ("not fd.sip = 10.0.0.0/8", [1, 2, 3, 5]),
    # 'any' fields: true when any value matches (un-indexed proc.aname, fd.ip)
    ("proc.aname = bash", [0, 4]),
    ("proc.aname != bash", [0, 1, 4, 5]),
    ("not proc.aname = bash", [1, 2, 3, 5]),
    ("proc.aname in (sh, sshd)", [1, 4]),
    ("proc.aname intersects (cron)", [5]),
    ("proc.aname startswith ss", [1]),
    ("proc.aname glob 'b*'", [0, 4]),
    ("proc.aname exists", [0, 1, 4, 5]),
    ("proc.apid = 1", [0, 1, 5]),
    ("proc.apid > 5", [0, 4]),
    ("fd.ip = 10.0.0.0/8", [0]),
    ("fd.ip = 192.168.0.0/16 or fd.ip = ::1", [1, 4]),
    # 'list' fields: in = subset, intersects = overlap
    ("test.tags in (a, b)", [0, 1]),
    ("test.tags in (a, b, c)", [0, 1, 4]),
    ("test.tags intersects (b)", [0, 5]),
    ("test.tags intersects (q)", []),
    ("test.tags exists", [0, 1, 4, 5]),
    ("len(test.tags) = 2", [0, 5]),
    # indexed ancestor from the resolver
    ("proc.aname[1] = bash", [0]),
    ("proc.aname[2] = init", [0, 1]),
    # time and evt.around[T] = D (ms, both ends included)
    ("evt.rawtime > 1000000000", [1, 2, 3, 5]),
    ("evt.around[1000000000] = 100", [0, 1, 2, 4]),
    ("evt.around[1000000000] = 50", [0, 1]),
    ("evt.around[1000000000] = 0", [0]),
    # transformers
    ("tolower(proc.name) = cat", [0, 5]),
    ("toupper(proc.name) = NGINX", [3]),
    ("tolower(proc.name) in (nginx, cat)", [0, 3, 5]),
    ("basename(fd.name) = passwd", [0]),
    ("basename(fd.name) = libc.so.6", [4]),
    ("basename(fd.name) = x.log", [1]),
    ("len(proc.name) = 3", [0, 5]),
    ("len(proc.name) > 3", [1, 3]),
    ("len(evt.buffer) = 0", [3]),
    ("len(evt.buffer) >= 14", [0]),
    ("b64(evt.arg.data) = cat", [0]),
    ("b64(evt.arg.data) = ''", [4]),
    ("b64(evt.arg.data) exists", [0, 1, 4, 5]),   # '!!' is not base64: no value
    ("tolower(b64(evt.arg.data)) = cat", None),    # b64 gives bytes: see ERRORS
    ("tolower(basename(fd.name)) startswith libc", [4]),
    # field against field
    ("proc.name = val(proc.pname)", [1]),
    ("proc.name != val(proc.pname)", [0, 3, 5]),   # null on either side: false
    ("tolower(proc.name) = tolower(proc.pname)", [1, 3, 5]),
    ("proc.pname contains val(proc.name)", [1]),
    ("proc.pname icontains val(proc.name)", [1, 3, 5]),
    ("proc.pname startswith val(proc.name)", [1]),
    ("proc.pid < val(proc.pid)", []),
    ("proc.pid = val(proc.pid)", [0, 1, 3, 4, 5]),
    # catalog-restricted values (evt.res / evt.type)
    ("evt.res = ENOENT", [1]),
    ("evt.res in (ENOENT, EPERM)", [1]),
    ("evt.res contains E", [0, 1, 3, 4, 5]),       # only =, != and lists are checked
    # precedence on data
    ("proc.name = cat or proc.name = sh and proc.pid = 1", [0]),
    ("(proc.name = cat or proc.name = sh) and proc.pid = 5", [4]),
    ("not proc.name = cat and proc.pid > 0", [1, 3, 4]),
    ("proc.pid > 0 and proc.pid < 10 or fd.name exists and not proc.pid exists", [0, 4]),
]
CASES = [c for c in CASES if c[1] is not None]


@pytest.mark.parametrize("text,expected", CASES, ids=[c[0] for c in CASES])
def test_rows(text, expected):
    assert rows(text) == expected


def test_accepts_an_ast_and_gives_no_nulls():
    expr = compile_filter(parse("fd.name = x or not proc.pid > 3"), resolve)
    out = FRAME.select(expr.alias("m"))["m"]
    assert out.dtype == pl.Boolean and out.null_count() == 0


def test_lazy_frames():
    expr = compile_filter("proc.aname = bash and fd.sip = 10.0.0.0/8", resolve)
    assert FRAME.lazy().with_row_index("i").filter(expr).collect()["i"].to_list() == [0, 4]


ERRORS = [
    ("proc.nam = x", "filter: unknown field 'proc.nam' at position 0"),
    ("proc.name = x and fd.nme exists", "filter: unknown field 'fd.nme' at position 18"),
    ("proc.aname[x] = 1",
     "filter: proc.aname[x]: the argument must be a number at position 0"),
    ("tolower(proc.nam) = x", "filter: unknown field 'proc.nam' at position 8"),
    ("proc.name = val(proc.nam)", "filter: unknown field 'proc.nam' at position 16"),
    ("proc.pid = 0x10", "filter: '0x10' is not a valid number (decimal digits only) at position 11"),
    ("proc.pid > 1.5", "filter: '1.5' is not a valid number (decimal digits only) at position 11"),
    ("proc.pid = 12abc", "filter: '12abc' is not a valid number (decimal digits only) at position 11"),
    ("proc.pid in (1, x)", "filter: 'x' is not a valid number (decimal digits only) at position 16"),
    ("proc.pid = 9223372036854775808",
     "filter: '9223372036854775808' is out of range for an integer field proc.pid at position 11"),
    ("evt.num = -1", "filter: '-1' is out of range for an unsigned field evt.num at position 10"),
    ("fd.sport = nosuchservice",
     "filter: 'nosuchservice' is not a port number or a known service name at position 11"),
    ("evt.failed = yes", "filter: unrecognized boolean value 'yes' (true or false) at position 13"),
    ("evt.failed = True", "filter: unrecognized boolean value 'True' (true or false) at position 13"),
    ("fd.sip = 1.2.3", "filter: '1.2.3' is not a valid IP address or network at position 9"),
    ("fd.sip = 10.0.0.0/33", "filter: '10.0.0.0/33' is not a valid IP address or network at position 9"),
    ("fd.name regex '('", "filter: invalid regular expression: unclosed group at position 14"),
    ("fd.name glob '[z-a]'", "filter: invalid glob pattern: invalid character class range, "
                             "the start must be <= the end at position 13"),
    ("evt.res = EFOO", "filter: 'EFOO' is not a valid value for evt.res at position 10"),
    ("proc.name = 'a\\x00b'",
     "filter: a value may not contain NUL (only byte-buffer fields may) at position 12"),
    ("proc.name = '\\xff'",
     "filter: value '\\udcff' is not valid UTF-8, which a text field can never hold at position 12"),
    # operator / kind mismatches
    ("proc.pid contains 1", "filter: operator 'contains' is not supported on int field proc.pid at position 9"),
    ("proc.pid glob 1*", "filter: operator 'glob' is not supported on int field proc.pid at position 9"),
    ("evt.buffer icontains get",
     "filter: operator 'icontains' is not supported on bytes field evt.buffer at position 11"),
    ("evt.buffer glob 'G*'", "filter: operator 'glob' is not supported on bytes field evt.buffer at position 11"),
    ("evt.buffer > 1", "filter: operator '>' is not supported on bytes field evt.buffer at position 11"),
    ("evt.failed > 0", "filter: operator '>' is not supported on bool field evt.failed at position 11"),
    ("evt.failed contains t",
     "filter: operator 'contains' is not supported on bool field evt.failed at position 11"),
    ("fd.sip contains 10", "filter: operator 'contains' is not supported on ip field fd.sip at position 7"),
    ("fd.sip > 10", "filter: operator '>' is not supported on ip field fd.sip at position 7"),
    ("proc.name bstartswith 00",
     "filter: operator 'bstartswith' is not supported on string field proc.name at position 10"),
    ("test.tags = a",
     "filter: operator '=' is not supported on list field test.tags (use in, intersects or exists) at position 10"),
    ("proc.apid contains 1",
     "filter: operator 'contains' is not supported on int field proc.aname at position 10"
     .replace("proc.aname", "proc.apid")),
    ("evt.buffer bcontains xyz",
     "filter: bcontains and bstartswith take an even number of hex digits, not 'xyz' at position 21"),
    ("evt.buffer bcontains abc",
     "filter: bcontains and bstartswith take an even number of hex digits, not 'abc' at position 21"),
    ("evt.around[1000] > 5", "filter: only '=' is supported with evt.around[1000] at position 17"),
    ("evt.around = 5", "filter: evt.around needs a timestamp in ns as argument at position 0"),
    # transformers and fields on the right
    ("tolower(proc.pid) = 1", "filter: transformer 'tolower' is not supported on int field proc.pid at position 0"),
    ("basename(evt.buffer) = x",
     "filter: transformer 'basename' is not supported on bytes field evt.buffer at position 0"),
    ("tolower(b64(evt.arg.data)) = cat",
     "filter: transformer 'tolower' is not supported on bytes field b64(evt.arg.data) at position 0"),
    ("proc.name = val(proc.pid)",
     "filter: proc.pid (int) has a type incompatible with proc.name (string) at position 12"),
    ("proc.name glob val(proc.pname)",
     "filter: a field on the right-hand side of 'glob' is not supported at position 15"),
    ("proc.name regex val(proc.pname)",
     "filter: a field on the right-hand side of 'regex' is not supported at position 16"),
    ("proc.name pmatch val(proc.pname)",
     "filter: a field on the right-hand side of 'pmatch' is not supported at position 17"),
    ("proc.name in val(proc.aname)",
     "filter: a field on the right-hand side of 'in' is not supported at position 13"),
    ("proc.aname = val(proc.name)",
     "filter: proc.aname cannot be compared with another field at position 0"),
    ("proc.name = val(proc.aname)",
     "filter: proc.aname cannot be used on the right-hand side at position 12"),
    # macros and lists
    ("spawned_process", "filter: unexpected identifier 'spawned_process' "
                        "(macros and lists are not supported) at position 0"),
    ("proc.name = x or my_macro", "filter: unexpected identifier 'my_macro' "
                                  "(macros and lists are not supported) at position 17"),
    ("proc.name in shell_binaries", "filter: unexpected identifier 'shell_binaries' "
                                    "(lists are not supported) at position 13"),
    # syntax errors surface unchanged
    ("proc.name < c", "filter: expected a number after '<', found 'c' at position 12"),
]


@pytest.mark.parametrize("text,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(text, message):
    with pytest.raises(FilterError) as info:
        compile_filter(text, resolve)
    assert str(info.value) == message


def test_unknown_field_carries_its_name():
    err = UnknownField("x.y")
    assert err.name == "x.y" and str(err) == "unknown field 'x.y'"


def test_field_rejects_unknown_kind():
    with pytest.raises(ValueError):
        Field(pl.col("a"), "float")
    with pytest.raises(ValueError):
        Field(pl.col("a"), "list", item="list")


@pytest.mark.parametrize("pattern,regex", [
    ("*.c", r".*\.c"),
    ("a?b", "a.b"),
    ("**", ".*"),
    ("[!a-c]x", "[^a-c]x"),
    ("[]]", r"[\]]"),
    ("[a-]", r"[a\-]"),
    ("\\*", r"\*"),
    ("[", r"\["),
    ("a&&b~c", r"a\&\&b\~c"),
])
def test_glob_to_regex(pattern, regex):
    assert glob_to_regex(pattern) == regex


def test_glob_component_mode_stops_at_slash():
    assert glob_to_regex("a*[xy]?", component=True) == "a[^/]*[[xy]&&[^/]][^/]"


# --- the 45 real filters of the conformance corpus compile -----------------------------------
# A permissive resolver: every field they use, with the kind of its sysdig type (§2.3).

CONFORMANCE_FIELDS = {
    "evt.type": "string", "evt.dir": "string", "evt.res": "string", "evt.category": "string",
    "evt.args": "string", "evt.arg.name": "string", "evt.failed": "bool",
    "evt.is_io_read": "bool", "evt.is_io_write": "bool", "evt.is_syslog": "bool",
    "evt.rawarg.res": "int", "evt.rawarg.fd": "int", "evt.cpu": "int", "evt.num": "uint",
    "evt.latency": "time", "evt.buffer": "bytes",
    "fd.name": "string", "fd.directory": "string", "fd.filename": "string", "fd.type": "string",
    "fd.typechar": "string", "fd.l4proto": "string", "fd.num": "int",
    "fd.sport": "port", "fd.cport": "port",
    "proc.name": "string", "proc.pname": "string", "proc.exe": "string",
    "proc.cmdline": "string", "thread.tid": "int", "user.name": "string",
}
SAMPLE = {"string": ["open", None], "bool": [True, None], "int": [1, None],
          "uint": pl.Series([150, None], dtype=pl.UInt64), "time": [2_000_000, None],
          "bytes": [b"GET / HTTP", None], "port": pl.Series([80, None], dtype=pl.UInt16)}


def conformance_resolve(name, arg):
    if name not in CONFORMANCE_FIELDS or arg is not None:
        raise UnknownField(name)
    return Field(pl.col(name), CONFORMANCE_FIELDS[name])


def _conformance_filters():
    value = os.environ.get("SCAPTOOL_CORPUS")
    path = pathlib.Path(value or ".") / "filters.txt"
    if not value or not path.is_file():
        return [pytest.param(None, id="no-corpus")]
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    return [pytest.param(ln, id=f"{i + 1}") for i, ln in enumerate(lines)]


@pytest.mark.corpus
@pytest.mark.parametrize("text", _conformance_filters())
def test_conformance_filters_compile(text):
    if text is None:
        corpus_path()  # skips, or fails in CI
    frame = pl.DataFrame({name: SAMPLE[kind] for name, kind in CONFORMANCE_FIELDS.items()})
    out = frame.select(compile_filter(text, conformance_resolve).alias("m"))["m"]
    assert out.dtype == pl.Boolean and out.null_count() == 0
    assert out[1] == text.startswith("not "), "the all-null row matches only negations"


def test_filters_of_thousands_of_terms_stay_linear():
    """A Falco condition with its macros expanded can hold thousands of terms: and/or are
    n-ary in Polars (a chain 7,000 deep took minutes to plan and the and-chain ran out of
    memory). Run in a subprocess so that a regression is a failure, not a hang."""
    import subprocess
    import sys
    script = (
        "from scaptool import scap\n"
        "from scaptool.query.select import filter_mask\n"
        f"cap = scap.open({str(pathlib.Path(__file__).resolve().parent.parent / 'fixtures' / 'php-database-error.scap')!r})\n"
        "many = ' or '.join(f'proc.name=p{i}' for i in range(7000))\n"
        "assert len(many) > 100_000\n"
        "hits = filter_mask(cap, many + ' or proc.name=mysqld')\n"
        "assert (hits == filter_mask(cap, 'proc.name=mysqld')).all() and hits.any()\n"
        "none = ' and '.join(f'not proc.name=p{i}' for i in range(7000))\n"
        "assert filter_mask(cap, none).all()\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
