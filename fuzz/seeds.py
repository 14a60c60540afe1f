"""Seed inputs the fuzz targets start from, all made by the project: its fixtures (captures its
writer made from described scenarios), small hostile captures from tests/hostile.py, and
texts in the filter and format languages."""
import gzip
import pathlib
import sys
import tempfile

import harness

sys.path.insert(0, str(harness.ROOT / "tests"))


def captures():
    """name -> bytes: the fixtures, and the small hostile captures."""
    import hostile
    out = {p.name: p.read_bytes() for p in harness.fixture_captures()}
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        makers = {"control-characters.scap": hostile.control_character_names,
                  "block-claiming-4g.scap": hostile.block_claiming,
                  "parameter-claiming-4g.scap": hostile.parameter_claiming,
                  "process-list-claiming.scap": hostile.process_list_claiming,
                  "deep-json.scap": lambda p: hostile.deep_json_container(p, depth=2000),
                  "empty-blocks.scap": lambda p: hostile.empty_blocks(p, count=50)}
        for name, make in makers.items():
            make(folder / name)
            out[name] = (folder / name).read_bytes()
    return out


def gzip_captures():
    """The captures gzip-compressed, and one split into two gzip members."""
    out = {name + ".gz": gzip.compress(data, mtime=0) for name, data in captures().items()}
    data = (harness.FIXTURES / "php-database-error.scap").read_bytes()
    out["two-members.scap.gz"] = gzip.compress(data[:1000], mtime=0) + \
        gzip.compress(data[1000:], mtime=0)
    return out


FILTERS = [
    'proc.name=php-fpm7.4 and evt.type=write',
    'evt.type in (open, openat, read) and not fd.name contains /proc',
    'fd.name glob "/var/log/*.log" or fd.name pmatch (/etc, /tmp)',
    'evt.buffer contains "Database error" and evt.dir=<',
    'proc.cmdline regex "php.*fpm" and evt.rawres < 0',
    'fd.sport > 1024 and fd.l4proto=tcp or fd.type=ipv4',
    'evt.arg.res exists and (evt.latency > 1000 or evt.num <= 10)',
    'not (thread.tid=812 or proc.pid != 800) and evt.is_io_write=true',
    'container.name startswith k8s_ and user.name icontains ROOT',
    'evt.type=execve and proc.aname[2]=bash and fd.num >= 3',
]

FORMATS = [
    '%evt.num %evt.outputtime %evt.cpu %proc.name (%thread.tid) %evt.dir %evt.type %evt.info',
    '*%evt.time %12proc.name %-8fd.name\\t%evt.arg.res %evt.buffer',
    '%proc.name[%proc.pid] %fd.sip:%fd.sport -> %fd.cip:%fd.cport %evt.latency.human',
    '%container.name %container.id %user.name %proc.aname[1] %evt.abspath \\n\\e[1m',
    '%evt.rawarg.fd %evt.arg[0] %evt.type.is.open %thread.exectime %proc.exeline',
]

CHISEL_ARGS = [
    ("topprocs_cpu", ""), ("spy_logs", "'/tmp/out.scap 1000'"), ("echo_fds", "'' 'true'"),
    ("fdcount_by", "proc.name"), ("table_generator", "'proc.name fd.name' 'Proc File' "
                                                     "'evt.rawarg.res' 'Bytes' 10 'bytes'"),
    ("topconns", ""), ("spy_users", "2 disable_colors"), ("subsecoffset", "1000"),
    ("proc_exec_time", ""), ("iobytes_net", ""), ("stderr", ""), ("list_login_shells", "bash"),
]
