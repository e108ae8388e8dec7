"""Periods, summaries and suggestions from bandwidth snapshots: replayed
from records of a real busy loop (fixtures/throttle/busy.json, made by
record.py) and from hand-made sequences."""

import json
import os

import pytest

from dockertrace._cext import ffi
from dockertrace.throttle.events import (Kind, Moment, Snapshot,
                                         ThreadSample, record_from_dict)
from dockertrace.throttle.periods import (GroupPeriods, Period, assemble,
                                          demands, percentile, replay,
                                          suggest, summarize)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "throttle")
MS = 1_000_000


def load(name):
    with open(os.path.join(FIXTURES, f"{name}.json")) as f:
        data = json.load(f)
    return data, [record_from_dict(r) for r in data["records"]]


def test_record_sizes_match_the_header():
    # The BPF side and Python read the same header; check it anyway.
    assert ffi.sizeof("struct dt_th_period") == 112
    assert ffi.sizeof("struct dt_th_thread") == 56
    assert ffi.sizeof("struct dt_th_moment") == 24
    assert ffi.sizeof("struct dt_th_config") == 16


def test_busy_loop_totals_equal_cpu_stat():
    data, records = load("busy")
    (periods,) = assemble(records).values()
    stat = data["cpu_stat"]
    # Seeded at zero and traced until the timer went idle: every period
    # the kernel counted is a row, and the sums are the kernel's own.
    assert sum(p.periods for p in periods) == stat["nr_periods"]
    assert sum(p.throttled_periods for p in periods) == \
        stat["nr_throttled"]
    assert sum(p.throttled_ns for p in periods) == stat["throttled_time"]
    assert all(p.quota_ns == 20 * MS and p.period_ns == 100 * MS
               for p in periods)


def test_busy_loop_periods():
    _, records = load("busy")
    (periods,) = assemble(records).values()
    # The seed had no usage (no cpuacct group): the first row cannot tell.
    assert periods[0].used_ns is None
    busy = [p for p in periods if p.throttled]
    assert len(busy) >= 0.7 * len(periods) and busy[0] is periods[0]
    for p in busy[1:]:
        # A throttled period used its quota (the accounting slice lets it
        # go a little over) and one thread did all of it.
        assert 15 * MS <= p.used_ns <= 30 * MS, p
        assert p.threads and p.threads[0].comm == "sh"
        assert sum(t.used_ns for t in p.threads) == \
            pytest.approx(p.used_ns, rel=0.1)
    for a, b in zip(periods, periods[1:]):
        assert a.end_ns == b.start_ns


def test_busy_loop_summary_and_suggestion():
    _, records = load("busy")
    (periods,) = assemble(records).values()
    s = summarize(periods)
    assert s.periods == 25 and s.throttled_periods == 18
    assert s.throttled_share == pytest.approx(18 / 25)
    assert s.throttled_max_ns >= s.throttled_p99_ns >= s.throttled_p50_ns
    # One thread wants a whole CPU against 0.2: only more quota helps.
    sg = s.suggestion
    assert sg.kind == "quota" and sg.quota_ns > 20 * MS
    assert sg.remaining_share <= 0.1
    assert sg.cpus == sg.quota_ns / (100 * MS)


def snap(ts, n, thr, tt, usage, quota=20 * MS, cg=7):
    return Snapshot(ts_ns=ts, cgroup_id=cg, period_ns=100 * MS,
                    quota_ns=quota, nr_periods=n, nr_throttled=thr,
                    throttled_time_ns=tt, usage_ns=usage)


def test_first_period_of_a_new_group_counts_from_zero():
    g = GroupPeriods(7)
    p = g.feed(snap(1000 * MS, 1, 1, 70 * MS, 20 * MS))
    assert p.start_ns == 900 * MS and p.used_ns == 20 * MS
    assert p.throttled_ns == 70 * MS and p.throttled


def test_group_seen_midway_starts_at_its_first_snapshot():
    g = GroupPeriods(7)
    assert g.feed(snap(1000 * MS, 40, 3, 70 * MS, 900 * MS)) is None
    p = g.feed(snap(1100 * MS, 41, 3, 70 * MS, 905 * MS))
    assert (p.used_ns, p.throttled, p.throttled_ns) == (5 * MS, False, 0)


