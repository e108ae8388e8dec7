"""`dockertrace doctor`: what this kernel offers, and what each tracer uses."""

import json
import os
import shutil
import time

import click

from dockertrace.cli.main import cli

WIDTH = 80

_STYLE = {"supported": "green", "not supported": "red", "unknown": "yellow"}


def collect():
    """Everything doctor reports, as plain data (the --json document)."""
    try:
        from dockertrace import engine
        from dockertrace.engine import features, loader
    except ImportError as err:  # the C extension is built by make
        raise click.ClickException(
            f"dockertrace is not built ({err}); run `make`") from err

    start = time.monotonic()
    probes = features.probe_all()
    probe_ms = (time.monotonic() - start) * 1e3

    tracers = {}
    for name in engine.available_objects():
        try:
            tracers[name] = engine.plan(name, features=probes)
        except Exception as err:  # report a broken object, go on
            tracers[name] = {"error": str(err)}
    selftest = tracers.pop("selftest", None)

    return {
        "kernel": os.uname().release,
        "probe_ms": round(probe_ms, 1),
        "features": {
            p.feature: {"outcome": p.outcome.value, "detail": p.detail,
                        "errno": p.errno,
                        "description": features.FEATURES[p.feature]}
            for p in probes.values()},
        "tracers": tracers,
        "selftest": selftest,
        "objdir": str(loader.OBJDIR),
    }


def _by_mechanism(plan):
    """``{mechanism: [points]}``, unusable points under "none"."""
    by = {}
    for point, mech in plan.items():
        by.setdefault(mech or "none", []).append(point)
    return by


def _short(point, tracer_points):
    # Points share a prefix (dt_su_...); drop it so more fit on a line.
    prefix = os.path.commonprefix(tracer_points)
    prefix = prefix[:prefix.rfind("_") + 1] if "_" in prefix else ""
    return point[len(prefix):] or point


def _plan_rows(name, plan):
    if "error" in plan:
        return [(name, "error", plan["error"])]
    rows = []
    names = list(plan)
    for mech, pts in sorted(_by_mechanism(plan).items()):
        shown = ", ".join(_short(p, names) for p in pts)
        rows.append((name, mech, f"{len(pts)}: {shown}"))
        name = ""
    return rows


def _render_rich(report, console):
    from rich import box
    from rich.table import Table

    console.print(f"kernel [bold]{report['kernel']}[/bold]   "
                  f"(probes took {report['probe_ms']:.0f} ms)")
    table = Table(box=box.SIMPLE, title="kernel features",
                  title_justify="left", show_lines=False)
    table.add_column("feature", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for name, f in report["features"].items():
        style = _STYLE.get(f["outcome"], "")
        table.add_row(name, f"[{style}]{f['outcome']}[/{style}]",
                      f["detail"])
    console.print(table)

    table = Table(box=box.SIMPLE, title="mechanism per probe point",
                  title_justify="left")
    table.add_column("tracer", no_wrap=True)
    table.add_column("uses", no_wrap=True)
    table.add_column("points", overflow="fold")
    for name, plan in report["tracers"].items():
        for row in _plan_rows(name, plan):
            table.add_row(*row)
    if report["selftest"] is not None:
        for row in _plan_rows("(selftest)", report["selftest"]):
            table.add_row(*row)
    if not report["tracers"] and report["selftest"] is None:
        table.add_row("-", "-", f"no objects in {report['objdir']}; "
                      "run `make bpf`")
    console.print(table)


def _render_plain(report, echo):
    echo(f"kernel {report['kernel']}   (probes took "
         f"{report['probe_ms']:.0f} ms)")
    echo("")
    echo("kernel features")
    for name, f in report["features"].items():
        echo(f"  {name:<11}{f['outcome']:<15}{f['detail']}"[:WIDTH])
    echo("")
    echo("mechanism per probe point")
    tracers = dict(report["tracers"])
    if report["selftest"] is not None:
        tracers["(selftest)"] = report["selftest"]
    for name, plan in tracers.items():
        for tracer, mech, pts in _plan_rows(name, plan):
            echo(f"  {tracer:<11}{mech:<8}{pts}"[:WIDTH])


@cli.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document instead of tables.")
def doctor(as_json):
    """Check what this kernel offers and what each tracer will use.

    Runs the feature probes (three outcomes: supported, not supported,
    unknown) and shows, for every built tracer, which mechanism each of its
    probe points would use here.  Needs root for meaningful answers.

    \b
    Examples:
      sudo dockertrace doctor
      sudo dockertrace doctor --json | jq .features.fentry
    """
    report = collect()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    try:
        from rich.console import Console
    except ImportError:
        _render_plain(report, click.echo)
        return
    cols = shutil.get_terminal_size((WIDTH, 24)).columns
    console = Console(width=min(WIDTH, cols), highlight=False,
                      file=click.get_text_stream("stdout"))
    _render_rich(report, console)
