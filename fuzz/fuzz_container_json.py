"""Fuzz the JSON of container events, as a capture holds it: any bytes, any nesting. It is
either refused (None: the event describes no container) or described by the fields
container.* show; nothing else."""
import harness

harness.instrumented()

from scaptool.query.container_json import container_info  # noqa: E402
from scaptool.query.fields_container import _description  # noqa: E402


def test_one(data):
    info = container_info(data)
    if info is not None:
        assert isinstance(info, dict)
        described = _description(info)
        assert isinstance(described, dict)


def seeds():
    return {
        "docker": b'{"container":{"id":"3ad7b26ded6d","type":0,"name":"web","image":"nginx",'
                  b'"imageid":"abc","privileged":false,"Mounts":[{"Source":"/a",'
                  b'"Destination":"/b","Mode":"","RW":true,"Propagation":"rprivate"}],'
                  b'"ip":"172.17.0.2","labels":{"a":"b"}}}\x00',
        "deep": b'{"container":{"id":"x","name":' + b"[" * 500 + b"]" * 500 + b"}}",
        "odd": b'{"container":{"id":7,"Mounts":{"x":1},"privileged":"yes","type":99}}',
    }


if __name__ == "__main__":
    harness.run(test_one, seeds)
