"""Verdicts: a few figures of the suite judged against stated thresholds.

Each threshold is written out in the report with its rule and the reason
for its numbers, so a reader can disagree with a line instead of having
to trust a colour. A threshold names the ``Figure.key`` values it reads
(the first one the suite produced wins); a key the suite did not produce
gives "not measured", and figures no threshold names are simply shown in
their section.
"""

from dataclasses import dataclass
from typing import Optional

GRADES = ("excellent", "good", "fair", "poor")
NOT_MEASURED = "not measured"

# Factors to a base unit per dimension, so a threshold stated in ms can
# judge a figure the suite reports in us or s.
_UNITS = {
    "ns": ("time", 1e-9), "us": ("time", 1e-6), "µs": ("time", 1e-6),
    "ms": ("time", 1e-3), "s": ("time", 1.0),
    "B": ("size", 1.0), "KiB": ("size", 1024.0),
    "MiB": ("size", 1024.0 ** 2), "GiB": ("size", 1024.0 ** 3),
    "MiB/s": ("rate", 1024.0 ** 2), "GiB/s": ("rate", 1024.0 ** 3),
    "%": ("share", 0.01), "count": ("count", 1.0), "": ("count", 1.0),
}


def convert(value, unit, to_unit):
    """``value`` in ``unit`` expressed in ``to_unit``; None when the two
    do not measure the same thing."""
    if unit == to_unit:
        return value
    a, b = _UNITS.get(unit), _UNITS.get(to_unit)
    if a is None or b is None or a[0] != b[0]:
        return None
    return value * a[1] / b[1]


@dataclass(frozen=True)
class Threshold:
    #: Figure keys this threshold reads, in order of preference.
    keys: tuple
    #: What is judged, in words.
    measure: str
    unit: str
    #: Upper limits of excellent, good, fair (lower is better) or lower
    #: limits of them (higher is better); past the last, poor. ``None``
    #: skips a grade (an audit finding is never "good").
    limits: tuple
    #: Why these numbers: the source or the reasoning, one or two
    #: sentences that the report prints.
    rationale: str
    higher_is_better: bool = False
    #: Integer counts read better as "at most 0" than as "under 1".
    inclusive: bool = False

    def grade(self, value):
        for limit, grade in zip(self.limits, GRADES):
            if limit is None:
                continue
            if self.higher_is_better:
                ok = value >= limit if self.inclusive else value > limit
            else:
                ok = value <= limit if self.inclusive else value < limit
            if ok:
                return grade
        return "poor"

    def rule(self):
        """The rule in words, e.g. "< 150 ms excellent, < 300 ms good,
        < 600 ms fair, else poor"."""
        if self.higher_is_better:
            op = "≥" if self.inclusive else ">"
        else:
            op = "≤" if self.inclusive else "<"
        unit = {"": "", "count": "", "%": "%", "us": " µs"}.get(
            self.unit, f" {self.unit}")
        parts = [f"{op} {_num(limit)}{unit} {grade}"
                 for limit, grade in zip(self.limits, GRADES)
                 if limit is not None]
        return ", ".join(parts) + ", else poor"


def _num(x):
    return f"{x:g}"


@dataclass(frozen=True)
class Verdict:
    threshold: Threshold
    #: ``excellent`` .. ``poor``, or "not measured".
    grade: str
    #: The figure's value in the threshold's unit, None if not measured.
    value: Optional[float] = None
    #: The key and section it was read from.
    key: str = ""
    section: str = ""
    #: Why it is not measured, or the figure's own detail.
    note: str = ""