def test_seed_and_unchanged_snapshots():
    g = GroupPeriods(7)
    g.seed(snap(0, 40, 3, 70 * MS, None))
    # A poll that saw no new period closes nothing.
    assert g.feed(snap(50 * MS, 40, 3, 70 * MS, 100 * MS)) is None
    p = g.feed(snap(150 * MS, 42, 5, 90 * MS, 140 * MS))
    assert p.periods == 2 and p.throttled_periods == 2
    assert p.used_ns is None


def test_threads_and_moments_go_to_their_period():
    g = GroupPeriods(7)
    g.seed(snap(0, 0, 0, 0, 0))
    g.feed(Moment(Kind.THROTTLE, 20 * MS, 7, 1))
    g.feed(Moment(Kind.THROTTLE, 25 * MS, 7, 0))
    g.feed(Moment(Kind.UNTHROTTLE, 99 * MS, 7, 1))
    g.feed(ThreadSample(100 * MS, 7, 11, 11, "a", 5 * MS))
    g.feed(ThreadSample(100 * MS, 7, 12, 11, "b", 15 * MS))
    p = g.feed(snap(100 * MS, 1, 1, 79 * MS, 20 * MS))
    assert [t.tid for t in p.threads] == [12, 11]
    assert [(s.cpu, s.start_ns) for s in p.spans] == [(1, 20 * MS)]
    assert p.throttled_after_ns == 20 * MS
    # CPU 0 was still throttled when tracing stopped.
    (left,) = g.finish()
    assert (left.cpu, left.end_ns) == (0, None)


def test_a_span_ending_after_its_periods_snapshot_goes_back_to_it():
    # Newer kernels unthrottle other CPUs' run queues after the period
    # timer has run (an IPI), so the unthrottle arrives after the
    # snapshot that closed the period the throttle happened in.
    g = GroupPeriods(7)
    g.seed(snap(0, 0, 0, 0, 0))
    g.feed(Moment(Kind.THROTTLE, 30 * MS, 7, 1))
    first = g.feed(snap(100 * MS, 1, 1, 70 * MS, 20 * MS))
    assert first.spans == ()
    g.feed(Moment(Kind.UNTHROTTLE, 101 * MS, 7, 1))
    g.feed(Moment(Kind.THROTTLE, 140 * MS, 7, 1))
    second = g.feed(snap(200 * MS, 2, 2, 130 * MS, 40 * MS))
    g.feed(Moment(Kind.UNTHROTTLE, 201 * MS, 7, 1))
    p1, p2 = g.periods
    assert [(s.start_ns, s.end_ns) for s in p1.spans] == [(30 * MS, 101 * MS)]
    assert p1.throttled_after_ns == 30 * MS
    assert [(s.start_ns, s.end_ns) for s in p2.spans] == [(140 * MS, 201 * MS)]
    assert p2.throttled_after_ns == 40 * MS
    # What a live callback got stays as it was.
    assert second.spans == ()
    assert g.finish() == []


def test_percentile_nearest_rank():
    assert percentile([], 50) == 0
    assert percentile([5], 99) == 5
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 99) == 99


def _row(used, thr, quota=20 * MS):
    return Period(0, 100 * MS, 100 * MS, quota, 0, used, 1,
                  1 if thr else 0, thr)


def test_replay_follows_the_kernels_refill():
    # 10 ms spare in each quiet period, 30 ms wanted in the busy one.
    demand = [10 * MS, 10 * MS, 30 * MS]
    assert replay(demand, 20 * MS, 0) == 10 * MS
    # A 10 ms burst carries the spare over: nothing waits.
    assert replay(demand, 20 * MS, 10 * MS) == 0
    assert replay(demand, 20 * MS, 5 * MS) == 5 * MS


def test_bursty_workload_gets_a_burst():
    rows = [_row(5 * MS, 0)] * 9 + [_row(20 * MS, 15 * MS)]
    sg = suggest(rows)
    assert sg.kind == "burst" and sg.quota_ns == 20 * MS
    assert sg.burst_ns == 15 * MS and sg.remaining_share == 0
    assert demands(rows)[-1] == 35 * MS


def test_steady_overload_gets_more_quota():
    rows = [_row(20 * MS, 80 * MS)] * 10
    sg = suggest(rows)
    assert sg.kind == "quota" and sg.quota_ns == 100 * MS
    assert sg.cpus == 1.0


def test_no_suggestion_without_throttling_or_limit():
    assert suggest([_row(5 * MS, 0)] * 3).kind == "none"
    assert suggest([_row(5 * MS, 0, quota=None)]).kind == "none"
    assert summarize([]).periods == 0
