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


# copy_and_sanitize_path writes '.' for every byte that is not printable ASCII, as it folds
_DOTTED = {c: "." for c in [*range(0x20), 0x7F]}


def sanitize(path):
    """Every byte of `path` that is not printable ASCII as '.', as sinsp stores a joined path
    (a control character in a file name cannot reach a terminal through an fd name or cwd).
    A character decoding replaced (U+FFFD) stood for one byte."""
    if path.isascii():
        return path if path.isprintable() else path.translate(_DOTTED)
    return "".join(c if " " <= c <= "~" else
                   "." if c == "\ufffd" else "." * len(c.encode("utf-8", "surrogateescape"))
                   for c in path)


def normalize(path):
    """`path` folded, then sanitized: a '.' written for a byte is not a path's '.'."""
    return sanitize(_folded(path))


def _folded(path):
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
