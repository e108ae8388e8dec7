"""Records of the throttling BPF program (bpf/throttle.h), decoded into
plain values.  Every record starts with a __u32 kind naming its struct."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Optional

#: What the kernel stores as "no quota" (RUNTIME_INF).
RUNTIME_INF = (1 << 64) - 1


class Kind(enum.IntEnum):
    """enum dt_th_kind in bpf/throttle.h."""

    PERIOD = 1
    THREAD = 2
    THROTTLE = 3
    UNTHROTTLE = 4


@dataclass(frozen=True)
class Snapshot:
    """A task group's bandwidth counters when one of its periods ended.

    The counters are cumulative, like cpu.stat; a period is the difference
    of two consecutive snapshots.  Times are CLOCK_MONOTONIC nanoseconds
    (``time.monotonic_ns()``) for ``ts_ns``, durations otherwise.
    """

    ts_ns: int
    cgroup_id: int
    period_ns: int
    #: None when the group has no quota.
    quota_ns: Optional[int]
    nr_periods: int
    nr_throttled: int
    throttled_time_ns: int
    #: CPU time of the group; None where the source cannot tell.
    usage_ns: Optional[int] = None
    burst_ns: int = 0
    burst_time_ns: int = 0
    nr_burst: int = 0
    #: Quota left in the pool after the refill (BPF only).
    runtime_ns: Optional[int] = None
    cpu: int = -1
    nr_threads: int = 0
    other_threads: int = 0
    other_ns: int = 0

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


@dataclass(frozen=True)
class ThreadSample:
    """CPU time one thread used in the period ending at ``ts_ns``."""

    ts_ns: int
    cgroup_id: int
    tid: int
    pid: int
    comm: str
    used_ns: int

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


@dataclass(frozen=True)
class Moment:
    """A group's run queue on one CPU was throttled or unthrottled."""

    kind: Kind
    ts_ns: int
    cgroup_id: int
    cpu: int

    def to_dict(self):
        d = asdict(self)
        d["kind"] = self.kind.name.lower()
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["kind"] = Kind[d["kind"].upper()]
        return cls(**d)


def record_from_dict(d):
    """Rebuild a recorded event (a fixture) from its dict."""
    d = dict(d)
    what = d.pop("type")
    return {"snapshot": Snapshot, "thread": ThreadSample,
            "moment": Moment}[what].from_dict(d)


def record_to_dict(rec):
    d = rec.to_dict()
    d["type"] = {Snapshot: "snapshot", ThreadSample: "thread",
                 Moment: "moment"}[type(rec)]
    return d


_LAYOUTS = {}


def _layouts(ffi):
    lays = _LAYOUTS.get(id(ffi))
    if lays is None:
        from dockertrace.engine.records import RecordLayout
        lays = _LAYOUTS[id(ffi)] = {
            Kind.PERIOD: RecordLayout(ffi, "struct dt_th_period"),
            Kind.THREAD: RecordLayout(ffi, "struct dt_th_thread"),
            Kind.THROTTLE: RecordLayout(ffi, "struct dt_th_moment"),
        }
    return lays


def decode(ffi, data):
    """One ring buffer record as a Snapshot, ThreadSample or Moment."""
    kind = Kind(int.from_bytes(bytes(data[:4]), "little"))
    lays = _layouts(ffi)
    if kind is Kind.PERIOD:
        f = lays[kind].unpack(data)
        quota = f["quota_ns"]
        return Snapshot(
            ts_ns=f["ts_ns"], cgroup_id=f["cgroup_id"],
            period_ns=f["period_ns"],
            quota_ns=None if quota == RUNTIME_INF else quota,
            nr_periods=f["nr_periods"], nr_throttled=f["nr_throttled"],
            throttled_time_ns=f["throttled_time_ns"],
            usage_ns=f["usage_ns"], burst_ns=f["burst_ns"],
            burst_time_ns=f["burst_time_ns"], nr_burst=f["nr_burst"],
            runtime_ns=f["runtime_ns"], cpu=f["cpu"],
            nr_threads=f["nr_threads"], other_threads=f["other_threads"],
            other_ns=f["other_ns"])
    if kind is Kind.THREAD:
        f = lays[kind].unpack(data)
        return ThreadSample(
            ts_ns=f["ts_ns"], cgroup_id=f["cgroup_id"], tid=f["tid"],
            pid=f["tgid"], comm=f["comm"].decode("utf-8", "replace"),
            used_ns=f["used_ns"])
    f = lays[Kind.THROTTLE].unpack(data)
    return Moment(kind=kind, ts_ns=f["ts_ns"], cgroup_id=f["cgroup_id"],
                  cpu=f["cpu"])
