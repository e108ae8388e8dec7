"""The report as one self-contained HTML page.

Everything the page shows is inside the file: styles inline, plots as
``data:`` URIs, the system font stack, no script. It opens the same on a
machine with no network, and a browser asked to open it makes no
request at all (tests/system/test_report.py checks both).
"""

import base64
from html import escape

from dockertrace.report import fmt, plots
from dockertrace.report.verdicts import NOT_MEASURED

# About 80 characters of body text per line: the width a report is read
# at, and the width the plots are drawn for.
_CSS = """
body { font: 16px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #1b1b1b; background: #fff; margin: 0 auto; padding: 1.5rem 1rem;
  max-width: 48rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .6rem; padding-top: .6rem;
  border-top: 2px solid #ddd; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
p, ul { margin: .5rem 0; }
.meta { color: #555; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0 1rem;
  font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; vertical-align: top;
  border-bottom: 1px solid #e3e3e3; }
th { background: #f4f4f4; font-weight: 600; }
th.n, td.n { text-align: right; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
.note { color: #555; font-size: .85rem; }
code, pre { font: .85rem/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
pre { background: #f6f6f6; padding: .6rem .8rem; overflow-x: auto;
  border-radius: 4px; white-space: pre-wrap; word-break: break-all; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; display: block;
  border: 1px solid #eee; }
.grade { font-weight: 600; padding: .05rem .45rem; border-radius: 3px;
  white-space: nowrap; }
.excellent { background: #d5f0dd; color: #0b5323; }
.good { background: #e3f1fb; color: #0b4a75; }
.fair { background: #fff1cc; color: #6b4a00; }
.poor { background: #fbdcd6; color: #8a1c06; }
.na { background: #eee; color: #444; }
.error { background: #fbdcd6; padding: .5rem .8rem; border-radius: 4px; }
.sev-critical, .sev-high { color: #8a1c06; font-weight: 600; }
.sev-medium { color: #6b4a00; font-weight: 600; }
dl { margin: .5rem 0; }
dt { font-weight: 600; margin-top: .6rem; }
dd { margin: .15rem 0 0 1rem; }
nav ul { columns: 2; padding-left: 1.2rem; }
"""


def render_html(report):
    """The page of a :class:`~dockertrace.report.data.Report`."""
    out = []
    w = out.append
    suite = report.suite
    w("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
      "<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, "
      "initial-scale=1\">\n"
      f"<title>dockertrace report {escape(suite.started_at)}</title>\n"
      f"<style>{_CSS}</style>\n</head>\n<body>\n")
    w("<h1>dockertrace report</h1>\n")
    w(f"<p class=\"meta\">Generated {escape(report.generated_at)}; suite "
      f"started {escape(suite.started_at)} and took "
      f"{suite.duration_s:.1f} s on {escape(suite.environment.kernel)}."
      "</p>\n")
    _contents(w, suite)
    _summary(w, report)
    _environment(w, suite)
    for section in suite.sections:
        _section(w, section)
    _security(w, report.audit)
    _rerun(w, report)
    w("</body>\n</html>\n")
    return "".join(out)


def _contents(w, suite):
    items = [("summary", "Summary"), ("environment", "Environment")]
    items += [(f"s-{fmt.slug(s.name)}", s.title) for s in suite.sections]
    items += [("security", "Security audit"), ("rerun", "How to rerun")]
    w("<nav><ul>\n")
    for anchor, title in items:
        w(f"<li><a href=\"#{anchor}\">{escape(title)}</a></li>\n")
    w("</ul></nav>\n")


def _grade(grade):
    cls = "na" if grade == NOT_MEASURED else grade
    return f"<span class=\"grade {cls}\">{escape(grade)}</span>"


