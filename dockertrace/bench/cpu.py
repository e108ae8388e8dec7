"""cpu: a busy container under ``--cpus`` limits, and what throttling does
to a periodic task beside it.

Per limit, one container runs two processes: a busy loop, and a shell
(the container's first process) that wakes every 10 ms (``read -t 0.01``
on a FIFO nobody writes: a timed sleep without a fork). The busy loop
uses up the quota early in each period and the CFS bandwidth controller
throttles the whole cgroup until the period ends, so the periodic task
waits too.

Sources, sampled every 100 ms on the host:

- the cgroup's ``cpu.stat`` (periods, throttled periods, throttled time),
  always available;
- ``/proc/<pid>/schedstat`` of both processes: CPU time, time spent
  runnable but waiting (``run_delay``) and timeslices (``pcount``). The
  periodic task's run_delay per timeslice is its scheduling delay;
- the throttle tracer, when this version has it: throttling period by
  period, for the timeline.
"""

import logging
import time

from dockertrace.bench.common import (Containers, Reporter, WorkloadFailed,
                                      cgroup_file, children, container_pid,
                                      figure_of, read_cpu_stat,
                                      read_schedstat, rerun)
from dockertrace.bench.model import Section, Series, Table
from dockertrace.bench.parse import percentile

log = logging.getLogger(__name__)

LIMITS = (0.25, 0.5, 1.0)
SAMPLE_S = 0.1
#: Seconds measured per run and limit; with the default 3 runs a limit
#: gets 3 s, 30 periods of 100 ms.
SECONDS_PER_RUN = 1.0
#: Let the busy loop start and the first period settle before measuring.
WARMUP_S = 0.5

# One command per line: in "a && b & c" the "&" would put a and b in the
# background subshell too, and the ticker would lose its FIFO.
WORKLOAD = "\n".join([
    "set -e",
    "mkfifo /tmp/tick",
    "exec 3<>/tmp/tick",
    "set +e",
    "while :; do :; done &",
    "while :; do read -t 0.01 x <&3; done"])


def limit_key(limit):
    """``0.25`` -> ``limit_0_25``: figure keys keep dots as separators."""
    return "limit_" + f"{limit:g}".replace(".", "_")


class Sample:
    """One reading of every source, at ``t`` (monotonic seconds)."""

    def __init__(self, t, cpu, periodic, busy):
        self.t, self.cpu, self.periodic, self.busy = t, cpu, periodic, busy


def measure(stat_path, periodic_pid, busy_pid, seconds,
            interval=SAMPLE_S, clock=time.monotonic, sleep=time.sleep):
    """Sample the sources every ``interval`` for ``seconds``; the list of
    :class:`Sample` (one more than intervals: the first is the start).

    Samples follow a fixed schedule (not "interval after the last
    read"), so every limit gets the same number of them.
    """
    t0 = clock()
    n = int(round(seconds / interval))
    out = []
    for i in range(n + 1):
        delay = t0 + i * interval - clock()
        if delay > 0:
            sleep(delay)
        out.append(Sample(clock(), read_cpu_stat(stat_path),
                          read_schedstat(periodic_pid),
                          read_schedstat(busy_pid)))
    return out


def summarize(samples):
    """The figures of one limit from its samples (a dict)."""
    a, b = samples[0], samples[-1]
    secs = b.t - a.t
    periods = b.cpu.nr_periods - a.cpu.nr_periods
    throttled = b.cpu.nr_throttled - a.cpu.nr_throttled
    thr_ns = b.cpu.throttled_ns - a.cpu.throttled_ns
    runs = b.periodic.pcount - a.periodic.pcount
    delay = b.periodic.run_delay_ns - a.periodic.run_delay_ns
    used = (b.periodic.run_ns - a.periodic.run_ns
            + b.busy.run_ns - a.busy.run_ns)
    # Scheduling delay per timeslice in each sample interval: its spread
    # over the intervals shows the periods that hurt.
    per_interval = []
    for p, q in zip(samples, samples[1:]):
        dn = q.periodic.pcount - p.periodic.pcount
        if dn > 0:
            per_interval.append((q.periodic.run_delay_ns
                                 - p.periodic.run_delay_ns) / dn / 1e6)
    return {
        "seconds": secs,
        "periods": periods,
        "throttled_periods": throttled,
        "throttled_pct": 100.0 * throttled / periods if periods else 0.0,
        "throttled_ms_per_s": thr_ns / 1e6 / secs if secs else 0.0,
        "throttled_ms_per_period": thr_ns / 1e6 / periods if periods
        else 0.0,
        "used_cpus": used / 1e9 / secs if secs else 0.0,
        "wakeups_per_s": runs / secs if secs else 0.0,
        "delay_ms": delay / runs / 1e6 if runs else 0.0,
        "delay_p95_ms": percentile(per_interval, 95) if per_interval
        else 0.0,
    }


