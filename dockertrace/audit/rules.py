"""The catalogue of checks: id, default severity, CIS mapping, remedy.

Each check module declares its rules with :func:`rule` and produces
findings with :func:`finding`, which fills in what the rule already says.
The catalogue is also what SARIF lists as ``rules`` and what the CIS
coverage table (:mod:`dockertrace.audit.cis`) is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from dockertrace.audit.model import Finding, Severity, Subject


@dataclass(frozen=True)
class Rule:
    id: str
    #: Generic title; findings carry a specific one.
    title: str
    severity: Severity
    cis: Tuple[str, ...]
    remedy: str
    #: One paragraph: why it matters.
    help: str = ""


RULES: Dict[str, Rule] = {}


def rule(id: str, title: str, severity: Severity, cis: Tuple[str, ...],
         remedy: str, help: str = "") -> Rule:
    r = Rule(id, title, severity, cis, remedy, help)
    if id in RULES:
        raise ValueError(f"rule {id} declared twice")
    RULES[id] = r
    return r


def finding(r: Rule, subject: Optional[Subject], *, title: str = "",
            declared: Any = None, effective: Any = None,
            evidence: Optional[Dict[str, Any]] = None,
            severity: Optional[Severity] = None,
            remedy: str = "") -> Finding:
    return Finding(
        check_id=r.id, title=title or r.title,
        severity=r.severity if severity is None else severity,
        container=subject, declared=declared, effective=effective,
        evidence=dict(evidence or {}), remedy=remedy or r.remedy,
        cis=r.cis)
