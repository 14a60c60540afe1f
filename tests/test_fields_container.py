"""container.* fields and -pc: a small capture written here, and every corpus capture
against sysdig 0.29.3 (all the container fields of every event, in one format)."""
import json
import sys

import pytest
from conftest import (corpus_capture, corpus_captures, need_capture, on_a_terminal,
                      require_tool, scaptool_output, sysdig_output)
from test_fds import ev, ms, thread, write_capture

from scaptool import scap
from scaptool.query import frame
from scaptool.scap.codecs import codec_for
from scaptool.scap.eventtable import sysdig_0293

FIELDS = ["container.id", "container.name", "container.image", "container.type",
          "container.privileged", "container.image.id", "container.image.repository",
          "container.image.tag", "container.image.digest", "container.mounts"]
WEB = "3f2a9c41b7d0" + "e" * 52


def _container_event(**info):
    """A container event (id 272, PPME_CONTAINER_JSON_E, as in the corpus) describing `info`."""
    etype = 272
    assert sysdig_0293()[etype].params[0].name == "json"
    text = (json.dumps({"container": info}) + "\n").encode()
    return etype, 0, [codec_for(sysdig_0293()[etype].params[0].type).encode(text)]


def _small(tmp_path):
    """Thread 100 on the host, thread 200 in container 3f2a9c41b7d0: described by a
    container event only after its first event."""
    web = dict(thread(200, 200), cgroups=f"cpu=/docker/{WEB}\0memory=/docker/{WEB}\0".encode())
    path = tmp_path / "c.scap"
    write_capture(path, [
        ev(100, "read", ">", fd=3, size=1),
        ev(200, "read", ">", fd=3, size=1),
        _container_event(
            id=WEB[:12], name="web", image="nginx:1.25", imageid="ab" * 32, type=0,
            privileged=True, imagerepo="nginx", imagetag="1.25", imagedigest="",
            Mounts=[{"Source": "/srv", "Destination": "/usr/share/nginx", "Mode": "ro",
                     "RW": False, "Propagation": "rprivate"},
                    {"Source": "/tmp/x", "Destination": "/x", "Mode": "", "RW": True,
                     "Propagation": ""}]),
        ev(200, "read", ">", fd=3, size=1),
        ev(100, "read", ">", fd=3, size=1),
    ], threads=[thread(100, 100), web])
    return path


def test_host_undescribed_and_described_containers(tmp_path):
    rows = frame(scap.open(_small(tmp_path)), ["evt.num"] + FIELDS, all_events=True).to_dicts()
    host, before, after = rows[0], rows[1], rows[3]
    assert [host[f] for f in FIELDS] == ["host", "host", None, "host"] + [None] * 6
    # known from the cgroups alone: a docker container, nothing else
    assert [before[f] for f in FIELDS] == \
        [WEB[:12], None, None, "docker", False, None, None, None, None, ""]
    assert [after[f] for f in FIELDS] == \
        [WEB[:12], "web", "nginx:1.25", "docker", True, "ab" * 32, "nginx", "1.25", None,
         "/srv:/usr/share/nginx:ro:false:rprivate,/tmp/x:/x::true:"]
    assert rows[4]["container.id"] == "host"


def test_small_capture_and_pc_as_sysdig(tmp_path):
    path = _small(tmp_path)
    fmt = "*%evt.num|" + "|".join("%" + f for f in FIELDS)
    for args in (["-p", fmt], ["-pc"], ["-pcontainer"], ["-pc", "-j"],
                 ["-p", "%evt.num", "container.name = web"],
                 ["-p", "%evt.num", "container.id != host and container.privileged = true"]):
        assert scaptool_output("-r", path, *args) == sysdig_output("-r", path, *args), args


@pytest.mark.parametrize("path", corpus_captures())
def test_container_fields_as_sysdig(utc, path):
    path = need_capture(path)
    fmt = "*%evt.num|" + "|".join("%" + f for f in FIELDS)
    assert scaptool_output("-r", path, "-p", fmt) == sysdig_output("-r", path, "-p", fmt)


# mounts by number and by globs on their source or destination, health checks and probes
MOUNTS = ["container.mount[0]", "container.mount[1]", "container.mount[7]",
          "container.mount.source[0]", "container.mount.dest[0]", "container.mount.mode[0]",
          "container.mount.rdwr[0]", "container.mount.propagation[0]", "container.mount[/var/*]",
          "container.mount.dest[/var/lib/docker/*]", "container.mount.source[/etc/*]",
          "container.mount.mode[/var/lib/kubelet/*]", "container.healthcheck",
          "container.liveness_probe", "container.readiness_probe",
          "proc.is_container_healthcheck", "proc.is_container_liveness_probe",
          "proc.is_container_readiness_probe"]


@pytest.mark.parametrize("path", corpus_captures())
def test_mount_and_probe_fields_as_sysdig(utc, path):
    path = need_capture(path)
    fmt = "*%evt.num|" + "|".join("%" + f for f in MOUNTS)
    assert scaptool_output("-r", path, "-p", fmt) == sysdig_output("-r", path, "-p", fmt)


def test_mount_fields_by_number_and_glob(tmp_path):
    rows = frame(scap.open(_small(tmp_path)), ["container.mount[1]", "container.mount.dest[/s*]",
                                               "container.mount.source[/x]",
                                               "container.mount.rdwr[/tmp/*]",
                                               "container.mount[2]", "container.healthcheck",
                                               "proc.is_container_healthcheck"],
                 all_events=True).to_dicts()
    assert list(rows[3].values()) == ["/tmp/x:/x::true:", "/usr/share/nginx", "/tmp/x", "true",
                                      None, "NONE", False]
    assert list(rows[0].values()) == [None] * 6 + [False]   # the host


