"""The per-event-type summary table of ``sysdig -r FILE -S`` (Debian sysdig 0.29.3).

How sysdig 0.29.3 builds the table (userspace/sysdig/sysdig.cpp at tag 0.29.3):

* ``-S`` creates a vector of entries: one per event id ``0 .. PPM_EVENT_MAX-1`` (336 with
  libs e5c53d6), then ``2 * PPM_SC_MAX`` entries (PPM_SC_MAX = 329) for the generic
  ``syscall`` events (ids 0/1), keyed by ``2 * ppm_sc + (1 if exit else 0)``. Each entry
  holds an id, an "is generic" flag and a call counter, all starting at zero.
* Every event ``sinsp::next`` returns successfully is counted, before ``-q``, before the
  display filter and before internal (EC_INTERNAL, e.g. ``procinfo``) events are skipped.
  Event types >= PPM_EVENT_MAX never reach sysdig (libscap drops them). The run of
  "initial state" events (container 228/272/324; user/group events are >= 336 in 0.29.3)
  at the start of each section is consumed while the file is opened and is not counted
  (see :func:`initial_state_mask`); container events later in a section are counted.
  A generic event is counted in the entry of the PPM_SC id found in its first parameter.
* At exit the whole vector is sorted with ``std::sort`` and a comparator that only looks at
  the counters (``a.ncalls > b.ncalls``). ``std::sort`` is not stable, so the order of
  rows with equal counts is whatever libstdc++'s introsort produces; :func:`libstdcxx_sort`
  replays that algorithm step by step (GCC 12 / Debian bookworm).
* At most 100 rows are printed, stopping at the first zero counter. A row is ``"> "`` or
  ``"< "`` (even id = enter), the name cut or space-padded to exactly 16 characters, then
  the count in decimal. Generic rows take their name from the PPM_SC syscall name table.
"""

from __future__ import annotations

from collections.abc import Callable, MutableSequence, Sequence
from typing import Any, TypeVar

import numpy as np

from scaptool.scap import sysdig0293

__all__ = [
    "PPM_EVENT_MAX_0293",
    "PPM_SC_MAX_0293",
    "MAX_ROWS",
    "HEADER",
    "INITIAL_STATE_TYPES_0293",
    "initial_state_mask",
    "summary_counts",
    "summary_order",
    "format_summary",
    "summary_text",
    "libstdcxx_sort",
]

#: Number of event ids and of PPM_SC codes sysdig 0.29.3 knows (libs e5c53d6)
PPM_EVENT_MAX_0293 = sysdig0293.EVENT_MAX
PPM_SC_MAX_0293 = sysdig0293.SC_MAX
#: sysdig prints at most this many rows.
MAX_ROWS = 100
#: Name field width; longer names are cut.
NAME_WIDTH = 16

HEADER = "----------------------\n" + "Event".ljust(NAME_WIDTH) + "#Calls\n" + "----------------------\n"

GENERIC_E = 0
GENERIC_X = 1

#: Event ids sinsp 0.29.3 consumes at open when they lead a section
INITIAL_STATE_TYPES_0293 = sysdig0293.LEADING_STATE_TYPES

T = TypeVar("T")


# --------------------------------------------------------------------------------------
# libstdc++ std::sort, replayed
# --------------------------------------------------------------------------------------

_THRESHOLD = 16  # libstdc++ _S_threshold


def libstdcxx_sort(items: MutableSequence[T], comp: Callable[[T, T], Any]) -> MutableSequence[T]:
    """Sort ``items`` in place exactly as libstdc++'s ``std::sort(first, last, comp)`` does.

    ``comp(a, b)`` is the "less" predicate of the C++ call (for sysdig's summary,
    ``a.ncalls > b.ncalls``). The result is the same permutation GCC 12's libstdc++
    produces, including the placement of elements that compare equal: introsort with
    threshold 16, median-of-three pivot moved to the front, unguarded Hoare partition,
    heapsort fallback after ``2 * floor(log2 n)`` levels, then a final insertion sort.
    Like the C++ code, it assumes ``comp`` is a strict weak ordering (otherwise the
    unguarded loops could run off the ends; here that raises ``IndexError``).

    Returns ``items`` for convenience.
    """
    n = len(items)
    if n > 1:
        _introsort_loop(items, 0, n, 2 * (n.bit_length() - 1), comp)
        _final_insertion_sort(items, 0, n, comp)
    return items


