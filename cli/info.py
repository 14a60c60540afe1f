"""`scaptool info FILE`: what a capture holds, at a glance or as JSON."""
import datetime
import json

import click

from scaptool import scap


def describe(capture):
    """A plain dict describing the capture (also the --json output)."""
    ts = capture.headers.ts
    stamped = ts[ts > 0]  # some meta events carry timestamp 0
    first = int(stamped.min()) if len(stamped) else None
    last = int(stamped.max()) if len(stamped) else None
    machine = capture.machine
    processes = capture.processes
    return {
        "file": capture.path,
        "compressed": capture.compressed,
        "bytes": int(len(capture.buffer)),
        "format_version": capture.version,
        "sections": len(capture.sections),
        "machine": {
            "hostname": machine.get("hostname"),
            "num_cpus": machine.get("num_cpus"),
            "memory_bytes": machine.get("memory_size_bytes"),
            "boot_ts": machine.get("boot_ts_epoch") or None,
        } if machine else None,
        "blocks": capture.block_counts(),
        "events": len(capture),
        "events_numbered_by_sysdig_0293": int(capture.event_numbers.max()) if len(capture) else 0,
        "first_ts": first,
        "last_ts": last,
        "duration_ns": (last - first) if first is not None else None,
        "threads": processes.height,
        "processes": int(processes.filter(processes["tid"] == processes["pid"]).height)
        if processes.height else 0,
        "fds": capture.fds.height,
        "users": capture.users.height,
        "groups": capture.groups.height,
        "interfaces": capture.interfaces.height,
        "damage": str(capture.damage) if capture.damage else None,
    }


def _when(ns):
    if ns is None:
        return "-"
    stamp = datetime.datetime.fromtimestamp(ns // 10**9, tz=datetime.timezone.utc)
    return f"{stamp:%Y-%m-%d %H:%M:%S}.{ns % 10**9:09d} UTC ({ns})"


def format_text(d):
    m = d["machine"]
    blocks = ", ".join(f"{k} {v}" for k, v in d["blocks"].items())
    lines = [
        ("file", f"{d['file']} ({'gzip, ' if d['compressed'] else ''}{d['bytes']} bytes "
                 "uncompressed)"),
        ("format", f"{d['format_version']}, {d['sections']} section(s)"),
        ("machine", f"{m['hostname']}, {m['num_cpus']} CPUs, "
                    f"{(m['memory_bytes'] or 0) / 2**30:.1f} GiB" if m else "-"),
        ("blocks", blocks),
        ("events", f"{d['events']} ({d['events_numbered_by_sysdig_0293']} numbered by sysdig "
                   "0.29.3)"),
        ("first", _when(d["first_ts"])),
        ("last", _when(d["last_ts"])),
        ("duration", "-" if d["duration_ns"] is None else f"{d['duration_ns'] / 1e9:.6f} s"),
        ("threads", f"{d['threads']} in {d['processes']} processes"),
        ("fds", str(d["fds"])),
        ("users", f"{d['users']} users, {d['groups']} groups"),
        ("interfaces", str(d["interfaces"])),
    ]
    if d["damage"]:
        lines.append(("damage", d["damage"]))
    return "".join(f"{k:<11} {v}\n" for k, v in lines)


@click.command("info")
@click.argument("path", metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
def info(path, as_json):
    """Describe a capture: format, machine, blocks, events, time span, threads, fds, users."""
    d = describe(scap.open(path))
    click.echo(json.dumps(d, indent=2) if as_json else format_text(d), nl=as_json)
