"""startup: cold against warm starts, by network mode, phase by phase.

Every start is traced by the startup tracer (one BPF object for the whole
section), so each figure comes with the kernel phase it is made of.
"""

import logging

from dockertrace.bench.common import Reporter, rerun
from dockertrace.bench.model import Figure, Section, Series, Table
from dockertrace.bench.parse import median

log = logging.getLogger(__name__)

MODES = ("bridge", "host", "none")


def _ms(ns):
    return round(ns / 1e6, 3)


def run(*, runs=3, image, progress=None, modes=MODES, cold=True):
    """Trace ``runs`` warm (and as many cold) starts per network mode."""
    import dockertrace.startup as su

    per_mode = runs * (2 if cold else 1)
    rep = Reporter("startup", per_mode * len(modes) + 1, progress)
    rep.step("attaching the startup tracer")
    results = {}
    with su.StartupTracer() as tracer:
        for mode in modes:
            def on_start(i, n, mode=mode):
                rep.step(f"{mode}: start {i + 1}/{n}")
            results[mode] = su.trace_startup(
                ["--network", mode, image, "true"], runs=runs, cold=cold,
                tracer=tracer, progress=on_start)
        mechanisms = tracer.mechanisms
        dropped = tracer.dropped_events
    rep.finish()
    return build_section(results, runs=runs, image=image,
                         mechanisms=mechanisms, dropped=dropped)


def build_section(results, *, runs, image, mechanisms=None, dropped=0):
    """Turn ``{mode: StartupResult}`` into the section's figures, tables,
    waterfall series and explanation."""
    figures, tables, series = [], [], []
    for mode, res in results.items():
        for kind in ("warm", "cold"):
            starts = [s for s in res.runs if s.cold == (kind == "cold")]
            if not starts:
                continue
            totals = [_ms(s.total_ns) for s in starts]
            figures.append(Figure(
                f"startup.{kind}.{mode}.total_ms",
                f"{kind} start, --network {mode}", median(totals), "ms",
                (min(totals), max(totals)),
                f"median of {len(totals)} traced starts (min, max)"))
            summary = getattr(res, kind)
            net = summary.phase("network") if summary else None
            if net is not None:
                figures.append(Figure(
                    f"startup.{kind}.{mode}.network_ms",
                    f"network phase (prestart hook), {kind}, {mode}",
                    _ms(net.median_ns), "ms",
                    (_ms(net.min_ns), _ms(net.max_ns)),
                    f"median of {summary.runs} starts"))
        tables.append(_phase_table(mode, res))
        series.append(_waterfall(mode, res))
    tables.append(_totals_table(results))
    return Section(
        name="startup",
        title="Container start: cold and warm, by network mode",
        figures=tuple(figures), tables=tuple(tables), series=tuple(series),
        explanation=tuple(explain(results)),
        rerun=rerun("startup", runs, image),
        mechanisms=dict(mechanisms or {}), dropped_events=dropped)


def _phase_table(mode, res):
    rows = []
    names = [p.name for p in (res.warm or res.cold).phases]
    if res.cold:
        names += [p.name for p in res.cold.phases if p.name not in names]
    for name in _ordered(names):
        row = [name]
        for summary in (res.warm, res.cold):
            p = summary.phase(name) if summary else None
            row += ([_ms(p.median_ns), _ms(p.min_ns), _ms(p.max_ns)]
                    if p else ["-", "-", "-"])
        rows.append(tuple(row))
    return Table(
        title=f"Phases of a start with --network {mode} (ms)",
        columns=("phase", "warm", "min", "max", "cold", "min", "max"),
        rows=tuple(rows),
        note="median, min and max per phase over the runs; phases tile "
             "the client's wall time, so medians add up to about the "
             "median total")


def _totals_table(results):
    rows = []
    for mode, res in results.items():
        warm = _ms(res.warm.median_total_ns) if res.warm else None
        cold = _ms(res.cold.median_total_ns) if res.cold else None
        diff = round(cold - warm, 3) if warm is not None and cold else "-"
        rows.append((mode, warm if warm is not None else "-",
                     cold if cold is not None else "-", diff))
    return Table(title="Median start by network mode (ms)",
                 columns=("mode", "warm", "cold", "cold - warm"),
                 rows=tuple(rows))


def _ordered(names):
    from dockertrace.startup import PHASE_NAMES
    return [n for n in PHASE_NAMES if n in names]


def _waterfall(mode, res):
    """Medians laid end to end: each phase starts where the previous
    phase's median ends (phases tile a start, so this is the typical
    start's shape)."""
    summaries = {k: s for k, s in (("warm", res.warm), ("cold", res.cold))
                 if s}
    names = _ordered({p.name for s in summaries.values() for p in s.phases})
    starts, durs = {}, {}
    for kind, summary in summaries.items():
        t, starts[kind], durs[kind] = 0.0, [], []
        for name in names:
            p = summary.phase(name)
            d = _ms(p.median_ns) if p else 0.0
            starts[kind].append(round(t, 3))
            durs[kind].append(d)
            t += d
    return Series(key=f"startup.waterfall.{mode}",
                  title=f"Start waterfall, --network {mode}",
                  kind="waterfall", x=tuple(names), y=starts, y2=durs,
                  x_label="phase", y_label="ms since the create request")


def explain(results):
    """Sentences tying the differences between figures to phases."""
    out = []
    warm = {m: r.warm for m, r in results.items() if r.warm}

    def network_ms(summary):
        p = summary.phase("network")
        return _ms(p.median_ns) if p else 0.0

    for other in ("host", "none"):
        if "bridge" not in warm or other not in warm:
            continue
        b, o = warm["bridge"], warm[other]
        diff = _ms(b.median_total_ns - o.median_total_ns)
        nb, no = network_ms(b), network_ms(o)
        net = nb - no
        share = f", {100 * net / diff:.0f} %" if diff > 0 else ""
        out.append(
            f"Warm, the network phase (runc's prestart hook, "
            f"libnetwork-setkey) took {nb:.1f} ms in a bridge start and "
            f"{no:.1f} ms with --network {other}: that is {net:.1f} ms"
            f"{share} of the {diff:.1f} ms by which the bridge start is "
            "slower.")
    for mode, res in results.items():
        if not (res.warm and res.cold):
            continue
        diff = _ms(res.cold.median_total_ns - res.warm.median_total_ns)
        grew = []
        for p in res.cold.phases:
            w = res.warm.phase(p.name)
            grew.append((_ms(p.median_ns - (w.median_ns if w else 0)),
                         p.name))
        grew.sort(reverse=True)
        top = ", ".join(f"{n} +{d:.1f} ms" for d, n in grew[:2] if d > 0)
        out.append(
            f"--network {mode}: dropping the page cache made the median "
            f"start {diff:+.1f} ms longer"
            + (f"; the phases that grew most: {top}." if top else "."))
    if any(r.dropped_events for r in results.values()):
        out.append("The tracer dropped events; some phases may be "
                   "merged into their neighbours.")
    return out
