"""`dockertrace bench`: the analysis suite's benchmarks."""

import json
import sys
import textwrap

import click

from dockertrace.cli.main import cli

_WIDTH = 80


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def render_section(s, out=None):
    w = (out or sys.stdout).write
    w(f"== {s.name}: {s.title}\n")
    if s.error:
        w(f"  failed: {s.error}\n")
    for f in s.figures:
        value = f"{_fmt(f.value)} {f.unit}"
        if f.spread:
            value += f" ({_fmt(f.spread[0])}-{_fmt(f.spread[1])})"
        label = f.label[:_WIDTH - 4 - len(value) - 2]
        w(f"  {label:<{_WIDTH - 5 - len(value)}} {value}\n")
    for line in s.explanation:
        for i, part in enumerate(textwrap.wrap(line, _WIDTH - 4)):
            w(("  - " if i == 0 else "    ") + part + "\n")
    if s.dropped_events:
        w(f"  dropped events: {s.dropped_events}\n")
    w(f"  rerun:\n  {s.rerun}\n")


def render(result, out=None):
    w = (out or sys.stdout).write
    env = result.environment
    w(f"dockertrace {env.dockertrace_version}, kernel {env.kernel}, "
      f"Docker {env.docker_version}, {env.cpus} CPUs\n\n")
    for s in result.sections:
        render_section(s, out)
        w("\n")
    w(f"total: {result.duration_s:.1f} s\n")


class _RichProgress:
    """A progress bar per section on stderr, 80 columns wide."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (BarColumn, Progress, TextColumn,
                                   TimeElapsedColumn)
        console = Console(stderr=True, width=min(_WIDTH, Console(
            stderr=True).width))
        self._bar = Progress(
            TextColumn("{task.fields[section]:<8}"), BarColumn(bar_width=16),
            TextColumn("{task.description}"), TimeElapsedColumn(),
            console=console, transient=False)
        self._tasks = {}

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def __call__(self, p):
        task = self._tasks.get(p.section)
        desc = p.message[:38]
        if task is None:
            task = self._bar.add_task(desc, total=p.total,
                                      section=p.section)
            self._tasks[p.section] = task
        self._bar.update(task, completed=p.done, total=p.total,
                         description=desc)


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


@cli.command()
@click.option("--suite", "suites", default=None, metavar="NAMES",
              help="Comma-separated sections: startup, io, network, "
              "memory, cpu [default: all].")
@click.option("--runs", type=click.IntRange(min=1), default=3,
              show_default=True, help="Repetitions per measurement.")
@click.option("--image", default="dockertrace-busybox:latest",
              show_default=True, help="busybox image for the workloads "
              "(copy-up and memory use dockertrace-bigfiles).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the SuiteResult as JSON.")
def bench(suites, runs, image, as_json):
    """Run the benchmark suite: container start (cold and warm, by
    network mode), storage (throughput, copy-up), network (bridge
    against host), memory (page cache shared between containers) and
    CPU (throttling under --cpus). Every container, network and volume
    it makes is labelled dockertrace.owner=bench and removed again, also
    on Ctrl-C.

    \b
    Examples:
      dockertrace bench
      dockertrace bench --suite network,cpu --runs 5
      dockertrace bench --json > suite.json
    """
    import signal

    from dockertrace.bench.suite import _names, as_dict, run_suite

    # SIGTERM before the first container exists must end with 143 too,
    # not with the default kill (the sections install the same handler).
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        names = _names(suites)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--suite")
    if as_json:
        result = run_suite(names, runs=runs, image=image)
        click.echo(json.dumps(as_dict(result), indent=2, default=str))
        return
    with _RichProgress() as progress:
        result = run_suite(names, runs=runs, image=image,
                           progress=progress)
    render(result)
    if any(s.error for s in result.sections):
        sys.exit(1)
