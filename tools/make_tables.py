#!/usr/bin/env python3
"""Regenerate scap/data/{events,flags,names}_*.{tsv,txt} from the derived reference tables.

The reference files (see ../shared/reference/scap-format.md section 5.5) were produced by parsing
the libs C sources; this script only rewrites them in the package's compact form so that the
package never reads anything outside itself at run time.

    python tools/make_tables.py [--reference DIR] [--out DIR]
"""
import argparse
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_REFERENCE = HERE.parent.parent / "shared" / "reference"
DEFAULT_OUT = HERE.parent / "scap" / "data"

LIBS_HEAD = "falcosecurity/libs 48dfd53cd23f95720521d41b89883bbc35c8567f (2026-06-29)"
LIBS_0293 = "falcosecurity/libs e5c53d648f3c4694385bbe488e7d47eaa36c229a (2022-03-16, Debian sysdig 0.29.3)"

_DIRFD = re.compile(r"DIRFD_PARAM\((\d+)\)")


def _strip(prefix, names):
    """'EC_FILE | EC_SYSCALL' -> 'FILE|SYSCALL'; EF_NONE -> ''."""
    parts = [p.strip() for p in names.split("|") if p.strip()]
    parts = [p[len(prefix):] if p.startswith(prefix) else p for p in parts]
    return "|".join(p for p in parts if p != "NONE")


def _param(text):
    """'FSRELPATH:name:NA:DIRFD_PARAM(1)' -> 'name:FSRELPATH:NA:1'."""
    ptype, name, fmt, *info = text.split(":")
    extra = info[0] if info else ""
    m = _DIRFD.fullmatch(extra)
    if m:
        extra = m.group(1)
    return ":".join([name, ptype, fmt] + ([extra] if extra else []))


def convert_events(src, source_desc):
    rows, max_id = [], None
    for line in src.read_text().splitlines():
        if line.startswith("#"):
            m = re.search(r"PPM_EVENT_MAX=(\d+)", line)
            max_id = int(m.group(1)) if m else max_id
            continue
        if not line.strip():
            continue
        evid, direction, _enum, name, category, flags, nparams, params = line.split("\t")
        evid, nparams = int(evid), int(nparams)
        if direction != (">" if evid % 2 == 0 else "<"):
            sys.exit(f"{src}: id {evid} has direction {direction!r}")
        plist = [p for p in params.split(", ") if p]
        if len(plist) < nparams:
            sys.exit(f"{src}: id {evid} lists {len(plist)} params, nparams={nparams}")
        # only the first nparams params exist for readers (0.29.3's seccomp enter lists 2, says 1)
        effective = [_param(p) for p in plist[:nparams]]
        rows.append((evid, name, _strip("EC_", category), _strip("EF_", flags), ", ".join(effective)))
    rows.sort()  # HEAD's designated initializers are not in id order
    if [r[0] for r in rows] != list(range(len(rows))) or (max_id is not None and max_id != len(rows)):
        sys.exit(f"{src}: ids are not dense 0..{max_id}")
    header = [
        f"# scaptool event table: every event id of {source_desc}; PPM_EVENT_MAX={len(rows)}.",
        "# Facts from that commit's driver/event_table.c + ppm_events_public.h; written by tools/make_tables.py.",
        "# id<TAB>name<TAB>categories<TAB>flags<TAB>params as name:TYPE:FMT[:flags table | dirfd index | dyn table]",
    ]
    return "\n".join(header + ["\t".join(map(str, r)) for r in rows]) + "\n"


def convert_flags(src, source_desc):
    out = [
        f"# scaptool flag/enum name tables of {source_desc}, in iteration order (it matters).",
        "# [table] then NAME<TAB>decimal value; written by tools/make_tables.py.",
    ]
    for line in src.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("["):
            out.append(line.split("]")[0] + "]")
            continue
        name, hexval, decval = line.split()
        if int(hexval, 16) != int(decval):
            sys.exit(f"{src}: {name} {hexval} != {decval}")
        out.append(f"{name}\t{decval}")
    return "\n".join(out) + "\n"


_SECTION_NAMES = {"errno": "errno", "signal": "signal", "ppm_sc": "ppm_sc_0293", "ppm_sc_libs_head": "ppm_sc_libs"}


def convert_names(src):
    out = [
        f"# scaptool name tables: errno and signal names of libsinsp in {LIBS_0293},",
        f"# PPM_SC syscall names of that commit (ppm_sc_0293) and of {LIBS_HEAD} (ppm_sc_libs).",
        "# [table] then value<TAB>name; written by tools/make_tables.py.",
    ]
    for line in src.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("["):
            out.append(f"[{_SECTION_NAMES[line[1:].split(']')[0]]}]")
            continue
        value, name = line.split("\t")
        out.append(f"{int(value)}\t{name}")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=pathlib.Path, default=DEFAULT_REFERENCE)
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    ref, out = args.reference, args.out
    out.mkdir(parents=True, exist_ok=True)
    outputs = {
        "events_libs.tsv": convert_events(ref / "event_table_libs_head.tsv", LIBS_HEAD),
        "events_0293.tsv": convert_events(ref / "event_table_0293_full.tsv", LIBS_0293),
        "flags_libs.txt": convert_flags(ref / "flags_tables_libs_head.txt", LIBS_HEAD),
        "flags_0293.txt": convert_flags(ref / "flags_tables_0293.txt", LIBS_0293),
        "names_0293.txt": convert_names(ref / "name_tables_0293.txt"),
    }
    for name, text in outputs.items():
        (out / name).write_text(text)
        print(f"wrote {out / name} ({text.count(chr(10))} lines)")
    check_syscall_table(out)


def check_syscall_table(out):
    """Last step: scap/data/syscalls_0293.txt (PPM_SC id -> EC category, libscap's
    g_syscall_info_table of 0.29.3) is NOT generated: the reference folder has no copy of that
    table, so it is a facts table transcribed by hand from the libs source
    (userspace/libscap/syscall_info_table.c). This step only checks that it still lines up with
    the PPM_SC names just written; it never fetches anything."""
    table = out / "syscalls_0293.txt"
    if not table.exists():
        print(f"note: {table} missing (hand-transcribed facts table, not generated here)")
        return
    ppm_sc, section = {}, None
    for line in (out / "names_0293.txt").read_text().splitlines():
        if line.startswith("["):
            section = line
        elif section == "[ppm_sc_0293]" and line and not line.startswith("#"):
            value, name = line.split("\t")
            ppm_sc[int(value)] = name
    rows = [line.split("\t") for line in table.read_text().splitlines()
            if line and not line.startswith("#")]
    if {int(r[0]): r[1] for r in rows} != ppm_sc:
        sys.exit(f"{table}: ids/names differ from [ppm_sc_0293] of names_0293.txt")
    print(f"checked {table} ({len(rows)} syscalls, hand-transcribed)")


if __name__ == "__main__":
    main()
