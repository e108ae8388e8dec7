"""io: write throughput by storage kind, and the cost of OverlayFS copy-up.

Two measured parts, then one traced part:

1. throughput: ``dd ... conv=fsync`` into the container's writable layer
   (overlay upper dir), a named volume (a plain directory on the host
   filesystem) and a tmpfs, timed inside the container between two
   clock marks;
2. copy-up: the first and the second append to image files of 4 KiB,
   1 MiB and 64 MiB (``dockertrace-bigfiles``). The first write copies
   the whole file up to the writable layer; the second does not, so the
   difference is the copy-up;
3. the copy-up tracer, when this version has it, watches step 2 and says
   how many copy-ups the kernel did and for which files.
"""

import logging

from dockertrace.bench.common import (BIGFILES_IMAGE, Containers, Reporter,
                                      WorkloadFailed, figure_of,
                                      overlay_metacopy, rerun)
from dockertrace.bench.model import Section, Series, Table
from dockertrace.bench.parse import (MARK_FUNCTION, mark_delta_s, median,
                                     parse_dd, parse_marks, segments)

log = logging.getLogger(__name__)

#: MiB written per dd run. Enough that the mark overhead (about 1 ms) is
#: under 1 % of a run, small enough for a shared 2-core machine.
WRITE_MIB = 64
TARGETS = (("layer", "/bench-layer"), ("volume", "/bench-volume"),
           ("tmpfs", "/bench-tmpfs"))
#: The image files of known sizes in dockertrace-bigfiles.
COPYUP_FILES = ("f4k", "f1m", "f64m")


def throughput_script(runs, mib=WRITE_MIB):
    """Shell script: ``runs`` rounds of one fsync'd dd per target."""
    lines = [MARK_FUNCTION, "set -e", "mkdir -p /bench-layer"]
    for r in range(1, runs + 1):
        for name, path in TARGETS:
            lines += [f"m {name}.{r}.a",
                      f"dd if=/dev/zero of={path}/f bs=1M count={mib} "
                      "conv=fsync 2>&1",
                      f"m {name}.{r}.b",
                      f"rm -f {path}/f"]
    return "\n".join(lines)


def parse_throughput(text, runs, mib=WRITE_MIB):
    """``{target: [MiB/s per run]}`` from the throughput script's output.

    A dd that wrote fewer full blocks than asked is an error, not a
    slow run.
    """
    marks, segs = parse_marks(text), segments(text)
    out = {}
    for name, _path in TARGETS:
        rates = []
        for r in range(1, runs + 1):
            dd = parse_dd(segs.get(f"{name}.{r}.a", ""))
            secs = mark_delta_s(marks, f"{name}.{r}.a", f"{name}.{r}.b")
            if dd is None or secs is None:
                raise WorkloadFailed(f"no dd result for {name} run {r}")
            if dd.full_blocks_out != mib:
                raise WorkloadFailed(f"dd wrote {dd.records_out} blocks "
                                     f"of 1 MiB to {name}, not {mib}")
            # dd's own timing when it prints one, else the marks.
            if dd.seconds:
                secs = dd.seconds
            rates.append(round(mib / secs, 1))
        out[name] = rates
    return out


def copyup_script(files=COPYUP_FILES):
    """Shell script: size, first and second append of each file."""
    lines = [MARK_FUNCTION, "set -e"]
    for f in files:
        lines += [f'echo "@size {f} $(stat -c %s /data/{f})"',
                  f"m {f}.1", f"echo x >> /data/{f}",
                  f"m {f}.2", f"echo x >> /data/{f}",
                  f"m {f}.3"]
    return "\n".join(lines)


def parse_copyup(text, files=COPYUP_FILES):
    """``{file: (size_bytes, first_ms, second_ms)}`` of one container."""
    import re

    sizes = dict(re.findall(r"^@size (\S+) (\d+)$", text, re.M))
    marks = parse_marks(text)
    out = {}
    for f in files:
        first = mark_delta_s(marks, f"{f}.1", f"{f}.2")
        second = mark_delta_s(marks, f"{f}.2", f"{f}.3")
        if first is None or second is None or f not in sizes:
            raise WorkloadFailed(f"no copy-up timing for /data/{f}")
        out[f] = (int(sizes[f]), round(first * 1000, 3),
                  round(second * 1000, 3))
    return out


