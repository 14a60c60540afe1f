"""Fuzz the whole-capture reader: block framing, the metadata parsers (machine, process, fd,
user and interface lists of every version), event decoding with every parameter type, the
state sysdig keeps (threads, fds, containers) and the fields of sysdig's lines."""
import harness

harness.instrumented()

from scaptool import scap  # noqa: E402
from scaptool.query import api  # noqa: E402

FIELDS = ["evt.num", "evt.time", "evt.cpu", "proc.name", "thread.tid", "evt.dir",
          "evt.type", "evt.info", "fd.name", "proc.cmdline", "proc.cwd", "container.name",
          "user.name", "fd.sip", "evt.buffer"]


def test_one(data):
    path = harness.scratch_path()
    with open(path, "wb") as f:
        f.write(data)
    try:
        with scap.open(path) as capture:
            for table in ("machine", "processes", "fds", "users", "groups", "interfaces"):
                getattr(capture, table)
            api.frame(capture, FIELDS, all_events=True)
    except scap.ScapError:
        pass


if __name__ == "__main__":
    import seeds
    harness.run(test_one, seeds.captures)
