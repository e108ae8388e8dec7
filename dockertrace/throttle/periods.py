"""Enforcement periods from bandwidth snapshots: pure functions.

A snapshot is taken when a group's period timer has run: it has counted
the period that just ended, refilled the quota and unthrottled the run
queues it could.  So the difference of two consecutive snapshots is one
period (or a few, when the timer was late): the CPU time used in it,
whether it ended throttled, and the throttled time it caused.  Threads
and throttle moments are attached to the period they fall in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Optional, Tuple

from dockertrace.throttle.events import Kind, Moment, Snapshot, ThreadSample


@dataclass(frozen=True)
class ThreadUse:
    """CPU time one thread used in a period."""

    tid: int
    pid: int
    comm: str
    used_ns: int


@dataclass(frozen=True)
class ThrottleSpan:
    """One CPU's run queue of the group, throttled from ``start_ns`` to
    ``end_ns`` (None if it was still throttled when tracing stopped)."""

    cpu: int
    start_ns: int
    end_ns: Optional[int]

    @property
    def duration_ns(self) -> Optional[int]:
        return None if self.end_ns is None else self.end_ns - self.start_ns


@dataclass(frozen=True)
class Period:
    """One enforcement period of one group (or, from a polled cpu.stat,
    one poll interval covering ``periods`` kernel periods)."""

    start_ns: int
    end_ns: int
    period_ns: int
    #: None: no limit.
    quota_ns: Optional[int]
    burst_ns: int
    #: CPU time the group used; None where the source cannot tell.
    used_ns: Optional[int]
    #: Kernel periods this row covers (1 but for a late timer or a poll).
    periods: int
    #: Of those, the ones that ended throttled.
    throttled_periods: int
    #: Time the group's run queues spent throttled, summed over CPUs, as
    #: the kernel counts it (cpu.stat throttled time).
    throttled_ns: int
    burst_used_ns: int = 0
    #: Busiest threads first.
    threads: Tuple[ThreadUse, ...] = ()
    #: Threads that ran but were not reported one by one, and their time.
    other_threads: int = 0
    other_ns: int = 0
    #: Exact throttle moments, where the kernel lets BPF see them.
    spans: Tuple[ThrottleSpan, ...] = ()

    @property
    def throttled(self) -> bool:
        return self.throttled_periods > 0

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def throttled_after_ns(self) -> Optional[int]:
        """How far into the period the quota ran out (exact moments
        only)."""
        starts = [s.start_ns for s in self.spans
                  if s.start_ns >= self.start_ns]
        return min(starts) - self.start_ns if starts else None

    def to_dict(self):
        d = asdict(self)
        d["throttled"] = self.throttled
        return d


def _period_from(prev: Snapshot, cur: Snapshot) -> Period:
    used = None
    if cur.usage_ns is not None and prev.usage_ns is not None:
        used = max(0, cur.usage_ns - prev.usage_ns)
    return Period(
        start_ns=prev.ts_ns, end_ns=cur.ts_ns, period_ns=cur.period_ns,
        quota_ns=cur.quota_ns, burst_ns=cur.burst_ns, used_ns=used,
        periods=max(0, cur.nr_periods - prev.nr_periods),
        throttled_periods=max(0, cur.nr_throttled - prev.nr_throttled),
        throttled_ns=max(0, cur.throttled_time_ns - prev.throttled_time_ns),
        burst_used_ns=max(0, cur.burst_time_ns - prev.burst_time_ns),
        other_threads=cur.other_threads, other_ns=cur.other_ns)


def _span_order(span: ThrottleSpan):
    # A period's spans in time order, CPU breaking ties.
    return (span.start_ns, span.cpu)


class GroupPeriods:
    """Turns one group's records, in order, into :class:`Period` rows.

    The first period needs a baseline: the group's cpu.stat when tracing
    began (:meth:`seed`), or zero for a group first seen at its very
    first period (``nr_periods`` 1, a container started under the
    tracer); any other group starts at its first snapshot.  Usage is
    unknown (None) in a period whose baseline lacks it.
    """

    def __init__(self, cgroup_id: int):
        self.cgroup_id = cgroup_id
        self.first: Optional[Snapshot] = None
        self.last: Optional[Snapshot] = None
        self.periods: List[Period] = []
        self._threads: Dict[int, List[ThreadUse]] = {}
        self._open: Dict[int, int] = {}
        self._spans: List[ThrottleSpan] = []

    def feed(self, rec) -> Optional[Period]:
        """Take one record; returns the period it closed, if any."""
        if isinstance(rec, ThreadSample):
            self._threads.setdefault(rec.ts_ns, []).append(
                ThreadUse(rec.tid, rec.pid, rec.comm, rec.used_ns))
            return None
        if isinstance(rec, Moment):
            self._moment(rec)
            return None
        return self._snapshot(rec)

    def _moment(self, m: Moment) -> None:
        if m.kind is Kind.THROTTLE:
            self._open.setdefault(m.cpu, m.ts_ns)
            return
        start = self._open.pop(m.cpu, None)
        if start is None:
            return
        span = ThrottleSpan(m.cpu, start, m.ts_ns)
        # The period timer unthrottles other CPUs' run queues
        # asynchronously on newer kernels (an IPI after the timer), so a
        # span can end after the snapshot of the period it began in: give
        # it back to that period. Rows already handed to a live callback
        # do not see it; the final result does.
        if self.last is not None and start < self.last.ts_ns:
            for i in range(len(self.periods) - 1, -1, -1):
                p = self.periods[i]
                if p.start_ns <= start or i == 0:
                    self.periods[i] = replace(p, spans=tuple(sorted(
                        p.spans + (span,), key=_span_order)))
                    return
        self._spans.append(span)

    def seed(self, snap: Snapshot) -> None:
        """Start counting from ``snap`` (the group's cpu.stat read when
        tracing began), so the first period has a baseline."""
        self.first = self.last = snap

    def _snapshot(self, snap: Snapshot) -> Optional[Period]:
        prev = self.last
        if prev is not None and snap.nr_periods == prev.nr_periods:
            # No period ended since the last one (a poll, or the seed).
            self._threads.pop(snap.ts_ns, None)
            return None
        if prev is None:
            self.first = snap
            if snap.nr_periods != 1:
                self.last = snap
                self._threads.pop(snap.ts_ns, None)
                return None
            # Born under the tracer: before its first period every
            # counter, usage included, was zero.
            prev = Snapshot(ts_ns=snap.ts_ns - snap.period_ns,
                            cgroup_id=snap.cgroup_id,
                            period_ns=snap.period_ns,
                            quota_ns=snap.quota_ns, nr_periods=0,
                            nr_throttled=0, throttled_time_ns=0,
                            usage_ns=0 if snap.usage_ns is not None
                            else None)
            self.first = prev
        self.last = snap
        period = _period_from(prev, snap)
        threads = sorted(self._threads.pop(snap.ts_ns, ()),
                         key=lambda t: -t.used_ns)
        spans = self._take_spans(prev.ts_ns, snap.ts_ns)
        period = replace(period, threads=tuple(threads),
                         spans=tuple(spans))
        self.periods.append(period)
        return period

    def _take_spans(self, start: int, end: int) -> List[ThrottleSpan]:
        # A span belongs to the period it began in (see _moment for one
        # that ends late); one that began before the first period counts
        # in the first.
        mine = [s for s in self._spans if s.start_ns < end]
        self._spans = [s for s in self._spans if s.start_ns >= end]
        return sorted(mine, key=_span_order)

    def finish(self) -> List[ThrottleSpan]:
        """Spans still open or not yet in a period when tracing stopped."""
        left = list(self._spans)
        left += [ThrottleSpan(cpu, ts, None) for cpu, ts in
                 sorted(self._open.items())]
        return left


def assemble(records) -> Dict[int, List[Period]]:
    """``{cgroup_id: [Period, ...]}`` from records in arrival order."""
    groups: Dict[int, GroupPeriods] = {}
    for rec in records:
        g = groups.get(rec.cgroup_id)
        if g is None:
            g = groups[rec.cgroup_id] = GroupPeriods(rec.cgroup_id)
        g.feed(rec)
    return {cg: g.periods for cg, g in groups.items()}


def percentile(values, q: float) -> int:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0 when
    empty."""
    vals = sorted(values)
    if not vals:
        return 0
    rank = max(1, math.ceil(q / 100 * len(vals)))
    return vals[rank - 1]