def _summary(w, report):
    w("<h2 id=\"summary\">Summary</h2>\n")
    w("<table>\n<tr><th style=\"width:45%\">measure</th>"
      "<th class=\"n\">value</th><th>verdict</th></tr>\n")
    for v in report.verdicts:
        t = v.threshold
        if v.value is None:
            # Why it is not measured goes under the verdict, so the value
            # column stays narrow and the measure readable.
            val = "–"
            why = f"<br><span class=\"note\">{escape(v.note)}</span>"
        else:
            val, why = fmt.value(v.value, t.unit), ""
        w(f"<tr><td>{escape(t.measure)}</td><td class=\"n\">{escape(val)}"
          f"</td><td>{_grade(v.grade)}{why}</td></tr>\n")
    w("</table>\n")

    # The rules, with the reason for their numbers, below the table so
    # the table stays narrow enough to read at a glance.
    w("<h3>Thresholds</h3>\n<dl>\n")
    for v in report.verdicts:
        t = v.threshold
        src = (f" Read from <code>{escape(v.key)}</code>." if v.key
               else "")
        w(f"<dt>{escape(t.measure)}</dt>\n<dd>Rule: {escape(t.rule())}. "
          f"{escape(t.rationale)}{src}</dd>\n")
    w("</dl>\n")

    w("<h3>Sections</h3>\n<table>\n<tr><th>section</th><th>status</th>"
      "<th class=\"n\">figures</th><th class=\"n\">plots</th>"
      "<th class=\"n\">dropped events</th></tr>\n")
    for s in report.suite.sections:
        status = (f"<span class=\"grade poor\">failed</span> "
                  f"{escape(s.error)}" if s.error else "measured")
        w(f"<tr><td><a href=\"#s-{fmt.slug(s.name)}\">{escape(s.title)}"
          f"</a></td><td>{status}</td><td class=\"n\">{len(s.figures)}</td>"
          f"<td class=\"n\">{len(s.series)}</td>"
          f"<td class=\"n\">{s.dropped_events}</td></tr>\n")
    a = report.audit
    status = ("audited" if a.available
              else f"audit not available: {escape(a.reason)}")
    w(f"<tr><td><a href=\"#security\">Security audit</a></td>"
      f"<td>{status}</td>"
      f"<td class=\"n\">{fmt.plural(len(a.findings), 'finding')}</td>"
      "<td class=\"n\"></td><td class=\"n\"></td></tr>\n</table>\n")


def _environment(w, suite):
    w("<h2 id=\"environment\">Environment</h2>\n<table>\n")
    for name, val in fmt.environment_rows(suite.environment,
                                          suite.started_at,
                                          suite.duration_s):
        w(f"<tr><th>{escape(name)}</th><td>{escape(str(val))}</td></tr>\n")
    w("</table>\n")


def _section(w, s):
    w(f"<h2 id=\"s-{fmt.slug(s.name)}\">{escape(s.title)}</h2>\n")
    if s.error:
        w(f"<p class=\"error\">This section could not run: "
          f"{escape(s.error)}</p>\n")
    if s.figures:
        w("<table>\n<tr><th>figure</th><th class=\"n\">value</th>"
          "<th class=\"n\">range</th><th>how measured</th></tr>\n")
        for f in s.figures:
            w(f"<tr><td>{escape(f.label)}</td>"
              f"<td class=\"n\">{escape(fmt.value(f.value, f.unit))}</td>"
              f"<td class=\"n\">{escape(fmt.spread(f))}</td>"
              f"<td class=\"note\">{escape(f.detail)}</td></tr>\n")
        w("</table>\n")
    for series in s.series:
        _plot(w, series)
    for t in s.tables:
        _table(w, t)
    if s.explanation:
        w("<h3>What the kernel showed</h3>\n<ul>\n")
        for line in s.explanation:
            w(f"<li>{escape(line)}</li>\n")
        w("</ul>\n")
    _provenance(w, s)


def _plot(w, series):
    try:
        png = plots.render_png(series)
    except plots.PlotError as err:
        w(f"<p class=\"error\">Plot not drawn: {escape(str(err))}</p>\n")
        return
    data = base64.b64encode(png).decode("ascii")
    w(f"<figure><img src=\"data:image/png;base64,{data}\" "
      f"alt=\"{escape(series.title)}\" data-key=\"{escape(series.key)}\">"
      "</figure>\n")


def _table(w, t):
    w(f"<table>\n<caption>{escape(t.title)}</caption>\n<tr>")
    nums = fmt.numeric_columns(t)
    for i, c in enumerate(t.columns):
        cls = " class=\"n\"" if i in nums else ""
        w(f"<th{cls}>{escape(str(c))}</th>")
    w("</tr>\n")
    for row in t.rows:
        w("<tr>")
        for i, c in enumerate(row):
            if i in nums:
                w(f"<td class=\"n\">{escape(fmt.cell(c, nums[i]))}</td>")
            else:
                w(f"<td>{escape(fmt.cell(c))}</td>")
        w("</tr>\n")
    w("</table>\n")
    if t.note:
        w(f"<p class=\"note\">{escape(t.note)}</p>\n")


