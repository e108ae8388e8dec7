"""`dockertrace copyup` and `dockertrace layers`: OverlayFS copy-ups as
they happen, and the layers behind a container's rootfs."""

import datetime
import json
import sys
import textwrap

import click

from dockertrace.cli.main import cli


def human_bytes(n):
    if n is None:
        return "-"
    for unit in ("", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)


def human_ns(ns):
    if ns is None:
        return "-"
    if ns < 1_000_000:
        return f"{ns / 1e3:.0f}us"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f}ms"
    return f"{ns / 1e9:.2f}s"


def _clock(tracer, ts_ns):
    wall = tracer.wall_ns(ts_ns) / 1e9
    return datetime.datetime.fromtimestamp(wall).strftime("%H:%M:%S")


_HEADER = (f"{'time':<8} {'container':<12} {'pid/comm':<12} {'size':>6} "
           f"{'latency':>7} {'copy':<4} {'trigger':<11} path")


def render_event(tracer, ev, out=None):
    out = out or sys.stdout
    who = ev.container_name or (ev.container_id or "-")[:12]
    proc = f"{ev.pid}/{ev.comm}"
    kind = "data" if ev.copy == "data" else "meta"
    path = ev.path
    if ev.file_type == "dir":
        path += "/"
    if ev.dirs_copied:
        path += f" (+{ev.dirs_copied} dir{'s' * (ev.dirs_copied > 1)})"
    out.write(f"{_clock(tracer, ev.ts_ns)} {who[:12]:<12} {proc[:12]:<12} "
              f"{human_bytes(ev.size_bytes):>6} "
              f"{human_ns(ev.latency_ns):>7} {kind:<4} "
              f"{ev.trigger[:11]:<11} {path}\n")


def render_summary(summary, out=None):
    out = out or sys.stdout
    w = out.write
    if not summary.containers:
        w("no copy-ups seen\n")
    for c in summary.containers:
        who = c.container_name or "(not in a container)"
        w(f"{who}: {c.count} copy-up(s), {human_bytes(c.bytes)}, "
          f"total {human_ns(c.total_latency_ns)}, "
          f"p50 {human_ns(c.p50_latency_ns)}, "
          f"p99 {human_ns(c.p99_latency_ns)}\n")
        for title, files, key in (("by bytes", c.top_by_bytes, "bytes"),
                                  ("by time", c.top_by_time, "time")):
            w(f"  top files {title}:\n")
            for f in files:
                val = human_bytes(f.bytes) if key == "bytes" \
                    else human_ns(f.latency_ns)
                w(f"    {val:>8}  {f.path}"
                  f"{f' (x{f.count})' if f.count > 1 else ''}\n")
    w(f"dropped events: {summary.dropped_events}\n")


def _mechanism_lines(tracer):
    lines = [f"mechanism: {tracer.mechanism}"]
    if tracer.limits:
        lines += textwrap.wrap("cannot measure: " + tracer.limits, 79,
                               subsequent_indent="  ")
    return lines


@cli.command()
@click.option("--container", "-c", "containers", multiple=True,
              metavar="NAME_OR_ID",
              help="Only this container (repeatable).")
@click.option("--duration", type=click.FloatRange(min=0), default=None,
              help="Stop after this many seconds (default: Ctrl-C).")
@click.option("--top", type=click.IntRange(min=1), default=5,
              show_default=True, help="Files per top list in the summary.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per event, then one summary object.")
def copyup(containers, duration, top, as_json):
    """Show OverlayFS copy-ups of containers as they happen.

    A container that writes to a file from its image makes overlay copy
    the whole file into the container's writable layer first. Each line
    is one copy-up: time, container, pid/command, size copied, latency,
    data or metadata-only, the operation that triggered it, and the path
    as the container sees it (with the parent directories copied along
    the way). On exit, a summary per container.

    \b
    Examples:
      dockertrace copyup
      dockertrace copyup --container web --duration 60
      dockertrace copyup --json > copyups.jsonl
    """
    from dockertrace.copyup import CopyupTracer

    with CopyupTracer(containers=containers) as tracer:
        if as_json:
            click.echo(json.dumps({"mechanism": tracer.mechanism,
                                   "limits": tracer.limits}))
        else:
            for line in _mechanism_lines(tracer):
                click.echo(line)
            click.echo(_HEADER)
        try:
            for ev in tracer.events(duration_s=duration):
                if as_json:
                    d = ev.to_dict()
                    d["time"] = tracer.wall_ns(ev.ts_ns) / 1e9
                    click.echo(json.dumps(d))
                else:
                    render_event(tracer, ev)
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass
        summary = tracer.summary(top=top)
    if as_json:
        click.echo(json.dumps({"summary": summary.to_dict()}))
    else:
        click.echo()
        render_summary(summary)


def render_layers(lay, out=None):
    out = out or sys.stdout
    w = out.write
    w(f"container {lay.container_name} ({lay.container_id[:12]})\n")
    w(f"overlay at {lay.mount_point}\n  (from {lay.source})\n")
    opts = " ".join(f"{k}={v}" for k, v in lay.copy_options.items())
    w(f"options: {opts}\n")
    if lay.whole_file_copies:
        w("  metacopy is off: the first write, truncate, chmod, chown or\n"
          "  touch of a file from a lower layer copies all of it up\n")
    else:
        w("  metacopy is on: chmod, chown and touch copy only metadata;\n"
          "  the first write still copies the whole file\n")
    w(f"{'layer':<8} {'size':>8} {'files':>7}  path\n")
    n = 0
    for layer in lay.layers:
        if layer.role == "lower":
            n += 1
        name = "upper" if layer.role == "upper" else f"lower{n}"
        files = "-" if layer.files is None else str(layer.files)
        w(f"{name:<8} {human_bytes(layer.size_bytes):>8} {files:>7}  "
          f"{layer.real_path}\n")
    if lay.work_dir:
        w(f"{'work':<8} {'':>8} {'':>7}  {lay.work_dir}\n")


@cli.command()
@click.argument("container")
@click.option("--no-sizes", is_flag=True,
              help="Do not walk the layers to size them (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def layers(container, no_sizes, as_json):
    """Show a container's OverlayFS layers and mount options.

    Read from the kernel's mount table: the lower layers (top first),
    the upper (writable) layer and the work dir, with their sizes, and
    the options that decide what a write copies up (metacopy,
    redirect_dir, index, volatile, xino).

    \b
    Examples:
      dockertrace layers web
      dockertrace layers --json 3f2a9c
    """
    from dockertrace.copyup import layers_of

    lay = layers_of(container, sizes=not no_sizes)
    if as_json:
        click.echo(json.dumps(lay.to_dict(), indent=2))
    else:
        render_layers(lay)
