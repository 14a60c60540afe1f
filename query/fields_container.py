"""Container fields of sysdig 0.29.3: container.id, .name, .image, .type, .privileged,
.image.id, .image.repository, .image.tag, .image.digest, .mounts, .mount[...] and its parts,
.healthcheck and the probes, and proc.is_container_healthcheck and the probes'.

A thread's container id is found in its cgroups, as sysdig's runtime resolvers find it; what
is known of a container comes from the container events of the capture, as of each event (the
last event about that container before it). A container no event has described yet is still
known to sysdig from the cgroup match alone: a docker container, not privileged, without
mounts, and nothing else. Threads outside containers are in 'host'; events without a thread
have no value.

Each thread version (query.threads) is matched once, and each event then picks one of a few
container descriptions by index: no string work per event.
"""
import fnmatch

import numpy as np
import polars as pl

from .container_json import container_info
from .field_catalog import field
from .field_common import fake_container_rows, event_sections
from .fields_proc import _lookup

# a container id in a cgroup path, as sysdig's runtimes find it: the last path element, with
# the systemd prefixes and .scope suffix of docker/CRI-O/containerd/podman, is 64 hex digits
# (the id is its first 12)
_CGROUP_ID = r"(?:^| )[^ =]+=[^ ]*/(?:docker-|crio-|cri-containerd-|libpod-)?([0-9a-f]{12})" \
    r"[0-9a-f]{52}(?:\.scope)?(?: |$)"

# sinsp_container_type, as container.type names it
_TYPE_NAMES = {0: "docker", 1: "lxc", 2: "libvirt-lxc", 3: "mesos", 4: "rkt", 6: "cri",
               7: "containerd", 8: "cri-o", 9: "bpm", 10: "static", 11: "podman"}

# sysdig 0.29.3 reads no health check or probe from the container events of a capture (it
# expects another layout than the one they are written in): every container shows NONE
_PROBES = {"container.healthcheck": "NONE", "container.liveness_probe": "NONE",
           "container.readiness_probe": "NONE"}
# what each field shows on the host, and for a container no event has described yet
_HOST = {"container.id": "host", "container.name": "host", "container.type": "host"}
_UNDESCRIBED = {"container.type": "docker", "container.privileged": False,
                "container.mounts": "", "mounts": [], **_PROBES}

_NO_THREAD, _ON_HOST = -1, -2


def _type_name(value):
    """The name of a container type number (None for anything else a JSON may hold)."""
    return _TYPE_NAMES.get(value) if isinstance(value, (int, str)) else None


def _description(info):
    """The field values of one container event's JSON description."""
    def text(key):
        value = info.get(key)
        return str(value) if value not in (None, "") else None
    listed = info.get("Mounts")
    mounts = [(str(m.get("Source", "")), str(m.get("Destination", "")), str(m.get("Mode", "")),
               "true" if m.get("RW") else "false", str(m.get("Propagation", "")))
              for m in (listed if isinstance(listed, list) else ()) if isinstance(m, dict)]
    return {"container.id": text("id"), "container.name": text("name"),
            "container.image": text("image"), "container.type": _type_name(info.get("type")),
            "container.privileged": bool(info.get("privileged", False)),
            "container.image.id": text("imageid"), "container.image.repository":
            text("imagerepo"), "container.image.tag": text("imagetag"),
            "container.image.digest": text("imagedigest"),
            "container.mounts": ",".join(":".join(m) for m in mounts), "mounts": mounts,
            "ip": info.get("ip"), **_PROBES}


def container_events(data):
    """[(row, container id, description)] of the capture's container events, in order
    (decoded once per EventData; fd.is_server reads the addresses from them too)."""
    cached = data.__dict__.get("_container_events")
    if cached is not None:
        return cached
    rows = np.flatnonzero(fake_container_rows(data))
    # a chunk of a section read in chunks (query.chunks) starts from the last description of
    # each container its section's chunks before it had: rows below its own
    carry = getattr(data.capture, "carry_in", None)
    carried = carry.parts.get("containers", {}) if carry is not None else {}
    out = [(-1 - k, cid, described) for k, (cid, described) in enumerate(carried.items())][::-1]
    for row, raw in zip(rows.tolist(), data.capture.param("json", rows=rows).to_list()):
        info = container_info(raw) if raw is not None else None
        if info is None:
            continue
        try:
            described = _description(info)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            continue
        out.append((row, str(info.get("id", "")), described))
    data.__dict__["_container_events"] = out
    return out


def _version_ids(data):
    """The container id ('' on the host) of every thread version, from its cgroups."""
    groups = data.thread_versions["cgroups"].list.join(" ")
    return groups.str.extract(_CGROUP_ID, 1).fill_null("").to_list()