def run(*, runs=3, image, progress=None, copyup_image=BIGFILES_IMAGE):
    rep = Reporter("io", 1 + runs, progress)
    with Containers() as box:
        rep.step(f"dd {WRITE_MIB} MiB x {runs} into layer, volume, tmpfs")
        vol = box.volume("io")
        out = box.run(
            image, ["sh", "-c", throughput_script(runs)], hint="io-dd",
            volumes={vol.name: {"bind": "/bench-volume", "mode": "rw"}},
            tmpfs={"/bench-tmpfs": f"size={WRITE_MIB + 16}m"})
        rates = parse_throughput(out, runs)

        tracer, why_not = open_copyup_tracer()
        copyups, traced = [], []
        try:
            for r in range(runs):
                rep.step(f"copy-up run {r + 1}/{runs}")
                c = box.start(copyup_image, ["sh", "-c", copyup_script()],
                              hint=f"io-copyup{r + 1}")
                code = box.wait(c)
                text = c.logs().decode(errors="replace")
                if code != 0:
                    raise WorkloadFailed(f"copy-up workload exited {code}: "
                                         f"{text.strip()[-300:]}")
                copyups.append(parse_copyup(text))
                if tracer is not None:
                    traced.append(collect_copyups(tracer, c))
                box.remove(c)
            mechanisms = tracer_mechanisms(tracer)
            dropped = tracer_dropped(tracer)
            limits = getattr(tracer, "limits", "") if tracer else ""
        finally:
            if tracer is not None:
                tracer.close()
    rep.finish()
    return build_section(rates, copyups, runs=runs, image=image,
                         traced=traced if tracer is not None else None,
                         why_not=why_not, mechanisms=mechanisms,
                         dropped=dropped, limits=limits)


# --- the traced step: the copy-up tracer, wired in where it exists -----

def open_copyup_tracer():
    """``(tracer, None)``, or ``(None, why)`` when this version or this
    kernel has no copy-up tracer. Figures are measured either way."""
    try:
        from dockertrace.copyup import CopyupTracer
    except ImportError:
        return None, ("the copy-up tracer (dockertrace.copyup) is not "
                      "available in this version, so the copy-ups were "
                      "timed but not traced")
    try:
        return CopyupTracer(), None
    except Exception as err:  # noqa: BLE001 - the figures still stand
        log.warning("copy-up tracer could not attach: %s", err)
        return None, f"the copy-up tracer could not attach: {err}"


def collect_copyups(tracer, container):
    """The copy-ups the tracer saw in ``container``: ``{file name:
    CopyUp}`` for the files of :data:`COPYUP_FILES`, plus ``"other"``:
    how many other copy-ups (the /data directory) it saw."""
    tracer.settle()
    mine = [e for e in tracer.seen() if e.container_id == container.id]
    out = {"other": 0}
    for e in mine:
        name = e.path.rsplit("/", 1)[-1]
        if name in COPYUP_FILES and e.file_type != "dir":
            out[name] = e
        else:
            out["other"] += 1
    return out


def tracer_mechanisms(tracer):
    return dict(tracer.mechanisms) if tracer is not None else {}


def tracer_dropped(tracer):
    return tracer.dropped_events if tracer is not None else 0


# --- results ------------------------------------------------------------

def build_section(rates, copyups, *, runs, image, traced=None, why_not=None,
                  mechanisms=None, dropped=0, limits=""):
    figures, rows = [], []
    for name, vals in rates.items():
        figures.append(figure_of(
            f"io.write.{name}.mib_s", f"fsync'd write into the {name}",
            vals, "MiB/s", f"median of {len(vals)} dd runs of {WRITE_MIB} "
            "MiB (min, max)", digits=1))
        rows.append((name, round(median(vals), 1), min(vals), max(vals)))
    tables = [Table(title=f"Write throughput, dd {WRITE_MIB} MiB with "
                          "conv=fsync (MiB/s)",
                    columns=("target", "median", "min", "max"),
                    rows=tuple(rows),
                    note="layer: overlay upper dir; volume: a named "
                         "local volume; tmpfs: fsync is a no-op")]

    sizes, firsts, seconds, crow = [], [], [], []
    for f in COPYUP_FILES:
        size = copyups[0][f][0]
        first = [c[f][1] for c in copyups]
        second = [c[f][2] for c in copyups]
        cost = [a - b for a, b in zip(first, second)]
        sizes.append(size)
        firsts.append(round(median(first), 3))
        seconds.append(round(median(second), 3))
        n = f"median of {len(first)} containers (min, max)"
        figures += [
            figure_of(f"io.copyup.{f}.first_ms", f"first append to {f}",
                      first, "ms", n),
            figure_of(f"io.copyup.{f}.second_ms", f"second append to {f}",
                      second, "ms", n),
            figure_of(f"io.copyup.{f}.cost_ms", f"copy-up of {f} (first "
                      "minus second append)", cost, "ms",
                      "median of the per-container differences")]
        crow.append((f, size, round(median(first), 3),
                     round(median(second), 3), round(median(cost), 3)))
    tables.append(Table(
        title="First against second append to an image file (ms)",
        columns=("file", "bytes", "first", "second", "copy-up"),
        rows=tuple(crow),
        note="timed inside the container; both include about 1 ms of "
             "clock-mark overhead, which cancels in the difference"))
    series = [
        Series(key="io.copyup.by_size", title="Copy-up cost by size",
               kind="line", x=tuple(sizes),
               y={"first write": firsts, "second write": seconds},
               x_label="file size (bytes)", y_label="ms", log_x=True),
        Series(key="io.write.by_target", title="Write throughput",
               kind="bars", x=tuple(rates),
               y={"median": [round(median(v), 1)
                             for v in rates.values()]},
               x_label="target", y_label="MiB/s")]

    expl = explain(rates, dict(zip(COPYUP_FILES, zip(sizes, firsts,
                                                     seconds))))
    if traced is None:
        expl.append(f"Not traced: {why_not}.")
    else:
        figures += _traced_figures(traced)
        tables.append(_traced_table(traced))
        series[0].y["traced copy-up"] = [
            _median_ms([t[f].latency_ns for t in traced if f in t])
            for f in COPYUP_FILES]
        expl += _explain_traced(traced, limits)
    return Section(name="io", title="Storage: write throughput and "
                   "OverlayFS copy-up", figures=tuple(figures),
                   tables=tuple(tables), series=tuple(series),
                   explanation=tuple(expl), rerun=rerun("io", runs, image),
                   mechanisms=dict(mechanisms or {}), dropped_events=dropped)