@dataclass(frozen=True)
class Suggestion:
    """A limit that would have avoided most of the throttling seen.

    ``kind`` is ``"none"`` (nothing to avoid), ``"burst"`` (the average
    fits the quota; a burst lets quiet periods pay for busy ones) or
    ``"quota"`` (the workload wants more CPU than the limit on average,
    or in bursts too long for a burst allowance).
    """

    kind: str
    quota_ns: Optional[int] = None
    period_ns: Optional[int] = None
    burst_ns: int = 0
    #: Share of the throttled CPU time the suggestion would have left,
    #: replayed over the periods seen (0.0 to 1.0).
    remaining_share: float = 0.0
    reason: str = ""

    @property
    def cpus(self) -> Optional[float]:
        if not self.quota_ns or not self.period_ns:
            return None
        return self.quota_ns / self.period_ns

    def to_dict(self):
        d = asdict(self)
        d["cpus"] = self.cpus
        return d


@dataclass(frozen=True)
class Summary:
    """Throttling of one group over the traced time."""

    periods: int
    throttled_periods: int
    throttled_total_ns: int
    throttled_p50_ns: int
    throttled_p99_ns: int
    throttled_max_ns: int
    #: None where the source cannot tell.
    used_total_ns: Optional[int]
    #: Wall time the rows cover.
    span_ns: int
    quota_ns: Optional[int]
    period_ns: int
    burst_ns: int
    suggestion: Suggestion = field(default_factory=lambda: Suggestion(
        "none"))

    @property
    def throttled_share(self) -> float:
        return self.throttled_periods / self.periods if self.periods \
            else 0.0

    @property
    def used_cpus(self) -> Optional[float]:
        """Average CPU use over the traced time, in CPUs."""
        if self.used_total_ns is None or not self.span_ns:
            return None
        return self.used_total_ns / self.span_ns

    def to_dict(self):
        d = asdict(self)
        d["throttled_share"] = self.throttled_share
        d["used_cpus"] = self.used_cpus
        d["suggestion"] = self.suggestion.to_dict()
        return d