def _descriptions(data):
    """(per event, the index of its container's description; the descriptions). The last two
    descriptions are those of events without a thread and of threads on the host."""
    cache = data.__dict__
    if "_container_descriptions" in cache:
        return cache["_container_descriptions"]
    alive, v = _lookup(data, "own")
    version_ids = _version_ids(data)
    events = container_events(data)
    known = sorted(set(version_ids) - {""} | {cid for _, cid, _ in events})
    code_of = {cid: k for k, cid in enumerate(known)}
    version_code = np.array([code_of.get(cid, _ON_HOST) for cid in version_ids] or [0],
                            dtype=np.int64)
    code = np.where(alive, version_code[v.fill_null(0).to_numpy()], _NO_THREAD)
    code[fake_container_rows(data)] = _NO_THREAD
    for row, cid, _ in events:
        if row >= 0:   # (not a description carried from the chunks before)
            code[row] = code_of[cid]  # a container event's made-up thread is in its container
    # first one undescribed entry per container, then the container events' descriptions
    descriptions = [dict(_UNDESCRIBED, **{"container.id": cid}) for cid in known]
    index = code.copy()
    sections = np.asarray(event_sections(data))
    for k, cid in enumerate(known):
        told = [(row, d) for row, c, d in events if c == cid]
        mine = np.flatnonzero(code == k)
        if not told or not len(mine):
            continue
        at = np.array([row for row, _ in told], dtype=np.int64)
        # the last description up to each event, within its section (each section starts
        # from an empty container table)
        pos = np.searchsorted(at, mine, side="right") - 1
        same = (pos >= 0) & (sections[np.maximum(at[np.maximum(pos, 0)], 0)] ==
                             sections[mine])
        index[mine[same]] = len(descriptions) + pos[same]
        descriptions.extend(d for _, d in told)
    index[code == _NO_THREAD] = len(descriptions)
    index[code == _ON_HOST] = len(descriptions) + 1
    descriptions += [{}, dict(_HOST)]
    cache["_container_descriptions"] = (index, descriptions)
    return index, descriptions


def _container_field(name, type_, description, dtype=pl.String, kind="string"):
    def compute(data, arg):
        index, descriptions = _descriptions(data)
        values = pl.Series(name, [d.get(name) for d in descriptions], dtype=dtype)
        return values.gather(index)
    field(name, type_, kind, description)(compute)


_container_field("container.id", "CHARBUF", "the container id ('host' outside containers)")
_container_field("container.name", "CHARBUF", "the container name ('host' outside containers)")
_container_field("container.image", "CHARBUF", "the container image name")
_container_field("container.type", "CHARBUF", "the container type: docker, cri-o, ... or host")
_container_field("container.privileged", "BOOL", "true for containers running as privileged",
                 dtype=pl.Boolean, kind="bool")
_container_field("container.image.id", "CHARBUF", "the container image id")
_container_field("container.image.repository", "CHARBUF", "the container image repository")
_container_field("container.image.tag", "CHARBUF", "the container image tag")
_container_field("container.image.digest", "CHARBUF", "the container image registry digest")
_container_field("container.mounts", "CHARBUF",
                 "the container's mounts, source:dest:mode:rdwr:propagation separated by ','")
_container_field("container.healthcheck", "CHARBUF",
                 "the container's health check (NONE: sysdig reads none from a capture)")
_container_field("container.liveness_probe", "CHARBUF",
                 "the container's liveness probe (NONE: sysdig reads none from a capture)")
_container_field("container.readiness_probe", "CHARBUF",
                 "the container's readiness probe (NONE: sysdig reads none from a capture)")


# -- one mount, by number or by a glob on its source (or, for .source, on its destination)

_SOURCE, _DEST = 0, 1


def _mount_field(name, part, description, matched_on=_SOURCE):
    def compute(data, arg):
        index, descriptions = _descriptions(data)
        values = [_pick_mount(d.get("mounts"), arg, matched_on, part) for d in descriptions]
        return pl.Series(name, values, dtype=pl.String).gather(index)
    field(name, "CHARBUF", "string", description, arg="required")(compute)


def _pick_mount(mounts, arg, matched_on, part):
    """The part (None: the whole mount as source:dest:mode:rdwr:propagation) of the mount
    numbered `arg`, or of the first whose source (or destination) matches the glob `arg`."""
    if not mounts or arg is None:
        return None
    if arg.isdigit():
        found = mounts[int(arg)] if int(arg) < len(mounts) else None
    else:
        found = next((m for m in mounts if fnmatch.fnmatchcase(m[matched_on], arg)), None)
    if found is None:
        return None
    return ":".join(found) if part is None else found[part]


_mount_field("container.mount", None,
             "one mount as source:dest:mode:rdwr:propagation: container.mount[0], or the first "
             "whose source matches a glob (container.mount[/usr/local/*])")
_mount_field("container.mount.source", 0,
             "the source of a mount, by number or by a glob on its destination", _DEST)
_mount_field("container.mount.dest", 1,
             "the destination of a mount, by number or by a glob on its source")
_mount_field("container.mount.mode", 2,
             "the mode of a mount, by number or by a glob on its source")
_mount_field("container.mount.rdwr", 3,
             "whether a mount is read-write, by number or by a glob on its source")
_mount_field("container.mount.propagation", 4,
             "the propagation of a mount, by number or by a glob on its source")


# -- processes run by the container runtime's health checks and probes: none, as above

def _is_probe_field(name, description):
    def compute(data, arg):
        index, descriptions = _descriptions(data)
        values = [False if d else None for d in descriptions]  # {}: no thread
        return pl.Series(name, values, dtype=pl.Boolean).gather(index)
    field(name, "BOOL", "bool", description)(compute)


_is_probe_field("proc.is_container_healthcheck",
                "true if the process is part of the container's health check (never: sysdig "
                "reads no health check from a capture)")
_is_probe_field("proc.is_container_liveness_probe",
                "true if the process is part of the container's liveness probe (never, as "
                "above)")
_is_probe_field("proc.is_container_readiness_probe",
                "true if the process is part of the container's readiness probe (never, as "
                "above)")


def carry_containers(data, parts):
    """At the end of a chunk: the last description of each container its section has had."""
    carry = getattr(data.capture, "carry_in", None)
    known = dict(carry.parts.get("containers", {})) if carry is not None else {}
    for row, cid, described in container_events(data):
        if row >= 0:
            known.pop(cid, None)
            known[cid] = described
    parts["containers"] = known
