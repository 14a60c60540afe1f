"""Path arithmetic as libsinsp does it: joining a relative path to a directory and folding
`//`, `./` and `../` (never above /)."""


def normalize(path):
    absolute = path.startswith("/")
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    out = "/".join(parts)
    return "/" + out if absolute else out


def concatenate(directory, name):
    """Full path of `name` opened relative to `directory`; with no directory, just folded."""
    if name.startswith("/") or not directory:
        return normalize(name)
    return normalize(directory + "/" + name)


def join_cwd(base, path):
    """A new working directory: `path` resolved against `base`, always ending in '/'."""
    full = (path or "") if (path or "").startswith("/") else (base or "") + (path or "")
    out = normalize(full)
    return out if out.endswith("/") else out + "/"
