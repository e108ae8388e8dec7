"""Plots of the suite's series as PNG bytes.

matplotlib draws through the Agg canvas directly, without pyplot: no
display is needed, no global figure state is kept between calls (the
report may be built in a thread), and the font is the DejaVu Sans that
matplotlib ships, so nothing is fetched and every machine draws alike.
"""

import io
import logging

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dockertrace.report.fmt import num

log = logging.getLogger(__name__)

#: Width of every plot: with DPI, 760 px, the width of the report's text
#: column, so a plot is shown at its own size and stays sharp.
WIDTH_IN = 7.6
DPI = 100
# Colour-blind safe (Okabe-Ito), in the order groups are drawn.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7",
           "#56B4E9", "#F0E442", "#000000")

MARKERS = ("o", "s", "^", "D", "v", "P")

KINDS = ("waterfall", "bars", "line", "timeline")


class PlotError(ValueError):
    """A series that cannot be drawn (unknown kind, ragged data)."""


def render_png(series):
    """The plot of ``series`` (a :class:`~dockertrace.bench.model.Series`)
    as PNG bytes."""
    draw = _DRAW.get(series.kind)
    if draw is None:
        raise PlotError(f"series {series.key}: unknown kind "
                        f"{series.kind!r}; one of {', '.join(KINDS)}")
    for group, values in series.y.items():
        if len(values) != len(series.x):
            raise PlotError(
                f"series {series.key}: group {group!r} has {len(values)} "
                f"values for {len(series.x)} x values")
    fig = Figure(figsize=(WIDTH_IN, _height(series)), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(series.title, fontsize=11, loc="left")
    if series.x_label:
        ax.set_xlabel(series.x_label)
    if series.y_label:
        ax.set_ylabel(series.y_label)
    draw(fig, ax, series)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _height(series):
    # A waterfall grows with its phases so each row stays readable.
    if series.kind == "waterfall":
        groups = max(1, len(series.y))
        return 1.2 + 0.22 * len(series.x) * (1 + 0.5 * (groups - 1))
    return 3.6


def _legend(ax, n):
    if n > 1:
        ax.legend(fontsize=8, frameon=False)


def _waterfall(fig, ax, s):
    """One row per phase, top to bottom in order; a bar from the phase's
    start to its end, one bar per group side by side within the row."""
    groups = list(s.y)
    n = len(groups)
    h = 0.8 / max(n, 1)
    for gi, g in enumerate(groups):
        starts = s.y[g]
        durs = s.y2.get(g, [0] * len(starts))
        rows = [i + (gi - (n - 1) / 2) * h for i in range(len(s.x))]
        # Phases a group did not go through are None: nothing to draw.
        pairs = [(r, a, d) for r, a, d in zip(rows, starts, durs)
                 if a is not None and d is not None]
        ax.barh([p[0] for p in pairs], [p[2] for p in pairs],
                left=[p[1] for p in pairs], height=h * 0.9,
                color=COLOURS[gi % len(COLOURS)], label=g)
    ax.set_yticks(range(len(s.x)), [str(x) for x in s.x], fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlim(left=0)
    # Bars run along the plot's x axis: the series' values (y) are drawn
    # horizontally and its categories (x, the phases) down the side.
    ax.set_xlabel(s.y_label or "ms since the create request")
    ax.set_ylabel(s.x_label)
    _legend(ax, n)


def _bars(fig, ax, s):
    groups = list(s.y)
    n = len(groups)
    w = 0.8 / max(n, 1)
    for gi, g in enumerate(groups):
        xs = [i + (gi - (n - 1) / 2) * w for i in range(len(s.x))]
        # A missing value is no bar and no label: a zero would be a claim.
        pts = [(x, v) for x, v in zip(xs, s.y[g]) if v is not None]
        bars = ax.bar([p[0] for p in pts], [p[1] for p in pts],
                      width=w * 0.92, color=COLOURS[gi % len(COLOURS)],
                      label=g)
        # The value on the bar: a reader wants the number, not a guess
        # from the axis.
        ax.bar_label(bars, labels=[num(p[1]) for p in pts], fontsize=7,
                     padding=1)
    labels = [str(x) for x in s.x]
    rotate = sum(len(t) for t in labels) > 60
    ax.set_xticks(range(len(s.x)), labels, fontsize=8,
                  rotation=30 if rotate else 0,
                  ha="right" if rotate else "center")
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.12)
    _legend(ax, n)


def _line(fig, ax, s, step=False):
    groups = list(s.y)
    for gi, g in enumerate(groups):
        pts = [(x, y) for x, y in zip(s.x, s.y[g]) if y is not None]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        colour = COLOURS[gi % len(COLOURS)]
        if step:
            ax.step(xs, ys, where="post", color=colour, label=g,
                    linewidth=1.4)
        else:
            # A marker of its own per group: lines that coincide (first
            # write and traced copy-up) stay both visible.
            ax.plot(xs, ys, marker=MARKERS[gi % len(MARKERS)],
                    markersize=6 - gi % 3, color=colour, label=g,
                    linewidth=1.4, alpha=0.9)
    if s.log_x:
        ax.set_xscale("log", base=2 if _powers_of_two(s.x) else 10)
    ax.grid(alpha=0.3)
    n = len(groups)
    if s.y2:
        # A second quantity on its own axis (e.g. throttled time beside
        # the throttled-period count), drawn dashed to tell them apart.
        ax2 = ax.twinx()
        for gi, (g, vals) in enumerate(s.y2.items()):
            colour = COLOURS[(gi + n) % len(COLOURS)]
            pts = [(x, y) for x, y in zip(s.x, vals) if y is not None]
            ax2.plot([p[0] for p in pts], [p[1] for p in pts],
                     linestyle="--", color=colour, label=g, linewidth=1.2)
        ax2.spines[["top"]].set_visible(False)
        lines = ax.get_lines() + ax2.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8,
                  frameon=False)
    else:
        _legend(ax, n)


def _powers_of_two(xs):
    nums = [x for x in xs if isinstance(x, (int, float)) and x > 0]
    return bool(nums) and all(float(x).is_integer()
                              and int(x) & (int(x) - 1) == 0 for x in nums)


def _timeline(fig, ax, s):
    _line(fig, ax, s, step=True)
    if not s.x_label:
        ax.set_xlabel("s")


_DRAW = {"waterfall": _waterfall, "bars": _bars, "line": _line,
         "timeline": _timeline}
