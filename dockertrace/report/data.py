"""What a report is made of, and its JSON form in both directions.

A report is the suite's :class:`~dockertrace.bench.model.SuiteResult`, the
audit's outcome and the verdicts drawn from both. The JSON form is
``dataclasses.asdict`` of it, so a saved report (or a bare saved
SuiteResult) can be rendered again without measuring anything.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Optional

from dockertrace.bench.model import (Environment, Figure, Section, Series,
                                     SuiteResult, Table)

#: Written into the JSON form so a later reader can tell what it holds.
FORMAT = "dockertrace-report/1"


@dataclass(frozen=True)
class AuditSummary:
    """The audit as the report shows it: plain data, whichever way it came
    (a live ``AuditReport`` or a saved JSON report).

    ``findings`` holds dicts in the audit's own ``Finding.to_dict()`` form
    (check, title, severity, container, declared, effective, evidence,
    remedy, cis).
    """

    available: bool
    counts: dict = field(default_factory=dict)
    findings: tuple = ()
    #: What was audited, in words ("3 running containers and the daemon").
    scope: str = ""
    elapsed_s: float = 0.0
    notes: tuple = ()
    #: Why there is no audit, when ``available`` is false.
    reason: str = ""
    #: How to run the audit again by itself.
    rerun: str = "sudo dockertrace audit"

    def count(self, *severities):
        return sum(self.counts.get(s, 0) for s in severities)


def audit_unavailable(reason):
    return AuditSummary(available=False, reason=reason)


def summarize_audit(audit_report, scope=""):
    """An :class:`AuditSummary` of the audit's ``AuditReport``.

    Only the report's ``to_dict()`` is used, so this keeps working as the
    audit grows fields.
    """
    d = audit_report.to_dict()
    findings = list(d.get("daemon", ()))
    for c in d.get("containers", ()):
        findings.extend(c.get("findings", ()))
    if not scope:
        n = len(d.get("containers", ()))
        scope = (f"{n} running container{'s' if n != 1 else ''} "
                 "and the daemon")
    return AuditSummary(
        available=True, counts=dict(d.get("counts", {})),
        findings=tuple(findings), scope=scope,
        elapsed_s=float(d.get("elapsed_s", 0.0)),
        notes=tuple(d.get("notes", ())))


@dataclass(frozen=True)
class Report:
    suite: SuiteResult
    audit: AuditSummary
    #: :class:`dockertrace.report.verdicts.Verdict` objects, summary order.
    verdicts: tuple
    generated_at: str
    #: The command that produced this report, for "how to rerun".
    command: str = ""


def to_dict(report):
    d = dataclasses.asdict(report)
    d["format"] = FORMAT
    return d


def to_json(report):
    # default=str: a figure's detail or an audit's evidence may carry a
    # value JSON does not know (a Path, an enum); text is what a reader
    # of the report would see anyway.
    return json.dumps(to_dict(report), indent=2, default=str) + "\n"


def _build(cls, d, **nested):
    """``cls(**d)`` keeping only the fields ``cls`` has: a JSON written by
    a newer dockertrace (more fields) still loads."""
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in d.items() if k in names}
    kwargs.update({k: v for k, v in nested.items() if k in names})
    return cls(**kwargs)


def _tuple(v):
    return tuple(v) if isinstance(v, list) else v


def _figure(d):
    return _build(Figure, d, spread=_tuple(d.get("spread")))


def _table(d):
    return _build(Table, d, columns=tuple(d.get("columns", ())),
                  rows=tuple(tuple(r) for r in d.get("rows", ())))


def _series(d):
    return _build(Series, d, x=tuple(d.get("x", ())))


def _section(d):
    return _build(
        Section, d,
        figures=tuple(_figure(f) for f in d.get("figures", ())),
        tables=tuple(_table(t) for t in d.get("tables", ())),
        series=tuple(_series(s) for s in d.get("series", ())),
        explanation=tuple(d.get("explanation", ())))


def suite_from_dict(d):
    """A :class:`SuiteResult` from its ``dataclasses.asdict`` form."""
    return _build(
        SuiteResult, d,
        environment=_build(Environment, d["environment"]),
        sections=tuple(_section(s) for s in d.get("sections", ())))


def load(path):
    """Read a saved report or a bare saved SuiteResult.

    Returns ``(suite, audit)``; ``audit`` is None when the file holds no
    audit (a bare SuiteResult), so the caller can decide what to say.
    """
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    if "suite" not in d:
        return suite_from_dict(d), None
    audit = None
    if d.get("audit") is not None:
        a = d["audit"]
        audit = _build(AuditSummary, a,
                       findings=tuple(a.get("findings", ())),
                       notes=tuple(a.get("notes", ())))
    return suite_from_dict(d["suite"]), audit


def section_names(suite: Optional[SuiteResult]):
    return [s.name for s in suite.sections] if suite else []
