"""Probe points and the choice of a mechanism for each: pure functions.

A BPF object may implement one *probe point* with several programs, one
set per mechanism, named ``<point>[_e|_x]__<mechanism>`` (see
docs/design.md).  This module groups program names into points and,
given the answers of the feature probes, orders the mechanisms to try for
each point.  Nothing here touches the kernel, so it is tested without root.
"""

import dataclasses
from collections.abc import Mapping

#: Mechanisms, best first.
MECHANISMS = ("fentry", "kprobe", "tp_btf", "raw_tp", "tp")

#: The feature probe (engine.features) each mechanism depends on.
FEATURE_OF = {
    "fentry": "fentry",
    "kprobe": "kprobe",
    "tp_btf": "tp_btf",
    "raw_tp": "raw_tp",
    "tp": "tracepoint",
}

# libbpf section prefixes -> the mechanism (or, for programs that are
# points of their own, the kind) they stand for.
_SECTION_KINDS = {
    "fentry": "fentry", "fexit": "fentry",
    "fentry.s": "fentry", "fexit.s": "fentry",
    "kprobe": "kprobe", "kretprobe": "kprobe",
    "tp_btf": "tp_btf",
    "raw_tp": "raw_tp", "raw_tracepoint": "raw_tp",
    "tp": "tp", "tracepoint": "tp",
    "iter": "iter", "iter.s": "iter",
    "lsm": "lsm", "lsm.s": "lsm",
}


def section_kind(section):
    """``"fentry"`` for ``"fexit/ovl_copy_up_one"``; unknown prefixes as is."""
    prefix = section.split("/", 1)[0]
    return _SECTION_KINDS.get(prefix, prefix)


def split_name(prog):
    """``(point, mechanism)`` of a program name.

    ``dt_copyup_e__fentry`` -> ``("dt_copyup", "fentry")``; a name without
    ``__`` is a point of its own: ``("dt_iter_tasks", None)``.
    """
    base, sep, mech = prog.rpartition("__")
    if not sep:
        return prog, None
    if mech not in MECHANISMS:
        raise ValueError(
            f"program {prog}: unknown mechanism suffix __{mech} (expected "
            f"one of {', '.join(MECHANISMS)})")
    if not base:
        raise ValueError(f"program {prog}: no point name before __{mech}")
    if base.endswith(("_e", "_x")):
        base = base[:-2]
    return base, mech


@dataclasses.dataclass(frozen=True)
class Point:
    """A probe point and its programs, by mechanism.

    ``programs`` maps a mechanism to the names of its programs; a fixed
    point (one program without ``__``) maps ``None`` to that program.
    """

    name: str
    programs: Mapping

    @property
    def fixed(self):
        return None in self.programs

    @property
    def mechanisms(self):
        """The point's mechanisms, best first (empty for a fixed point)."""
        return tuple(m for m in MECHANISMS if m in self.programs)


def group_points(programs):
    """Group programs into points.

    ``programs`` is an iterable of names, or of ``(name, section)`` pairs;
    with sections, a suffix that contradicts the section (``__tp`` on a
    ``fentry/`` program) is an error.  Returns ``{point: Point}`` in the
    order the points first appear.
    """
    grouped = {}
    for item in programs:
        name, section = (item, None) if isinstance(item, str) else item
        point, mech = split_name(name)
        if mech is not None and section is not None:
            kind = section_kind(section)
            if kind != mech:
                raise ValueError(
                    f"program {name}: suffix __{mech} but section "
                    f"{section!r} is a {kind} program")
        by_mech = grouped.setdefault(point, {})
        if (None in by_mech) != (mech is None) and by_mech:
            raise ValueError(
                f"program {name}: point {point} mixes a program without "
                "a mechanism suffix with suffixed ones")
        if mech is None and None in by_mech:
            raise ValueError(f"program {name} is defined twice")
        by_mech.setdefault(mech, []).append(name)
    return {p: Point(p, {m: tuple(n) for m, n in by_mech.items()})
            for p, by_mech in grouped.items()}


def _for_point(spec, point):
    """The mechanisms a ``allow``/``exclude`` spec names for ``point``.

    A spec is None (no constraint), an iterable of mechanisms for every
    point, or a mapping of point name to such an iterable.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = (spec,)
    if isinstance(spec, Mapping):
        if point not in spec:
            return None
        spec = spec[point]
        if isinstance(spec, str):
            spec = (spec,)
    return frozenset(spec)


def candidates(point, features, allow=None, exclude=None):
    """Mechanisms to try for ``point``, in order.

    ``features`` maps a feature name to an object with an ``outcome``
    attribute or directly to an :class:`~dockertrace.engine.features.
    Outcome` (or its string value).  Mechanisms whose feature is not
    supported are left out; those the probes could not tell about come
    after the supported ones, since trying them may fail.  A fixed point
    has no choice and yields ``[None]``.
    """
    if point.fixed:
        return [None]
    allowed = _for_point(allow, point.name)
    excluded = _for_point(exclude, point.name) or frozenset()
    for mech in (allowed or frozenset()) | excluded:
        if mech not in MECHANISMS:
            raise ValueError(f"unknown mechanism {mech!r}")

    sure, unsure = [], []
    for mech in point.mechanisms:
        if allowed is not None and mech not in allowed:
            continue
        if mech in excluded:
            continue
        outcome = outcome_of(features.get(FEATURE_OF[mech]))
        if outcome == "supported":
            sure.append(mech)
        elif outcome != "not supported":
            unsure.append(mech)
    return sure + unsure


def outcome_of(answer):
    """``"supported"``, ``"not supported"`` or ``"unknown"``."""
    if answer is None:
        return "unknown"
    answer = getattr(answer, "outcome", answer)
    return getattr(answer, "value", answer)


def choose(points, features, allow=None, exclude=None):
    """``{point: [mechanisms to try, best first]}`` for every point."""
    return {name: candidates(p, features, allow, exclude)
            for name, p in points.items()}