def cpu_stat_timeline(samples):
    """``(times_s, throttled ms per period)`` per sample interval, from
    cpu.stat: the fallback timeline when the tracer is not there."""
    t0 = samples[0].t
    xs, ys = [], []
    for p, q in zip(samples, samples[1:]):
        n = q.cpu.nr_periods - p.cpu.nr_periods
        thr = q.cpu.throttled_ns - p.cpu.throttled_ns
        xs.append(round(q.t - t0, 3))
        ys.append(round(thr / 1e6 / n, 3) if n else 0.0)
    return xs, ys


def run(*, runs=3, image, progress=None, limits=LIMITS):
    seconds = SECONDS_PER_RUN * runs
    rep = Reporter("cpu", len(limits), progress)
    results = {}
    tracer_info = {"mechanisms": {}, "dropped": 0, "why_not": None,
                   "detail": ""}
    with Containers() as box:
        for limit in limits:
            rep.step(f"--cpus {limit:g}: busy loop and a 10 ms ticker, "
                     f"{seconds:g} s")
            c = box.start(image, ["sh", "-c", WORKLOAD],
                          hint=f"cpu-{limit_key(limit)}",
                          nano_cpus=int(limit * 1e9))
            pid = container_pid(c)
            busy = _busy_child(pid)
            stat = cgroup_file(pid, "cpu", "cpu.stat")
            tracer, why_not = open_throttle_tracer(c)
            try:
                time.sleep(WARMUP_S)
                samples = measure(stat, pid, busy, seconds)
                traced = tracer_result(tracer)
                if tracer is not None and traced is None:
                    why_not = "the throttle tracer gave no result"
            finally:
                if tracer is not None:
                    tracer.close()
            results[limit] = (samples, traced)
            box.remove(c)
            _note_tracer(tracer_info, tracer, traced, why_not)
    rep.finish()
    return build_section(results, runs=runs, image=image,
                         tracer_info=tracer_info)


def _busy_child(pid):
    # The busy loop is the shell's only child; it may take a moment to
    # appear after the container starts.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        kids = children(pid)
        if kids:
            return kids[0]
        time.sleep(0.02)
    raise WorkloadFailed(f"no busy loop under pid {pid}")


# --- the traced step: the throttle tracer, wired in where it exists ----

def open_throttle_tracer(container):
    """``(tracer, None)`` tracing ``container``, or ``(None, why)``."""
    try:
        from dockertrace.throttle import ThrottleTracer
    except ImportError:
        return None, ("the throttle tracer (dockertrace.throttle) is not "
                      "available in this version, so throttling comes "
                      "from cpu.stat sampled every 100 ms")
    try:
        return ThrottleTracer([container.id]), None
    except Exception as err:  # noqa: BLE001 - cpu.stat still stands
        log.warning("throttle tracer could not attach: %s", err)
        return None, f"the throttle tracer could not attach: {err}"


def tracer_result(tracer):
    """The periods the tracer saw: ``(mechanism, [Period])`` or None."""
    if tracer is None:
        return None
    try:
        res = tracer.result()
    except Exception as err:  # noqa: BLE001 - cpu.stat still stands
        log.warning("throttle tracer gave no result: %s", err)
        return None
    periods = [p for g in res.groups for p in g.periods]
    return {"mechanism": res.mechanism, "detail": res.mechanism_detail,
            "mechanisms": dict(res.mechanisms or {}),
            "dropped": res.dropped_events, "periods": periods,
            "fallback_reason": res.fallback_reason}


def _note_tracer(info, tracer, traced, why_not):
    if traced is None:
        info["why_not"] = why_not
        return
    info["mechanisms"] = traced["mechanisms"]
    info["dropped"] += traced["dropped"]
    info["detail"] = traced["detail"]
    info["mechanism"] = traced["mechanism"]
    info["fallback_reason"] = traced["fallback_reason"]


def traced_timeline(periods):
    """``(times_s, throttled ms, used ms)`` per period from the tracer."""
    if not periods:
        return [], [], []
    t0 = periods[0].start_ns
    xs = [round((p.end_ns - t0) / 1e9, 3) for p in periods]
    thr = [round(p.throttled_ns / 1e6, 3) for p in periods]
    used = [round(p.used_ns / 1e6, 3) if p.used_ns is not None else None
            for p in periods]
    return xs, thr, used


# --- results ------------------------------------------------------------

