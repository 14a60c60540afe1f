"""Block type ids of the scap format (pcapng-style framing) and their names.

The `_INT` ids are the pre-release numbers used in early 2014; readers still accept them.
"""

SHB = 0x0A0D0D0A
MI = 0x201
PL_V1 = 0x202
FDL_V1 = 0x203
EV = 0x204
IL_V1 = 0x205
UL_V1 = 0x206
PL_V2 = 0x207
EVF = 0x208
PL_V3 = 0x209
PL_V4 = 0x210
PL_V5 = 0x211
PL_V6 = 0x212
PL_V7 = 0x213
PL_V8 = 0x214
PL_V9 = 0x215
EV_V2 = 0x216
EVF_V2 = 0x217
FDL_V2 = 0x218
IL_V2 = 0x219
UL_V2 = 0x220
EV_V2_LARGE = 0x221
EVF_V2_LARGE = 0x222

MI_INT = 0x8002ABCD
PL_V1_INT = 0x8000ABCD
PL_V2_INT = 0x8013ABCD
PL_V3_INT = 0x8014ABCD
FDL_V1_INT = 0x8001ABCD
EV_INT = 0x8010ABCD
IL_V1_INT = 0x8011ABCD
UL_V1_INT = 0x8012ABCD

NAMES = {
    SHB: "SHB", MI: "MI", PL_V1: "PL_V1", FDL_V1: "FDL", EV: "EV", IL_V1: "IL", UL_V1: "UL",
    PL_V2: "PL_V2", EVF: "EVF", PL_V3: "PL_V3", PL_V4: "PL_V4", PL_V5: "PL_V5", PL_V6: "PL_V6",
    PL_V7: "PL_V7", PL_V8: "PL_V8", PL_V9: "PL_V9", EV_V2: "EV_V2", EVF_V2: "EVF_V2",
    FDL_V2: "FDL_V2", IL_V2: "IL_V2", UL_V2: "UL_V2", EV_V2_LARGE: "EV_V2_LARGE",
    EVF_V2_LARGE: "EVF_V2_LARGE", MI_INT: "MI_INT", PL_V1_INT: "PL_V1_INT",
    PL_V2_INT: "PL_V2_INT", PL_V3_INT: "PL_V3_INT", FDL_V1_INT: "FDL_INT", EV_INT: "EV_INT",
    IL_V1_INT: "IL_INT", UL_V1_INT: "UL_INT",
}

# The old pre-release ids mean exactly what their official counterparts mean.
CANONICAL = {
    MI_INT: MI, PL_V1_INT: PL_V1, PL_V2_INT: PL_V2, PL_V3_INT: PL_V3, FDL_V1_INT: FDL_V1,
    EV_INT: EV, IL_V1_INT: IL_V1, UL_V1_INT: UL_V1,
}

PROCESS_LISTS = {PL_V1: 1, PL_V2: 2, PL_V3: 3, PL_V4: 4, PL_V5: 5, PL_V6: 6, PL_V7: 7,
                 PL_V8: 8, PL_V9: 9}
FD_LISTS = {FDL_V1: 1, FDL_V2: 2}
INTERFACE_LISTS = {IL_V1: 1, IL_V2: 2}
USER_LISTS = {UL_V1: 1, UL_V2: 2}
# the header-phase blocks libscap reads; it skips any other
METADATA_BLOCKS = {MI, *PROCESS_LISTS, *FD_LISTS, *INTERFACE_LISTS, *USER_LISTS}

# Event blocks: (header version, has a flags field).
EVENT_BLOCKS = {
    EV: (1, False), EVF: (1, True), EV_V2: (2, False), EVF_V2: (2, True),
    EV_V2_LARGE: (2, False), EVF_V2_LARGE: (2, True),
}


# Event block kinds, one byte per event in the reader's columns: bit 0 = a flags field,
# bit 1 = a V2 record header, bit 2 = a _LARGE block id.
KIND_OF = {EV: 0, EV_INT: 0, EVF: 1, EV_V2: 2, EVF_V2: 3, EV_V2_LARGE: 6, EVF_V2_LARGE: 7}
BLOCK_OF_KIND = {kind: block for block, kind in KIND_OF.items() if block != EV_INT}


def canonical(block_type):
    return CANONICAL.get(block_type, block_type)


def name(block_type):
    return NAMES.get(block_type, f"0x{block_type:08X}")
