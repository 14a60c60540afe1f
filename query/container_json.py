"""The JSON of a container event: the one parser both the thread table and the container
fields use, so that what one of them skips the other skips too.

Its text comes from the capture: any bytes, any nesting. libsinsp parses it with jsoncpp,
which refuses more than 1,000 levels of nesting; Python's json fails about as deep with a
RecursionError, which counts as the same refusal here.
"""
import json


def container_info(raw):
    """The "container" object of a container event's JSON parameter (bytes, cut at the first
    NUL or not), or None where it is not JSON, has no such object, or is nested too deep."""
    text = bytes(raw).split(b"\0", 1)[0].decode("utf-8", "replace")
    try:
        info = json.loads(text)["container"]
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
    return info if isinstance(info, dict) else None