def _per_period(periods: List[Period], attr: str) -> List[int]:
    """One value per kernel period: a row covering n periods counts n
    times, with its value shared out evenly."""
    out = []
    for p in periods:
        n = max(1, p.periods)
        out.extend([getattr(p, attr) // n] * n)
    return out


def summarize(periods: List[Period], *, target: float = 0.1) -> Summary:
    """Share of periods throttled, throttled time per period, and a
    suggestion that leaves at most ``target`` of the throttled time."""
    if not periods:
        return Summary(0, 0, 0, 0, 0, 0, None, 0, None, 0, 0)
    per = _per_period(periods, "throttled_ns")
    used = [p.used_ns for p in periods]
    last = periods[-1]
    return Summary(
        periods=sum(max(1, p.periods) for p in periods),
        throttled_periods=sum(p.throttled_periods for p in periods),
        throttled_total_ns=sum(p.throttled_ns for p in periods),
        throttled_p50_ns=percentile(per, 50),
        throttled_p99_ns=percentile(per, 99),
        throttled_max_ns=max(per),
        used_total_ns=None if all(u is None for u in used)
        else sum(u for u in used if u is not None),
        span_ns=last.end_ns - periods[0].start_ns,
        quota_ns=last.quota_ns, period_ns=last.period_ns,
        burst_ns=last.burst_ns,
        suggestion=suggest(periods, target=target))


def demands(periods: List[Period]) -> List[int]:
    """CPU time each kernel period would have used without the limit,
    estimated as what it used plus what it was throttled for: a run
    queue is throttled only while it has work, so that time is work
    postponed.  An upper bound when several CPUs were throttled at once
    but fewer threads were waiting."""
    out = []
    if all(p.used_ns is None for p in periods):
        return []
    for p in periods:
        if p.used_ns is None:
            continue
        n = max(1, p.periods)
        out.extend([(p.used_ns + p.throttled_ns) // n] * n)
    return out


def replay(demand: List[int], quota_ns: int, burst_ns: int) -> int:
    """CPU time that would have waited for the next period under
    ``quota_ns`` and ``burst_ns``, replaying the kernel's refill: each
    period adds the quota to what is left, capped at quota plus burst."""
    pool = quota_ns
    short = 0
    for d in demand:
        used = min(d, pool)
        short += d - used
        pool = min(pool - used + quota_ns, quota_ns + burst_ns)
    return short


def _round_up(ns: int, step: int = 1_000_000) -> int:
    return -(-ns // step) * step


def suggest(periods: List[Period], *, target: float = 0.1) -> Suggestion:
    """The smallest burst, else the smallest quota, that would have left
    at most ``target`` of the throttled time (replayed over the
    periods)."""
    last = periods[-1] if periods else None
    if last is None or last.quota_ns is None:
        return Suggestion("none", reason="no CPU limit")
    if not any(p.throttled_periods or p.throttled_ns for p in periods):
        return Suggestion("none", reason="never throttled")
    demand = demands(periods)
    quota, period = last.quota_ns, last.period_ns
    if not demand:
        return Suggestion("none", reason="CPU use per period unknown "
                          "(polled without usage counters)")
    base = replay(demand, quota, 0)
    if base == 0:
        return Suggestion("none", reason="throttling not explained by "
                          "the CPU use seen")
    allowed = base * target
    mean = sum(demand) / len(demand)

    # A burst cannot exceed the quota (the kernel refuses it), and helps
    # only when quiet periods leave quota over for busy ones.
    if mean <= quota:
        for burst in sorted({min(quota, _round_up(max(0, d - quota)))
                             for d in demand} | {quota}):
            left = replay(demand, quota, burst)
            if left <= allowed:
                return Suggestion(
                    "burst", quota_ns=quota, period_ns=period,
                    burst_ns=burst, remaining_share=left / base,
                    reason=f"average use {mean / period:.2f} CPUs fits "
                    f"the limit of {quota / period:.2f}; the throttling "
                    "comes from bursts")
    for q in sorted({_round_up(d) for d in demand if d > quota}):
        left = replay(demand, q, 0)
        if left <= allowed:
            return Suggestion(
                "quota", quota_ns=q, period_ns=period,
                remaining_share=left / base,
                reason=f"the workload wanted {mean / period:.2f} CPUs on "
                f"average against a limit of {quota / period:.2f}")
    q = _round_up(max(demand))
    return Suggestion("quota", quota_ns=q, period_ns=period,
                      remaining_share=replay(demand, q, 0) / base,
                      reason="only the largest demand seen avoids it")
