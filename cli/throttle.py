"""`dockertrace throttle` and `dockertrace limits`: CPU throttling per
period, and a container's limits as enforced and as declared."""

import json
import sys

import click

from dockertrace.cli.main import cli

_TIMELINE_WIDTH = 56
_LABEL_WIDTH = 16
# Share of a column's wall time spent throttled -> shade.
_SHADES = ((0.75, "█"), (0.5, "▓"), (0.25, "▒"), (0.0, "░"))


def _ms(ns):
    return f"{ns / 1e6:.1f} ms"


def _dur(ns):
    return f"{ns / 1e9:.2f} s" if ns >= 1e9 else _ms(ns)


def timeline_row(periods, t0, t1, width=_TIMELINE_WIDTH):
    """One character per slice of [t0, t1): blank where the group did not
    run a period, `·` where it ran unthrottled, shades by how much of the
    slice it spent throttled."""
    if t1 <= t0:
        return " " * width
    step = (t1 - t0) / width
    ran = [False] * width
    thr = [0.0] * width
    for p in periods:
        a = int((p.start_ns - t0) / step)
        b = int((p.end_ns - 1 - t0) / step)
        dur = max(1, p.end_ns - p.start_ns)
        for c in range(max(0, a), min(b, width - 1) + 1):
            ran[c] = True
            if p.throttled:
                # throttled_ns sums CPUs; share it out by how much of the
                # period falls in the column.
                lo = max(p.start_ns, t0 + c * step)
                hi = min(p.end_ns, t0 + (c + 1) * step)
                thr[c] += max(p.throttled_ns, 1) * (hi - lo) / dur / step
    out = []
    for c in range(width):
        if not ran[c]:
            out.append(" ")
        elif thr[c] <= 0:
            out.append("·")
        else:
            out.append(next(ch for lim, ch in _SHADES if thr[c] > lim))
    return "".join(out)


def render_timeline(res, out):
    groups = [g for g in res.groups if g.periods]
    if not groups:
        return
    t0 = min(g.periods[0].start_ns for g in groups)
    t1 = max(g.periods[-1].end_ns for g in groups)
    w = out.write
    w(f"{'':<{_LABEL_WIDTH}} |{'time →':<{_TIMELINE_WIDTH}}| "
      f"{_dur(t1 - t0)}\n")
    for g in groups:
        w(f"{g.label[:_LABEL_WIDTH]:<{_LABEL_WIDTH}} |"
          f"{timeline_row(g.periods, t0, t1)}|\n")
    w(f"{'':<{_LABEL_WIDTH}}  · ran unthrottled  ░▒▓█ share of the time "
      "throttled\n")


def _limit_text(s):
    if s.quota_ns is None:
        return "no CPU limit"
    text = (f"limit {s.quota_ns / s.period_ns:.2f} CPUs "
            f"({_ms(s.quota_ns)} per {_ms(s.period_ns)})")
    if s.burst_ns:
        text += f", burst {_ms(s.burst_ns)}"
    return text


