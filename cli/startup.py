"""`dockertrace startup`: a container start, phase by phase."""

import json
import sys
import textwrap

import click

from dockertrace.cli.main import cli

_BAR_WIDTH = 20


def _ms(ns):
    return ns / 1e6


def _bar(start_ns, dur_ns, t0, total_ns):
    """A waterfall bar: where in the start a phase sits, and how long."""
    if total_ns <= 0:
        return ""
    a = int((start_ns - t0) * _BAR_WIDTH / total_ns)
    b = int((start_ns - t0 + dur_ns) * _BAR_WIDTH / total_ns)
    a = min(a, _BAR_WIDTH - 1)
    return " " * a + "█" * max(1, b - a)


def _mechanisms_lines(mech):
    """Which mechanism serves which probe point, wrapped to 80 columns."""
    by = {}
    for point, m in sorted(mech.items()):
        # Entry and exit programs of one syscall are one point to a user.
        name = point.replace("dt_su_", "")
        if name.endswith(("_e", "_x")):
            name = name[:-2]
        if name not in by.setdefault(m, []):
            by[m].append(name)
    text = "; ".join(f"{m}: {', '.join(p)}" for m, p in sorted(by.items()))
    return textwrap.wrap("mechanisms: " + text, 79,
                         subsequent_indent="  ")


def render_startup(s, verbose=False, out=None):
    out = out or sys.stdout
    w = out.write
    kind = "cold" if s.cold else "warm"
    label = s.name or s.container_id[:12]
    w(f"{s.image}  container {label} ({s.container_id[:12]}), {kind}\n")
    t0 = s.phases[0].start_ns
    w(f"  {'phase':<11}{'at ms':>8}{'ms':>8}  {'':<{_BAR_WIDTH}}  detail\n")
    for p in s.phases:
        w(f"  {p.name:<11}{_ms(p.start_ns - t0):8.1f}"
          f"{_ms(p.duration_ns):8.1f}  "
          f"{_bar(p.start_ns, p.duration_ns, t0, s.total_ns):<{_BAR_WIDTH}}"
          f"  {p.detail[:27]}\n")
        if verbose:
            for e in p.events:
                w(f"    {_ms(e.start_ns - t0):8.2f} "
                  f"{e.tgid:>7} {e.comm[:15]:<15} {e.describe()[:42]}\n")
    w(f"  {'total':<11}{'':>8}{_ms(s.total_ns):8.1f}")
    if s.client_ns is not None:
        w(f"  (client measured {_ms(s.client_ns):.1f} ms)")
    w("\n")
    if s.late_exec_ns:
        w(f"  the command was exec'd {_ms(s.late_exec_ns):.1f} ms after "
          "the start call returned\n")
    if s.missing:
        w(f"  not seen: {', '.join(s.missing)}\n")


def render_summary(summary, out=None):
    out = out or sys.stdout
    w = out.write
    kind = "cold" if summary.cold else "warm"
    w(f"{kind}: median of {summary.runs} run(s)\n")
    w(f"  {'phase':<11}{'median ms':>10}{'min':>8}{'max':>8}\n")
    for p in summary.phases:
        w(f"  {p.name:<11}{_ms(p.median_ns):10.1f}{_ms(p.min_ns):8.1f}"
          f"{_ms(p.max_ns):8.1f}\n")
    w(f"  {'total':<11}{_ms(summary.median_total_ns):10.1f}\n")


@cli.command(context_settings={"ignore_unknown_options": True,
                               "allow_interspersed_args": False})
@click.option("--watch", is_flag=True,
              help="Trace every container that starts, until Ctrl-C.")
@click.option("--duration", type=click.FloatRange(min=0), default=None,
              help="With --watch: stop after this many seconds.")
@click.option("--runs", type=click.IntRange(min=1), default=1,
              show_default=True, help="Start the container N times.")
@click.option("--cold/--no-cold", default=None,
              help="Also do each run cold, after dropping the page cache "
              "[default: on when --runs > 1].")
@click.option("--verbose", is_flag=True,
              help="List the kernel events behind each phase.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
def startup(watch, duration, runs, cold, verbose, as_json, run_args):
    """Break a container start into its kernel phases.

    Starts a container from RUN_ARGS (docker run options, image, command)
    through the Engine API while tracing it, removes it again, and prints
    the start as a timeline: API request, overlay rootfs, containerd-shim,
    runc, cgroups, namespaces, mounts, network hook, pivot_root,
    capabilities and seccomp, exec. With no RUN_ARGS it starts the
    built-in busybox image running `true`.

    \b
    Examples:
      dockertrace startup
      dockertrace startup -- --network host dockertrace-busybox true
      dockertrace startup --runs 5 -- dockertrace-busybox true
      dockertrace startup --watch --duration 60
    """
    import dockertrace.startup as su

    if run_args and run_args[0] == "--":
        run_args = run_args[1:]
    if watch:
        if run_args:
            raise click.UsageError("--watch traces the containers others "
                                   "start; give no docker run arguments")
        for s in su.watch_startups(duration_s=duration):
            if as_json:
                click.echo(json.dumps(s.to_dict(verbose)))
            else:
                render_startup(s, verbose)
                click.echo()
        return

    if cold is None:
        cold = runs > 1

    def progress(i, n):
        if n > 1 and not as_json:
            click.echo(f"run {i + 1}/{n}", err=True)

    result = su.trace_startup(list(run_args) or None, runs=runs, cold=cold,
                              progress=progress)
    if as_json:
        click.echo(json.dumps(result.to_dict(verbose), indent=2))
        return
    for line in _mechanisms_lines(result.mechanisms):
        click.echo(line)
    click.echo(f"attached in {result.attach_s * 1000:.0f} ms, "
               f"dropped events: {result.dropped_events}")
    click.echo()
    if len(result.runs) == 1:
        render_startup(result.runs[0], verbose)
        return
    if verbose:
        for s in result.runs:
            render_startup(s, verbose)
            click.echo()
    for summary in (result.cold, result.warm):
        if summary:
            render_summary(summary)
            click.echo()
