"""The report as Markdown for a code host, plots as PNG files beside it.

GitHub-flavoured Markdown: pipe tables, fenced code, images by relative
link. A code host shows neither data URIs nor inline styles reliably, so
the plots are written as files into ``<stem>_plots/`` next to the
Markdown file and linked from it.
"""

import os

from dockertrace.report import fmt, plots


def _esc(text):
    # Pipes end a table cell and newlines end a row.
    return str(text).replace("|", "\\|").replace("\n", " ")


def _row(cells):
    return "| " + " | ".join(_esc(c) for c in cells) + " |\n"


def _header(cols, right=()):
    line = _row(cols)
    aligns = ["---:" if i in right else "---" for i in range(len(cols))]
    return line + "|" + "|".join(aligns) + "|\n"


def _fence(text):
    return f"```sh\n{text}\n```\n"


def render_markdown(report, plot_dir=None, plot_link=None):
    """The Markdown of ``report``.

    With ``plot_dir``, each plot is written there as ``<key>.png`` and
    linked as ``<plot_link>/<key>.png`` (a path relative to the Markdown
    file). Without it, plots are left out with a line that says so.
    Returns ``(text, [paths of the PNG files written])``.
    """
    out, written = [], []
    w = out.append
    suite = report.suite
    w("# dockertrace report\n\n")
    w(f"Generated {report.generated_at}; suite started {suite.started_at} "
      f"and took {suite.duration_s:.1f} s on {suite.environment.kernel}.\n\n")
    _summary(w, report)
    _environment(w, suite)
    for s in suite.sections:
        _section(w, s, plot_dir, plot_link, written)
    _security(w, report.audit)
    w("## How to rerun\n\nThis report:\n\n")
    w(_fence(report.command or "sudo dockertrace report"))
    if suite.command:
        w("\nThe suite as it ran:\n\n" + _fence(suite.command))
    w("\nEach section ends with the command that reproduces its figures.\n")
    return "".join(out), written


def _summary(w, report):
    w("## Summary\n\n")
    w(_header(("measure", "value", "verdict"), right=(1,)))
    for v in report.verdicts:
        t = v.threshold
        if v.value is None:
            val, grade = "–", f"{v.grade}: {v.note}"
        else:
            val, grade = fmt.value(v.value, t.unit), f"**{v.grade}**"
        w(_row((t.measure, val, grade)))
    w("\n### Thresholds\n\n")
    for v in report.verdicts:
        t = v.threshold
        src = f" Read from `{v.key}`." if v.key else ""
        w(f"- **{t.measure}**: {t.rule()}. {t.rationale}{src}\n")
    w("\n### Sections\n\n")
    w(_header(("section", "status", "figures", "plots", "dropped events"),
              right=(2, 3, 4)))
    for s in report.suite.sections:
        status = f"failed: {s.error}" if s.error else "measured"
        w(_row((s.title, status, len(s.figures), len(s.series),
                s.dropped_events)))
    a = report.audit
    status = ("audited" if a.available
              else f"audit not available: {a.reason}")
    w(_row(("Security audit", status,
            fmt.plural(len(a.findings), "finding"), "", "")))
    w("\n")


def _environment(w, suite):
    w("## Environment\n\n")
    w(_header(("", "")))
    for name, val in fmt.environment_rows(suite.environment,
                                          suite.started_at,
                                          suite.duration_s):
        w(_row((name, val)))
    w("\n")


def _section(w, s, plot_dir, plot_link, written):
    w(f"## {s.title}\n\n")
    if s.error:
        w(f"> **This section could not run:** {s.error}\n\n")
    if s.figures:
        w(_header(("figure", "value", "range", "how measured"),
                  right=(1, 2)))
        for f in s.figures:
            w(_row((f.label, fmt.value(f.value, f.unit), fmt.spread(f),
                    f.detail)))
        w("\n")
    for series in s.series:
        _plot(w, s, series, plot_dir, plot_link, written)
    for t in s.tables:
        w(f"**{t.title}**\n\n")
        nums = fmt.numeric_columns(t)
        w(_header(t.columns, right=nums))
        for row in t.rows:
            w(_row(fmt.cell(c, nums.get(i)) for i, c in enumerate(row)))
        w("\n")
        if t.note:
            w(f"{t.note}\n\n")
    if s.explanation:
        w("**What the kernel showed**\n\n")
        for line in s.explanation:
            w(f"- {line}\n")
        w("\n")
    if s.mechanisms:
        w(f"BPF mechanisms: {fmt.mechanisms(s)}. ")
    w(f"Dropped events: {s.dropped_events}.\n\n")
    if s.rerun:
        w("Rerun this section:\n\n" + _fence(s.rerun) + "\n")
    else:
        w("This section did not say how to rerun it.\n\n")


def _plot(w, section, series, plot_dir, plot_link, written):
    if plot_dir is None:
        w(f"*Plot “{series.title}” left out: plots are written only "
          "when the report goes to a file.*\n\n")
        return
    try:
        png = plots.render_png(series)
    except plots.PlotError as err:
        w(f"> Plot not drawn: {err}\n\n")
        return
    # The section name as a prefix: two sections may use the same key.
    name = f"{fmt.slug(section.name)}-{fmt.slug(series.key)}.png"
    path = os.path.join(plot_dir, name)
    with open(path, "wb") as f:
        f.write(png)
    written.append(path)
    w(f"![{series.title}]({plot_link}/{name})\n\n")


def _security(w, a):
    w("## Security audit\n\n")
    if not a.available:
        w(f"> **Audit not available:** {a.reason}\n\n")
        return
    w(f"Audited {a.scope} in {a.elapsed_s:.2f} s.\n\n")
    sevs = fmt.SEVERITIES
    w(_header(sevs, right=range(len(sevs))))
    w(_row(a.counts.get(s, 0) for s in sevs))
    w("\n")
    worst = [f for f in a.findings
             if f.get("severity") in ("critical", "high")]
    w("### High and critical findings\n\n")
    if not worst:
        w("None.\n\n")
    for f in fmt.by_severity(worst):
        cis = ", ".join(f.get("cis", ()))
        w(f"- **{f.get('severity', '')}** `{f.get('check', '')}` "
          f"{fmt.container(f)}: {f.get('title', '')}  \n"
          f"  declared: `{fmt.short(f.get('declared'))}`  \n"
          f"  effective: `{fmt.short(f.get('effective'))}`  \n"
          f"  fix: {f.get('remedy', '')}{f' ({cis})' if cis else ''}\n")
    if worst:
        w("\n")
    if a.findings:
        w("### All findings by check\n\n")
        w(_header(("severity", "check", "where", "fix")))
        for sev, check, where, title, remedy in fmt.grouped(a.findings):
            w(_row((sev, f"`{check}` {title}", where, remedy)))
        w("\n")
    else:
        w("No findings.\n\n")
    for note in a.notes:
        w(f"{note}\n\n")
    w("Rerun the audit:\n\n" + _fence(a.rerun) + "\n")
