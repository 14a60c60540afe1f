"""Machine info block (MI, 0x201): a fixed 180-byte struct.

For two weeks in 2023 libs master wrote a longer struct; to read such files anyway each field is
read only if the body has room for it and whatever follows the 180 bytes is kept raw.
"""
from construct import Adapter, Bytes, GreedyBytes, If, Int32ul, Int64ul, Struct

from .common import IfRoom, Raw

HOSTNAME_SIZE = 128
BODY_SIZE = 180


class NulPadded(Adapter):
    """A fixed-size NUL-padded C string as bytes without the padding.

    If bytes other than NUL follow the first NUL (stale buffer content), the whole field is kept
    raw instead so that it still round-trips; building pads with NULs either way.
    """

    def __init__(self, size):
        super().__init__(Bytes(size))
        self.size = size

    def _decode(self, obj, context, path):
        text, _, rest = obj.partition(b"\0")
        return text if rest.count(0) == len(rest) else obj

    def _encode(self, obj, context, path):
        return obj.ljust(self.size, b"\0")


FIELDS = (
    ("num_cpus", Int32ul),
    ("memory_size_bytes", Int64ul),
    ("max_pid", Int64ul),
    ("hostname", NulPadded(HOSTNAME_SIZE)),
    ("boot_ts_epoch", Int64ul),   # reserved1 before libs 0.10: 0 in older files
    ("flags", Int64ul),           # bit 0: PPM_BPF_STATS_ENABLED; reserved2 before libs 0.11
    ("reserved3", Int64ul),
    ("reserved4", Int64ul),
)


def _fields_while_room():
    """A short body is a prefix of the struct: once a field does not fit, none after it is read
    (the bytes left stay in `rest`)."""
    fields, previous = [], None
    for name, field in FIELDS:
        field = IfRoom(field)
        if previous is not None:
            field = If(lambda ctx, previous=previous: ctx[previous] is not None, field)
        fields.append(name / field)
        previous = name
    return fields


MACHINE_INFO = Struct(*_fields_while_room(), "rest" / Raw(GreedyBytes))