def build_section(results, *, runs, image, tracer_info=None):
    tracer_info = tracer_info or {}
    figures, rows, series = [], [], []
    sums = {}
    for limit, (samples, traced) in results.items():
        s = sums[limit] = summarize(samples)
        k = f"cpu.{limit_key(limit)}"
        one = f"over {s['seconds']:.1f} s ({s['periods']} periods)"
        figures += [
            figure_of(f"{k}.throttled_pct", f"periods throttled, --cpus "
                      f"{limit:g}", [s["throttled_pct"]], "%",
                      f"cpu.stat {one}", digits=1),
            figure_of(f"{k}.throttled_ms_per_s", f"throttled time per "
                      f"second, --cpus {limit:g}",
                      [s["throttled_ms_per_s"]], "ms", f"cpu.stat {one}",
                      digits=1),
            figure_of(f"{k}.used_cpus", f"CPUs used, --cpus {limit:g}",
                      [s["used_cpus"]], "CPUs", f"schedstat {one}",
                      digits=3),
            figure_of(f"{k}.tick_delay_ms", "scheduling delay of the "
                      f"10 ms ticker, --cpus {limit:g}", [s["delay_ms"]],
                      "ms", f"run_delay per timeslice, schedstat {one}"),
            figure_of(f"{k}.tick_delay_p95_ms", "ticker delay, p95 of "
                      f"100 ms intervals, --cpus {limit:g}",
                      [s["delay_p95_ms"]], "ms",
                      "p95 over sample intervals of run_delay per "
                      "timeslice"),
        ]
        rows.append((f"{limit:g}", round(s["used_cpus"], 2),
                     round(s["throttled_pct"], 1),
                     round(s["throttled_ms_per_period"], 1),
                     round(s["delay_ms"], 3), round(s["delay_p95_ms"], 3),
                     round(s["wakeups_per_s"])))
        series.append(_timeline(limit, samples, traced))
    table = Table(
        title="Busy loop and 10 ms ticker under --cpus",
        columns=("cpus", "used", "thr %", "thr ms/per", "delay ms",
                 "p95 ms", "ticks/s"),
        rows=tuple(rows),
        note="used: CPUs the two processes used; thr %: periods "
             "throttled; thr ms/per: throttled time per period (summed "
             "over CPUs); delay: ticker's run_delay per timeslice")
    expl = explain(sums)
    why_not = tracer_info.get("why_not")
    if why_not:
        expl.append(f"Not traced: {why_not}.")
    elif tracer_info.get("mechanism"):
        expl.append(f"Throttling timeline from the throttle tracer: "
                    f"{tracer_info.get('detail', '')}.")
        if tracer_info.get("fallback_reason"):
            expl.append("The tracer fell back: "
                        f"{tracer_info['fallback_reason']}.")
    return Section(
        name="cpu", title="CPU: throttling under --cpus limits",
        figures=tuple(figures), tables=(table,), series=tuple(series),
        explanation=tuple(expl), rerun=rerun("cpu", runs, image),
        mechanisms=dict(tracer_info.get("mechanisms") or {}),
        dropped_events=int(tracer_info.get("dropped") or 0))


def _timeline(limit, samples, traced):
    title = f"Throttling timeline, --cpus {limit:g}"
    key = f"cpu.timeline.{limit_key(limit)}"
    if traced and traced["periods"]:
        xs, thr, used = traced_timeline(traced["periods"])
        y = {"throttled ms": thr}
        if all(u is not None for u in used):
            y["used ms"] = used
        return Series(key=key, title=title, kind="timeline", x=tuple(xs),
                      y=y, x_label=f"s (one point per period, "
                      f"{traced['mechanism']})",
                      y_label="ms per period")
    xs, ys = cpu_stat_timeline(samples)
    return Series(key=key, title=title, kind="timeline", x=tuple(xs),
                  y={"throttled ms per period": ys},
                  x_label=f"s (cpu.stat every {SAMPLE_S * 1000:.0f} ms)",
                  y_label="ms per period")


def explain(sums):
    out = []
    for limit, s in sums.items():
        out.append(
            f"--cpus {limit:g}: the busy loop and the ticker used "
            f"{s['used_cpus']:.2f} CPUs; {s['throttled_pct']:.0f} % of "
            f"the periods were throttled, for "
            f"{s['throttled_ms_per_period']:.1f} ms each on average, and "
            f"the ticker waited {s['delay_ms']:.2f} ms per wakeup on a "
            f"run queue (p95 of 100 ms intervals: "
            f"{s['delay_p95_ms']:.2f} ms).")
    for limit, s in sums.items():
        if s["throttled_pct"] < 5 and s["used_cpus"] < 0.8 * limit:
            out.append(
                f"At --cpus {limit:g} the quota was not the limit: the "
                f"two processes got {s['used_cpus']:.2f} CPUs because "
                "other work on this host competed for its CPUs, and the "
                "ticker's delay there comes from that competition.")
    if len(sums) > 1:
        lo, hi = min(sums), max(sums)
        a, b = sums[lo], sums[hi]
        if b["delay_ms"] > 0 and a["delay_ms"] >= 1.5 * b["delay_ms"]:
            out.append(
                f"The quota is shared by the whole cgroup: once the busy "
                f"loop has used it, the ticker cannot run until the next "
                f"period either, so its delay per wakeup is "
                f"{a['delay_ms'] / b['delay_ms']:.0f}x larger at "
                f"--cpus {lo:g} than at --cpus {hi:g}.")
    return out