@pytest.mark.parametrize("name", ["sysdig-examples-example4-1", "sysflow-nginx"])
def test_pc_line_as_sysdig(utc, name):
    path = corpus_capture(name)
    assert scaptool_output("-r", path, "-pc") == sysdig_output("-r", path, "-pc")


def _syslog_capture(tmp_path):
    """Two syslog writes: one from a container, one from the host."""
    web = dict(thread(200, 200), cgroups=f"cpu=/docker/{WEB}\0".encode())
    warning = b"<12>Nov 24 20:00:00 app[200]: disk warning"
    failure = b"<11>Nov 24 20:00:01 app[100]: host failure"
    path = tmp_path / "syslog.scap"
    write_capture(path, [
        _container_event(id=WEB[:12], name="web", image="nginx", type=0),
        ev(200, "write", ">", fd=5, size=len(warning)),
        ev(200, "write", "<", res=len(warning), data=warning),
        ev(100, "write", ">", fd=5, size=len(failure)),
        ev(100, "write", "<", res=len(failure), data=failure),
    ], threads=[thread(100, 100), web],
        fds={tid: [ms.file_fd(5, 9, b"/dev/log", 2)] for tid in (100, 200)})
    return path


@pytest.mark.parametrize("chisel", ["spy_syslog", "spy_logs"])
def test_pc_chisels_as_sysdig(utc, tmp_path, chisel):
    """-pc shows the container in spy_logs (its name first; Lua's nil where it has none) and
    spy_syslog (id and name; off a terminal, in sysdig's mixed-up order)."""
    path = _syslog_capture(tmp_path) if chisel == "spy_syslog" else \
        corpus_capture("sysflow-nginx")
    ours = scaptool_output("-r", path, "-pc", "-c", chisel)
    assert ours == sysdig_output("-r", path, "-pc", "-c", chisel)
    assert ("nil nginx " if chisel == "spy_logs" else "user                 3f2a9c41b7d0 ") \
        in ours
    scaptool = [sys.executable, "-m", "scaptool", "-r", str(path), "-pc", "-c", chisel]
    sysdig = [require_tool("sysdig"), "-r", str(path), "-pc", "-c", chisel]
    # (without the last line: the colour resets at the end)
    assert on_a_terminal(scaptool).splitlines()[:-1] == on_a_terminal(sysdig).splitlines()[:-1]


TABLES = ["topfiles_bytes", "topfiles_time", "topfiles_errors", "topprocs_file", "topprocs_net",
          "topprocs_errors", "topprocs_cpu", "topconns", "topports_server", "topscalls",
          "topscalls_time"]


def _same_table(ours, theirs):
    """Header, rule and the column of values identical; the rows themselves too, except
    those tied with the last one shown, which sysdig picks in its Lua table's hash order."""
    a, b = ours.splitlines(), theirs.splitlines()
    if a[:2] != b[:2] or [line[:20] for line in a[2:]] != [line[:20] for line in b[2:]]:
        return False
    last = a[-1][:20] if len(a) > 2 else None
    return sorted(line for line in a[2:] if line[:20] != last) == \
        sorted(line for line in b[2:] if line[:20] != last)


@pytest.mark.parametrize("name", ["sysdig-examples-example4-1", "sysflow-ls",
                                  "instruqt-ticket-generator-b841f454"])
@pytest.mark.parametrize("chisel", TABLES)
def test_pc_tables_as_sysdig(utc, name, chisel):
    """With -pc the tables add the container: processes by name, host pid, container thread
    id (process id for topprocs_cpu) and container; the rest by their key and container."""
    path = corpus_capture(name)
    ours = scaptool_output("-r", path, "-pc", "-c", chisel)
    assert "container.name" in ours.splitlines()[0]
    assert _same_table(ours, sysdig_output("-r", path, "-pc", "-c", chisel))


# the chisels that print events, with -pc: identical to sysdig's output
PER_EVENT = [["proc_exec_time"], ["fileslower", "0"], ["netlower", "0"], ["scallslower", "0"],
             ["spy_users"], ["echo_fds"], ["stderr"], ["httplog"], ["list_login_shells"]]


@pytest.mark.parametrize("name", ["sysdig-examples-example4-1", "sysflow-alpine",
                                  "instruqt-ticket-generator-b841f454",
                                  "falco-run-as-user-0-container"])
@pytest.mark.parametrize("words", PER_EVENT, ids=[w[0] for w in PER_EVENT])
def test_pc_chisels_that_print_events_as_sysdig(utc, name, words):
    path = corpus_capture(name)
    with_pc = scaptool_output("-r", path, "-pc", "-c", *words)
    assert with_pc == sysdig_output("-r", path, "-pc", "-c", *words)
    # (without -pc, as before)
    assert scaptool_output("-r", path, "-c", *words) == sysdig_output("-r", path, "-c", *words)


@pytest.mark.parametrize("name", ["sysdig-examples-example4-1",
                                  "instruqt-ticket-generator-b841f454"])
def test_pc_httptop_groups_by_container(utc, name):
    path = corpus_capture(name)
    ours = scaptool_output("-r", path, "-pc", "-c", "httptop")
    assert ours.splitlines()[0].split() == ["ncalls", "container", "method", "url"]
    assert _same_table(ours, sysdig_output("-r", path, "-pc", "-c", "httptop"))