def _threads_text(g):
    by = {}
    for p in g.periods:
        for t in p.threads:
            key = (t.comm, t.tid)
            by[key] = by.get(key, 0) + t.used_ns
    top = sorted(by.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{c}[{tid}] {_dur(ns)}" for (c, tid), ns in top)


def _suggestion_text(s):
    sg = s.suggestion
    if sg.kind == "none":
        return f"nothing to change ({sg.reason})"
    left = f"would have left {sg.remaining_share:.0%} of the throttling"
    if sg.kind == "burst":
        return (f"burst {_ms(sg.burst_ns)} (cpu.cfs_burst_us="
                f"{sg.burst_ns // 1000} / cpu.max.burst) {left}; "
                f"{sg.reason}")
    return (f"quota {_ms(sg.quota_ns)} per {_ms(sg.period_ns)} "
            f"(--cpus {sg.cpus:.2f}) {left}; {sg.reason}")


def render_summary(g, out):
    s = g.summary
    w = out.write
    ident = g.container_id[:12] or g.cgroup_path
    w(f"{g.label} ({ident}): {_limit_text(s)}\n")
    w(f"  periods {s.periods}, throttled {s.throttled_periods} "
      f"({s.throttled_share:.0%}), throttled {_dur(s.throttled_total_ns)}"
      " in all\n")
    w(f"  throttled per period: p50 {_ms(s.throttled_p50_ns)}, "
      f"p99 {_ms(s.throttled_p99_ns)}, max {_ms(s.throttled_max_ns)}\n")
    if s.used_cpus is not None:
        line = f"  used {s.used_cpus:.2f} CPUs on average"
        threads = _threads_text(g)
        if threads:
            line += f"; busiest: {threads}"
        w(line[:200] + "\n")
    for chunk in _wrap("suggestion: " + _suggestion_text(s)):
        w(f"  {chunk}\n")


def _wrap(text):
    import textwrap
    return textwrap.wrap(text, 76, subsequent_indent="  ")


def render_periods(g, out):
    w = out.write
    w(f"{g.label}:\n  {'at':>8} {'quota':>9} {'used':>9} {'throttled':>10}"
      "  threads\n")
    t0 = g.periods[0].start_ns
    for p in g.periods:
        quota = _ms(p.quota_ns) if p.quota_ns is not None else "-"
        used = _ms(p.used_ns) if p.used_ns is not None else "-"
        thr = _ms(p.throttled_ns) if p.throttled else "no"
        threads = " ".join(f"{t.comm}[{t.tid}]:{t.used_ns / 1e6:.1f}"
                           for t in p.threads[:3])
        w(f"  {(p.end_ns - t0) / 1e9:7.2f}s {quota:>9} {used:>9} "
          f"{thr:>10}  {threads}"[:79] + "\n")


@cli.command()
@click.option("-c", "--container", "containers", multiple=True,
              metavar="NAME_OR_ID", help="Trace this container (again for "
              "more). Default: every cgroup with a CPU quota.")
@click.option("--cgroup", "cgroups", multiple=True, metavar="PATH",
              help="Trace this cgroup (path in the cpu hierarchy).")
@click.option("--duration", type=click.FloatRange(min=0.1), default=10.0,
              show_default=True, help="Seconds to trace.")
@click.option("--periods", "show_periods", is_flag=True,
              help="Also list every period.")
@click.option("--live", is_flag=True,
              help="Print each throttled period as it ends.")
@click.option("--no-threads", is_flag=True,
              help="Do not account CPU time per thread (cheaper).")
@click.option("--mechanism", type=click.Choice(["auto", "bpf",
                                                "cpu.stat"]),
              default="auto", show_default=True,
              help="BPF, or cpu.stat polled (coarser).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def throttle(containers, cgroups, duration, show_periods, live,
             no_threads, mechanism, as_json):
    """Show CFS bandwidth throttling per container and per period.

    For each period of each traced group: quota, period, CPU time used,
    whether it ended throttled and for how long, and the threads that
    used the quota. Then a timeline (one row per container, time to the
    right) and a summary with a quota or burst that would have avoided
    most of the throttling.

    \b
    Examples:
      dockertrace throttle --duration 5
      dockertrace throttle -c web -c db --periods
      dockertrace throttle -c web --live --duration 60
      dockertrace throttle --mechanism cpu.stat --json
    """
    import dockertrace.throttle as th

    def on_period(cgid, p):
        if p.throttled:
            used = _ms(p.used_ns) if p.used_ns is not None else "-"
            click.echo(f"cgroup {cgid}: throttled {_ms(p.throttled_ns)}"
                       f", used {used} of {_ms(p.quota_ns or 0)}")

    res = th.trace_throttle(containers, duration, cgroups=cgroups,
                            threads=not no_threads, mechanism=mechanism,
                            on_period=on_period if live and not as_json
                            else None)
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
        return
    out = sys.stdout
    click.echo(f"mechanism: {res.mechanism}")
    for line in _wrap(res.mechanism_detail):
        click.echo(f"  {line}")
    click.echo(f"dropped events: {res.dropped_events}")
    click.echo()
    if not res.groups:
        click.echo("no period of a CPU-limited group ended while tracing")
        return
    render_timeline(res, out)
    click.echo()
    for g in res.groups:
        render_summary(g, out)
        if show_periods:
            render_periods(g, out)
        click.echo()


def _human(name, value):
    if value is None:
        return "none"
    if name == "cpus":
        return f"{value:.2f}"
    if name.endswith("_bytes"):
        for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20),
                           ("KiB", 1 << 10)):
            if value >= size:
                return f"{value / size:.1f} {unit}"
        return f"{value} B"
    return str(value)


@cli.command()
@click.argument("container")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def limits(container, as_json):
    """A container's CPU, memory and pids limits, enforced and declared.

    Reads the limits from the container's cgroups (v1 or v2, including a
    tighter limit on a parent cgroup) and puts them next to what was
    declared through the Engine API.

    \b
    Examples:
      dockertrace limits web
      dockertrace limits 3f2a1b --json
    """
    from dockertrace.throttle.limits import container_limits

    lim = container_limits(container)
    if as_json:
        click.echo(json.dumps(lim.to_dict(), indent=2))
        return
    click.echo(f"{lim.name} ({lim.container_id[:12]}), cgroup "
               f"{lim.cgroup_mode}, {lim.cgroup_path}")
    click.echo(f"  {'limit':<26}{'enforced':>12}{'declared':>12}  "
               "source")
    for r in lim.rows:
        mark = "" if r.matches else "  ≠"
        click.echo(f"  {r.name:<26}{_human(r.name, r.effective):>12}"
                   f"{_human(r.name, r.declared):>12}  "
                   f"{r.source}{mark}"[:79])
        if r.note:
            click.echo(f"  {'':<26}{r.note}"[:79])
