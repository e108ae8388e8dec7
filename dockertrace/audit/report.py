"""An audit report as a terminal table, JSON or SARIF 2.1.0.

The table fits 80 columns: one line per finding (severity, check,
title), the fix below it, grouped by container.  JSON is
:meth:`AuditReport.to_dict`.  SARIF lists every rule of the catalogue and
one result per finding, located at the container (a logical location,
since a container is not a file); ``security-severity`` carries the
severity as a number for code scanning tools.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any, Dict, List

from dockertrace.audit.model import AuditReport, Finding, Severity
from dockertrace.audit.rules import RULES

_SARIF_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error",
                Severity.MEDIUM: "warning", Severity.LOW: "note",
                Severity.INFO: "note"}
# GitHub code scanning reads 9.0+ as critical, 7.0+ high, 4.0+ medium.
_SARIF_SCORE = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0",
                Severity.MEDIUM: "5.5", Severity.LOW: "3.0",
                Severity.INFO: "0.0"}
_SEV_WIDTH = 8
_CHECK_WIDTH = 20


def to_json(report: AuditReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)


def _short(value: Any, width: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(
        value, default=str)
    return text if len(text) <= width else text[:width - 3] + "..."


def _finding_lines(f: Finding, verbose: bool) -> List[str]:
    head = (f"  {f.severity.label:<{_SEV_WIDTH}} "
            f"{f.check_id:<{_CHECK_WIDTH}} ")
    lines = textwrap.wrap(f.title, 79 - len(head)) or [""]
    out = [head + lines[0]]
    pad = " " * len(head)
    out += [pad + ln for ln in lines[1:]]
    fix = textwrap.wrap("fix: " + f.remedy, 79 - len(pad),
                        subsequent_indent="     ")
    out += [pad + ln for ln in fix]
    if verbose:
        cis = ", ".join(f"CIS {c}" for c in f.cis)
        if cis:
            out.append(pad + cis)
        out.append(pad + "declared:  " + _short(f.declared, 68 - len(pad)))
        out.append(pad + "effective: " + _short(f.effective, 68 - len(pad)))
        for key, value in f.evidence.items():
            out.append(pad + "  " + _short(f"{key}: "
                                           + _short(value, 200),
                                           77 - len(pad)))
    return out


def to_table(report: AuditReport, *, verbose: bool = False,
             min_severity: Severity = Severity.INFO) -> str:
    out: List[str] = []

    def block(heading: str, findings: List[Finding]) -> None:
        shown = sorted((f for f in findings if f.severity >= min_severity),
                       key=lambda f: -f.severity)
        out.append(heading)
        if not shown:
            out.append("  no findings")
        for f in shown:
            out.extend(_finding_lines(f, verbose))
        out.append("")

    if report.daemon_findings:
        block("daemon and host", list(report.daemon_findings))
    for c in report.containers:
        s = c.subject
        heading = f"{s.name or s.id[:12]} ({s.id[:12]}, {s.image})"
        if c.gone:
            out.append(heading + f": gone ({'; '.join(c.notes)})")
            out.append("")
            continue
        block(heading[:79], list(c.findings))
        for note in c.notes:
            out.append(f"  note: {note}")
    counts = report.counts()
    audited = sum(1 for c in report.containers if not c.gone)
    gone = len(report.containers) - audited
    summary = (f"{audited} container(s) audited"
               + (f", {gone} gone" if gone else "")
               + f" in {report.elapsed_s:.2f} s; findings: "
               + ", ".join(f"{n} {k}" for k, n in reversed(counts.items())
                           if n))
    out.extend(textwrap.wrap(summary, 79))
    for note in report.notes:
        out.append(f"note: {note}")
    return "\n".join(out) + "\n"


def to_sarif(report: AuditReport) -> str:
    from dockertrace import __version__

    rules = []
    index: Dict[str, int] = {}
    for i, r in enumerate(sorted(RULES.values(), key=lambda r: r.id)):
        index[r.id] = i
        rules.append({
            "id": r.id,
            "name": r.id.replace(".", "_"),
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": r.help or r.title},
            "help": {"text": f"Fix: {r.remedy}"},
            "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
            "properties": {
                "security-severity": _SARIF_SCORE[r.severity],
                "tags": ["security"] + [f"CIS-{c}" for c in r.cis]},
        })
    results = []
    for f in report.findings:
        where = (f"container/{f.container.name or f.container.id}"
                 if f.container else "daemon")
        loc: Dict[str, Any] = {"logicalLocations": [{
            "name": f.container.name if f.container else "dockerd",
            "fullyQualifiedName": where,
            "kind": "resource"}]}
        results.append({
            "ruleId": f.check_id,
            "ruleIndex": index.get(f.check_id, -1),
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f"{f.title}. Fix: {f.remedy}"},
            "locations": [loc],
            "partialFingerprints": {
                "dockertrace/v1": f"{where}/{f.check_id}/{f.title}"},
            "properties": {
                "severity": f.severity.label,
                "security-severity": _SARIF_SCORE[f.severity],
                "container": f.container.to_dict() if f.container else None,
                "declared": f.declared, "effective": f.effective,
                "evidence": f.evidence,
                "cis": [f"CIS {c}" for c in f.cis]},
        })
    gone = [c.subject.to_dict() for c in report.containers if c.gone]
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "dockertrace",
                "version": __version__,
                "informationUri": "https://github.com/dockertrace",
                "rules": rules}},
            "results": results,
            "properties": {"gone": gone,
                           "elapsed_s": round(report.elapsed_s, 4)},
        }],
    }
    return json.dumps(doc, indent=2, default=str)