#: The thresholds of the summary, in the order it lists them.
THRESHOLDS = (
    Threshold(
        keys=("startup.warm.bridge.total_ms",),
        measure="Warm container start, bridge network (median)",
        unit="ms", limits=(150, 300, 600),
        rationale=(
            "From the client's create request to its start call's return. "
            "150 ms is what a host-network start takes on this project's "
            "2-core VMs, i.e. everything but the network hook; bridge "
            "networking adds about 150 ms of veth setup (README)."),
    ),
    Threshold(
        keys=("startup.warm.host.total_ms",),
        measure="Warm container start, host network (median)",
        unit="ms", limits=(150, 300, 600),
        rationale=(
            "The same scale as the bridge start: with no network hook a "
            "start should fit in 150 ms on a small VM."),
    ),
    Threshold(
        keys=("io.copyup.f64m.cost_ms",),
        measure="Copy-up of a 64 MiB file (first write to a lower file)",
        unit="ms", limits=(100, 250, 1000),
        rationale=(
            "OverlayFS copies the whole file up before the first write. "
            "Out of the page cache that runs at memory speed: 100 ms is "
            "640 MiB/s; past a second the copy went to a slow disk."),
    ),
    Threshold(
        keys=("network.bridge.rtt_ms",),
        measure="Round trip over the bridge (median)",
        unit="us", limits=(50, 100, 250),
        rationale=(
            "A loopback round trip costs 10-30 µs; the bridge adds a veth "
            "pair and a bridge hop each way. Under 50 µs the container "
            "network costs next to nothing; over 250 µs something (NAT, "
            "conntrack, a userland proxy) is in the path."),
    ),
    Threshold(
        keys=("memory.f64m.other_charge_mib",),
        measure="Page cache charged again to a second reader of a "
                "64 MiB image file",
        unit="MiB", limits=(1, 8, 32),
        rationale=(
            "Containers of one image read its lower layers through the "
            "same page cache, and the memory cgroup charges a page to "
            "the cgroup that first faulted it in; a later reader should "
            "be charged next to nothing. 64 MiB would be a second copy."),
    ),
    Threshold(
        keys=("cpu.limit_0_5.tick_delay_p95_ms",),
        measure="Delay of a 10 ms ticker beside a busy loop at --cpus "
                "0.5 (p95)",
        unit="ms", limits=(1, 10, 50),
        rationale=(
            "Not the share of throttled periods: a busy loop under a "
            "limit is throttled in nearly every period by design, which "
            "says nothing about the machine. What throttling costs is "
            "the wait of the other tasks of the cgroup: under 1 ms a "
            "10 ms task does not notice; over 10 ms it misses ticks; "
            "50 ms is the whole throttled part of a 100 ms period."),
    ),
    Threshold(
        keys=("audit.high",),
        measure="Audit findings of high or critical severity",
        unit="count", limits=(0, None, 2), inclusive=True,
        rationale=(
            "A high finding (a dangerous capability, a host namespace, a "
            "disabled seccomp or LSM profile, a writable sensitive mount) "
            "is a way out of the container; none is the only excellent "
            "count, and more than two is a pattern."),
    ),
)


def _figures(suite):
    """Figure key -> (figure, section name), first occurrence wins."""
    out = {}
    for s in suite.sections:
        for f in s.figures:
            out.setdefault(f.key, (f, s.name))
    return out


def judge(suite, audit=None, thresholds=THRESHOLDS):
    """The verdicts of ``suite`` (and of ``audit``, an
    :class:`~dockertrace.report.data.AuditSummary`)."""
    figures = _figures(suite)
    verdicts = []
    for t in thresholds:
        verdicts.append(_judge_one(t, figures, suite, audit))
    return tuple(verdicts)


def _judge_one(t, figures, suite, audit):
    if t.keys == ("audit.high",):
        if audit is None or not audit.available:
            why = audit.reason if audit is not None else "no audit ran"
            return Verdict(t, NOT_MEASURED, note=f"audit not available: "
                           f"{why}")
        n = audit.count("high", "critical")
        return Verdict(t, t.grade(n), float(n), "audit.high", "security",
                       note=audit.scope)

    for key in t.keys:
        if key not in figures:
            continue
        fig, section = figures[key]
        value = convert(fig.value, fig.unit, t.unit)
        if value is not None:
            # 0.116 ms is 116 us, not 116.00000000000001.
            value = float(f"{value:.9g}")
        if value is None:
            return Verdict(t, NOT_MEASURED, key=key, section=section,
                           note=f"figure is in {fig.unit!r}, the "
                           f"threshold in {t.unit!r}")
        return Verdict(t, t.grade(value), value, key, section,
                       note=fig.detail)

    # Say why: a section that failed is a different story from a figure
    # the suite does not produce (yet).
    prefix = t.keys[0].split(".")[0]
    sec = suite.section(prefix)
    if sec is None:
        why = f"the {prefix} section did not run"
    elif sec.error:
        why = f"the {prefix} section failed: {sec.error}"
    else:
        why = f"the {prefix} section has no figure {t.keys[0]}"
    return Verdict(t, NOT_MEASURED, key=t.keys[0], section=prefix, note=why)