def _introsort_loop(a, first, last, depth_limit, comp):
    while last - first > _THRESHOLD:
        if depth_limit == 0:
            # std::__partial_sort(first, last, last): make_heap, then sort_heap
            _make_heap(a, first, last, comp)
            _sort_heap(a, first, last, comp)
            return
        depth_limit -= 1
        cut = _unguarded_partition_pivot(a, first, last, comp)
        _introsort_loop(a, cut, last, depth_limit, comp)
        last = cut


def _unguarded_partition_pivot(a, first, last, comp):
    mid = first + (last - first) // 2
    _move_median_to_first(a, first, first + 1, mid, last - 1, comp)
    return _unguarded_partition(a, first + 1, last, first, comp)


def _move_median_to_first(a, result, i, j, k, comp):
    if comp(a[i], a[j]):
        if comp(a[j], a[k]):
            pick = j
        elif comp(a[i], a[k]):
            pick = k
        else:
            pick = i
    elif comp(a[i], a[k]):
        pick = i
    elif comp(a[j], a[k]):
        pick = k
    else:
        pick = j
    a[result], a[pick] = a[pick], a[result]


def _unguarded_partition(a, first, last, pivot, comp):
    while True:
        while comp(a[first], a[pivot]):
            first += 1
        last -= 1
        while comp(a[pivot], a[last]):
            last -= 1
        if not first < last:
            return first
        a[first], a[last] = a[last], a[first]
        first += 1


def _make_heap(a, first, last, comp):
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(a, first, parent, length, a[first + parent], comp)
        if parent == 0:
            return
        parent -= 1


