"""Path arithmetic as libsinsp does it: joining a relative path to a directory and folding
`//`, `./` and `../` (never above /).

sinsp joins paths in buffers of SCAP_MAX_PATH_SIZE (1024) bytes and gives up, with the name
/PATH_TOO_LONG, when the directory, the name, its NUL and one more byte would not fit, before
any folding. The directory counts even when the name is absolute and replaces it. What sysdig
0.29.3 shows (checked on captures written for it): an open's fd name with the directory the
open was relative to (the cwd, the dirfd's name, or "." for an absolute name); a cwd changed
by chdir, or read from the process list, with the previous cwd (none for the list).
"""

MAX_PATH = 1024
TOO_LONG = "/PATH_TOO_LONG"


def too_long(directory, name, nul=True):
    """Would sinsp's concatenate_paths refuse to join these (lengths in bytes)?"""
    size = len(directory.encode("utf-8", "surrogateescape")) + \
        len(name.encode("utf-8", "surrogateescape"))
    return size + nul + 1 > MAX_PATH


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


def open_path(directory, name):
    """The fd name of an open of `name` relative to `directory` (as sysdig names it)."""
    if too_long(directory or "", name):
        return TOO_LONG
    return concatenate(directory, name)


def change_dir(cwd, path, nul=True):
    """The cwd after chdir(path) from `cwd` (or a cwd read from the process list, with
    cwd "" and no NUL), ending in '/'."""
    if too_long(cwd or "", path or "", nul):
        return TOO_LONG + "/"
    return join_cwd(cwd, path)


def join_cwd(base, path):
    """A new working directory: `path` resolved against `base`, always ending in '/'."""
    full = (path or "") if (path or "").startswith("/") else (base or "") + (path or "")
    out = normalize(full)
    return out if out.endswith("/") else out + "/"