def explain(rates, copyup):
    out = []
    if all(k in rates for k in ("layer", "volume", "tmpfs")):
        layer, vol = median(rates["layer"]), median(rates["volume"])
        tmp = median(rates["tmpfs"])
        out.append(
            f"A fsync'd write of new files reached {layer:.0f} MiB/s in "
            f"the writable layer (overlay upper directory), {vol:.0f} "
            f"MiB/s in a volume and {tmp:.0f} MiB/s in tmpfs, where fsync "
            "has nothing to write back. A new file needs no copy-up, so "
            "the layer pays only overlay's own lookups.")
    if "f64m" in copyup and "f4k" in copyup:
        size, first, second = copyup["f64m"]
        cost = first - second
        rate = (size / 2**20) / (cost / 1000) if cost > 0 else 0
        meta = {True: " (overlay's metacopy is on here, yet data is "
                      "copied on a write)",
                False: " (overlay's metacopy is off on this host)",
                None: ""}[overlay_metacopy()]
        out.append(
            f"The first append to a 64 MiB image file took {first:.1f} ms "
            f"and the second {second:.1f} ms: overlayfs copies the whole "
            f"file into the upper layer on the first open for writing"
            f"{meta}" + (f", about {rate:.0f} MiB/s." if rate else "."))
        _s4, f4, sec4 = copyup["f4k"]
        if f4 > sec4:
            out.append(
                f"For 4 KiB the first append took {f4:.2f} ms against "
                f"{sec4:.2f} ms: a copy-up has a fixed part (a temporary "
                "inode in the work directory, then a rename) that small "
                "files pay too.")
        else:
            out.append(
                "For 4 KiB the first and second append do not differ at "
                "the resolution of these marks (about a millisecond of "
                "fork and exec jitter).")
    return out


def _median_ms(ns_values):
    vals = [v for v in ns_values if v is not None]
    return round(median(vals) / 1e6, 3) if vals else None


def _traced_figures(traced):
    out = []
    for f in COPYUP_FILES:
        lat = [t[f].latency_ns / 1e6 for t in traced if f in t]
        if lat:
            out.append(figure_of(
                f"io.copyup.{f}.traced_ms", f"copy-up of {f} as traced",
                lat, "ms", f"kernel-measured, median of {len(lat)} "
                "containers (min, max)"))
    counts = [sum(1 for f in COPYUP_FILES if f in t) for t in traced]
    out.append(figure_of("io.copyup.traced_count", "file copy-ups traced "
                         "per container", counts, "count",
                         f"expected {len(COPYUP_FILES)}", digits=0))
    return out


def _traced_table(traced):
    rows = []
    for f in COPYUP_FILES:
        evs = [t[f] for t in traced if f in t]
        if not evs:
            rows.append((f, "-", "-", "-", "not seen"))
            continue
        e = evs[0]
        rows.append((e.path, e.size_bytes if e.size_bytes is not None
                     else "-", _median_ms([x.latency_ns for x in evs]),
                     f"{len(evs)}/{len(traced)}",
                     f"{e.trigger} ({e.comm})"))
    return Table(title="Copy-ups seen by the copy-up tracer",
                 columns=("path", "bytes", "ms", "seen", "trigger"),
                 rows=tuple(rows),
                 note="ms: median of the traced copy-up latencies")


def _explain_traced(traced, limits):
    counts = [sum(1 for f in COPYUP_FILES if f in t) for t in traced]
    others = [t["other"] for t in traced]
    out = [f"The copy-up tracer saw {median(counts):g} file copy-ups per "
           f"container (expected {len(COPYUP_FILES)}: one on each "
           "file's first write, none on the second, which finds the "
           "file in the upper layer already)"
           + (f", plus {median(others):g} other copy-up event(s) (the "
              "/data directory)." if median(others) else ".")]
    lat = [t["f64m"].latency_ns / 1e6 for t in traced if "f64m" in t]
    if lat:
        out.append(f"Traced in the kernel, the 64 MiB copy-up took "
                   f"{median(lat):.1f} ms (median).")
    if limits:
        out.append(f"Tracer limits on this kernel: {limits}.")
    return out