def _provenance(w, s):
    parts = []
    if s.mechanisms:
        parts.append(f"BPF mechanisms: {escape(fmt.mechanisms(s))}.")
    parts.append(f"Dropped events: {s.dropped_events}.")
    w(f"<p class=\"note\">{' '.join(parts)}</p>\n")
    if s.rerun:
        w(f"<p>Rerun this section:</p>\n<pre>{escape(s.rerun)}</pre>\n")
    else:
        w("<p class=\"note\">This section did not say how to rerun it."
          "</p>\n")


def _security(w, a):
    w("<h2 id=\"security\">Security audit</h2>\n")
    if not a.available:
        w(f"<p class=\"error\">Audit not available: {escape(a.reason)}"
          "</p>\n")
        return
    w(f"<p>Audited {escape(a.scope)} in {a.elapsed_s:.2f} s.</p>\n")
    w("<table>\n<tr>")
    sevs = fmt.SEVERITIES
    for sev in sevs:
        w(f"<th class=\"n\">{sev}</th>")
    w("</tr>\n<tr>")
    for sev in sevs:
        w(f"<td class=\"n\">{a.counts.get(sev, 0)}</td>")
    w("</tr>\n</table>\n")
    worst = [f for f in a.findings
             if f.get("severity") in ("critical", "high")]
    # The findings that decide the verdict in full, with their evidence;
    # the rest one row per check, since many containers repeat them.
    w("<h3>High and critical findings</h3>\n")
    if not worst:
        w("<p>None.</p>\n")
    else:
        w("<dl>\n")
        for f in fmt.by_severity(worst):
            _finding(w, f)
        w("</dl>\n")
    if a.findings:
        w("<h3>All findings by check</h3>\n<table>\n<tr><th>severity</th>"
          "<th>check</th><th>where</th><th>fix</th></tr>\n")
        for sev, check, where, title, remedy in fmt.grouped(a.findings):
            w(f"<tr><td class=\"sev-{escape(sev)}\">{escape(sev)}</td>"
              f"<td><code>{escape(check)}</code><br>"
              f"<span class=\"note\">{escape(str(title))}</span></td>"
              f"<td>{escape(where)}</td><td>{escape(str(remedy))}</td>"
              "</tr>\n")
        w("</table>\n")
    else:
        w("<p>No findings.</p>\n")
    for note in a.notes:
        w(f"<p class=\"note\">{escape(str(note))}</p>\n")
    w(f"<p>Rerun the audit:</p>\n<pre>{escape(a.rerun)}</pre>\n")


def _finding(w, f):
    sev = str(f.get("severity", ""))
    cis = ", ".join(f.get("cis", ()))
    evidence = f.get("evidence") or {}
    w(f"<dt><span class=\"sev-{escape(sev)}\">{escape(sev)}</span> "
      f"<code>{escape(str(f.get('check', '')))}</code> "
      f"{escape(fmt.container(f))}: {escape(str(f.get('title', '')))}"
      "</dt>\n"
      f"<dd>declared: <code>{escape(fmt.short(f.get('declared')))}</code>"
      f"<br>effective: <code>{escape(fmt.short(f.get('effective')))}"
      "</code>")
    if evidence:
        w(f"<br>evidence: <code>{escape(fmt.short(evidence, 240))}</code>")
    w(f"<br>fix: {escape(str(f.get('remedy', '')))}"
      f"{' (' + escape(cis) + ')' if cis else ''}</dd>\n")


def _rerun(w, report):
    w("<h2 id=\"rerun\">How to rerun</h2>\n")
    w("<p>This report:</p>\n")
    w(f"<pre>{escape(report.command or 'sudo dockertrace report')}</pre>\n")
    if report.suite.command:
        w("<p>The suite as it ran:</p>\n")
        w(f"<pre>{escape(report.suite.command)}</pre>\n")
    w("<p>Each section ends with the command that reproduces its figures."
      "</p>\n")