def _adjust_heap(a, first, hole, length, value, comp):
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if comp(a[first + child], a[first + child - 1]):
            child -= 1
        a[first + hole] = a[first + child]
        hole = child
    if (length & 1) == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[first + hole] = a[first + child - 1]
        hole = child - 1
    # std::__push_heap
    parent = (hole - 1) // 2
    while hole > top and comp(a[first + parent], value):
        a[first + hole] = a[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    a[first + hole] = value


def _sort_heap(a, first, last, comp):
    while last - first > 1:
        last -= 1
        # std::__pop_heap(first, last, last)
        value = a[last]
        a[last] = a[first]
        _adjust_heap(a, first, 0, last - first, value, comp)


def _final_insertion_sort(a, first, last, comp):
    if last - first > _THRESHOLD:
        _insertion_sort(a, first, first + _THRESHOLD, comp)
        for i in range(first + _THRESHOLD, last):
            _unguarded_linear_insert(a, i, comp)
    else:
        _insertion_sort(a, first, last, comp)


def _insertion_sort(a, first, last, comp):
    if first == last:
        return
    for i in range(first + 1, last):
        if comp(a[i], a[first]):
            val = a[i]
            a[first + 1 : i + 1] = a[first:i]
            a[first] = val
        else:
            _unguarded_linear_insert(a, i, comp)


def _unguarded_linear_insert(a, last, comp):
    val = a[last]
    nxt = last - 1
    while comp(val, a[nxt]):
        a[last] = a[nxt]
        last = nxt
        nxt -= 1
    a[last] = val


# --------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------


def initial_state_mask(
    types: Sequence[int] | np.ndarray,
    section: Sequence[int] | np.ndarray | None = None,
    *,
    starts: Sequence[int] | None = None,
    state_types: frozenset[int] = INITIAL_STATE_TYPES_0293,
    event_max: int = PPM_EVENT_MAX_0293,
) -> np.ndarray:
    """Boolean mask of the events sysdig never returns because they lead their section.

    ``types`` are the event types in file order (including ids >= ``event_max``, which are
    transparent here since libscap drops them before sinsp looks); the sections are given
    either as ``section``, the section number of each event, or as ``starts``, the index of
    each section's first event; neither means one section.
    The mask is True for the initial run of ``state_types`` events of every section and
    for ids >= ``event_max``, i.e. for every event :func:`summary_counts` must not see.
    """
    t = np.asarray(types).ravel()
    mask = t >= event_max
    n = len(t)
    if n == 0:
        return mask
    if starts is None:
        if section is None:
            starts = [0]
        else:
            sec = np.asarray(section).ravel()
            starts = np.flatnonzero(np.r_[True, sec[1:] != sec[:-1]]).tolist()
    for a, b in sysdig0293.leading_state_runs(t, starts, state_types, event_max):
        mask[a:b] = True
    return mask


def summary_counts(
    types: Sequence[int] | np.ndarray,
    generic_sc_ids: Sequence[int] | np.ndarray | None = None,
    *,
    event_max: int = PPM_EVENT_MAX_0293,
    sc_max: int = PPM_SC_MAX_0293,
) -> np.ndarray:
    """Call counters in sysdig's entry layout, as a ``uint64`` array of ``event_max + 2*sc_max``.

    ``types`` holds the event type id of every event sysdig returns, in any order (ids
    >= ``event_max`` are ignored, as libscap drops them). Leave out the events
    :func:`initial_state_mask` flags: the counters cannot tell a leading container event
    from a later one. ``generic_sc_ids`` gives the
    PPM_SC code (param 0, u16) of the generic ``syscall`` events (types 0 and 1); it is
    either aligned with ``types`` (values at non-generic positions are ignored) or holds
    just the generic events' codes, in the order they occur in ``types``.

    Entry ``i < event_max`` counts event id ``i`` (entries 0 and 1 stay zero: sysdig books
    generic events under their syscall). Entry ``event_max + 2*sc + d`` counts generic
    events of PPM_SC ``sc``, ``d`` = 0 for enter, 1 for exit. Codes >= ``sc_max`` fall
    outside sysdig's vector (undefined behaviour in C++); they are not counted.
    """
    t = np.asarray(types).ravel()
    counts = np.zeros(event_max + 2 * sc_max, dtype=np.uint64)
    by_type = np.zeros(event_max, dtype=np.int64)
    for lo in range(0, len(t), 1 << 20):  # bounded temporaries: bincount widens to intp
        chunk = t[lo:lo + (1 << 20)]
        chunk = chunk[(chunk >= 0) & (chunk < event_max)]
        by_type += np.bincount(chunk, minlength=event_max)[:event_max]
    n_generic = int(by_type[GENERIC_E] + by_type[GENERIC_X])
    by_type[GENERIC_E] = by_type[GENERIC_X] = 0
    counts[:event_max] = by_type

    if n_generic == 0:
        return counts
    if generic_sc_ids is None:
        raise ValueError("generic syscall events present but no generic_sc_ids given")
    types_all = np.asarray(types).ravel()
    sc = np.asarray(generic_sc_ids).astype(np.int64, copy=False).ravel()
    if len(sc) == len(types_all):
        keep = (types_all == GENERIC_E) | (types_all == GENERIC_X)
        sc = sc[keep]
        gtypes = types_all[keep]
    elif len(sc) == n_generic:
        gtypes = types_all[(types_all == GENERIC_E) | (types_all == GENERIC_X)]
    else:
        raise ValueError(
            f"generic_sc_ids has {len(sc)} values; expected {len(types_all)} (aligned) "
            f"or {n_generic} (one per generic event)"
        )
    sc = sc & 0xFFFF  # sysdig reads the value as a 16-bit integer
    ok = sc < sc_max
    slots = 2 * sc[ok] + (gtypes[ok] & 1)
    counts[event_max:] = np.bincount(slots, minlength=2 * sc_max)[: 2 * sc_max]
    return counts


# --------------------------------------------------------------------------------------
# Ordering and printing
# --------------------------------------------------------------------------------------


def summary_order(counts: Sequence[int] | np.ndarray) -> list[int]:
    """Entry indices in the order sysdig's ``std::sort`` leaves them (all entries)."""
    c = [int(x) for x in np.asarray(counts).ravel()]
    order = list(range(len(c)))
    libstdcxx_sort(order, lambda i, j: c[i] > c[j])
    return order


def _default_event_name(event_id: int) -> str:
    from scaptool.scap.eventtable import sysdig_0293  # written alongside; imported lazily

    return sysdig_0293()[event_id].name


def _default_syscall_name(sc_id: int) -> str:
    from scaptool.scap.names import syscall_name  # written alongside; imported lazily

    return syscall_name(sc_id, "0293")


def format_summary(
    counts: Sequence[int] | np.ndarray,
    *,
    event_max: int = PPM_EVENT_MAX_0293,
    max_rows: int = MAX_ROWS,
    event_name: Callable[[int], str] | None = None,
    syscall_name: Callable[[int], str] | None = None,
) -> str:
    """The exact text ``sysdig -S`` prints for ``counts`` (from :func:`summary_counts`).

    ``event_name(id)`` and ``syscall_name(ppm_sc)`` default to the 0.29.3 tables of
    :mod:`scap.eventtable` and :mod:`scap.names`.
    """
    ev_name = event_name or _default_event_name
    sc_name = syscall_name or _default_syscall_name
    c = np.asarray(counts).ravel()
    out = [HEADER]
    for idx in summary_order(c)[:max_rows]:
        n = int(c[idx])
        if n == 0:
            break
        if idx < event_max:
            entry_id = idx
            name = ev_name(idx)
        else:
            entry_id = idx - event_max
            name = sc_name(entry_id // 2)
        prefix = "> " if entry_id % 2 == 0 else "< "
        out.append(f"{prefix}{name[:NAME_WIDTH].ljust(NAME_WIDTH)}{n}\n")
    return "".join(out)


def summary_text(
    types: Sequence[int] | np.ndarray,
    generic_sc_ids: Sequence[int] | np.ndarray | None = None,
    **name_funcs: Callable[[int], str] | None,
) -> str:
    """``format_summary(summary_counts(types, generic_sc_ids))`` with the 0.29.3 layout."""
    return format_summary(summary_counts(types, generic_sc_ids), **name_funcs)


def capture_summary(capture, selected=None):
    """The text of `sysdig -r CAPTURE -S -q` for an opened scap.Capture; `selected` (a bool
    per event): only those events count, as a filter or -n leaves them to sysdig's counters."""
    return format_summary(capture_summary_counts(capture, selected))


def capture_summary_counts(capture, selected=None):
    """The counters behind capture_summary (see summary_counts): those of several captures
    add up to the summary sysdig prints once after reading them one after the other."""
    types = capture.event_types
    # summary_counts ignores ids >= PPM_EVENT_MAX itself; what else the mask drops (the
    # leading container events of each section) is usually nothing, so copy only if needed
    leading = initial_state_mask(types, starts=[s.first_event for s in capture.sections])
    leading &= types < PPM_EVENT_MAX_0293
    counted = ~leading if leading.any() else None
    if selected is not None:
        counted = np.asarray(selected, dtype=bool) & (True if counted is None else counted)
    generic = types <= 1
    if counted is not None:
        generic &= counted
        types = types[counted]
    rows = np.flatnonzero(generic)
    sc_ids = None
    if len(rows):
        # the PPM_SC id is parameter 0 of the generic events: decode only those events
        from scaptool.scap.events import decode_headers, param_slices
        from scaptool.scap.scan import Layout
        layout = capture.layout
        subset = Layout(layout.sections, layout.event_offsets4[rows], layout.event_kinds[rows],
                        layout.end)
        headers, _ = decode_headers(capture.buffer, subset)
        offsets, lengths, present = param_slices(capture.buffer, headers, 0)
        ok = present & (lengths >= 2)
        buf = capture.buffer
        sc_ids = np.full(len(rows), -1, dtype=np.int64)
        sc_ids[ok] = buf[offsets[ok]].astype(np.int64) | \
            (buf[offsets[ok] + 1].astype(np.int64) << 8)
    return summary_counts(types, sc_ids)
