"""One report of the analysis suite and the security audit.

    from dockertrace import report
    path = report(format="html", output="report.html", runs=3)

``build_report`` joins a :class:`~dockertrace.bench.model.SuiteResult`
and the audit into a :class:`Report` with verdicts; ``write_report``
renders it as HTML (self-contained), Markdown (plots as PNG files beside
it) or JSON (``dataclasses.asdict``, which ``--from-json`` reads back).
"""

import datetime
import os
import sys
import types

from dockertrace.report.data import (AuditSummary, Report,  # noqa: F401
                                     audit_unavailable, load,
                                     summarize_audit, to_json)
from dockertrace.report.verdicts import THRESHOLDS, judge  # noqa: F401

FORMATS = ("html", "md", "json")
_EXT = {"html": "html", "md": "md", "json": "json"}


def build_report(suite, audit=None, command=""):
    """A :class:`Report` of ``suite`` and ``audit`` (an
    :class:`AuditSummary`; None means no audit was run)."""
    if audit is None:
        audit = audit_unavailable("no audit was run for this report")
    now = datetime.datetime.now(datetime.timezone.utc)
    return Report(suite=suite, audit=audit,
                  verdicts=judge(suite, audit),
                  generated_at=now.isoformat(timespec="seconds"),
                  command=command)


def default_output(format):
    return f"dockertrace-report.{_EXT[format]}"


def write_report(report, format="html", output=None):
    """Render ``report`` to ``output`` (a path, or "-" for stdout).

    Returns the list of files written: the report first, then for
    Markdown the PNG files of its plots.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; one of "
                         f"{', '.join(FORMATS)}")
    output = output or default_output(format)
    to_stdout = output == "-"

    if format == "html":
        from dockertrace.report.html import render_html
        text, extra = render_html(report), []
    elif format == "json":
        text, extra = to_json(report), []
    else:
        from dockertrace.report.markdown import render_markdown
        plot_dir = link = None
        if not to_stdout:
            # Plots go into <stem>_plots/ beside the .md and are linked
            # relative to it, so the pair can be committed or moved
            # together.
            stem = os.path.splitext(os.path.basename(output))[0]
            link = f"{stem}_plots"
            plot_dir = os.path.join(os.path.dirname(output) or ".", link)
            os.makedirs(plot_dir, exist_ok=True)
        text, extra = render_markdown(report, plot_dir, link)

    if to_stdout:
        sys.stdout.write(text)
        return []
    # Written next to the target and renamed: a reader (a browser, a CI
    # artifact upload) never sees half a report.
    tmp = f"{output}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, output)
    return [output] + extra


def report(format="html", output=None, *, suites=None, runs=None,
           from_json=None, audit=True, command="", progress=None):
    """Run the suite (or read a saved one) and the audit, write one
    report; returns the files written (see :func:`write_report`).

    ``suites`` names the suite sections to run (all by default), ``runs``
    the runs per benchmark. ``from_json`` renders a saved report or
    SuiteResult instead of measuring. ``audit=False`` skips the audit.
    ``progress`` is called with each step of the suite as it begins.
    """
    from dockertrace.report import run
    if from_json:
        suite, saved_audit = load(from_json)
        summary = saved_audit or audit_unavailable(
            f"{from_json} holds a suite result without an audit")
    else:
        suite = run.run_suite(suites=suites, runs=runs, progress=progress)
        summary = (run.run_audit() if audit
                   else audit_unavailable("skipped (--no-audit)"))
    rep = build_report(suite, summary, command=command)
    return write_report(rep, format, output)


class _CallableModule(types.ModuleType):
    # `dockertrace.report(...)` is the public function, but importing any
    # module of this package makes the attribute `dockertrace.report`
    # this package. Calling the package runs report(), so the public call
    # works whichever of the two the attribute holds.
    def __call__(self, *args, **kwargs):
        return report(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
