"""What an audit finds: findings, per-container results, the report.

Everything here is plain data (frozen dataclasses of str, int, lists and
dicts), so a report can be turned into JSON or SARIF without knowing how
it was gathered, and tests can build findings by hand.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from dockertrace.errors import Error

#: Exit code of ``dockertrace audit`` when a finding is at or above
#: ``--fail-on``.  dockertrace.Error subclasses use 1 to 8.
EXIT_FINDINGS = 9


class Severity(enum.IntEnum):
    """How bad a finding is; ordered, so ``>=`` compares."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r}; one of {names}")

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Subject:
    """The container a finding is about; None for daemon findings."""

    id: str
    name: str
    image: str

    def to_dict(self) -> Dict[str, str]:
        return {"id": self.id, "name": self.name, "image": self.image}


@dataclass(frozen=True)
class Finding:
    """One thing the audit found wrong (or worth knowing)."""

    #: Stable identifier, e.g. ``caps.dangerous``; the SARIF rule id.
    check_id: str
    #: One line, specific to this case ("adds SYS_ADMIN").
    title: str
    severity: Severity
    #: The container, or None for a finding about the daemon or host.
    container: Optional[Subject]
    #: What the configuration asks for (from the Engine API).
    declared: Any
    #: What the kernel enforces (from /proc, cgroupfs, capget, setns).
    effective: Any
    #: Where the facts come from: file paths or sources and the values
    #: read there.
    evidence: Dict[str, Any]
    #: The ``docker run`` flag or daemon setting that fixes it.
    remedy: str
    #: CIS Docker Benchmark (v1.3.1 numbering) ids, e.g. ``("5.3",)``.
    cis: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        return {
            "check": self.check_id,
            "title": self.title,
            "severity": self.severity.label,
            "container": (self.container.to_dict()
                          if self.container else None),
            "declared": self.declared,
            "effective": self.effective,
            "evidence": self.evidence,
            "remedy": self.remedy,
            "cis": [f"CIS {c}" for c in self.cis],
        }


@dataclass(frozen=True)
class ContainerAudit:
    """The outcome for one container."""

    subject: Subject
    #: ``audited``, or ``gone`` when it stopped or was removed before
    #: its facts could be read consistently.
    status: str
    findings: Tuple[Finding, ...] = ()
    #: Why it is gone, or which facts could not be read.
    notes: Tuple[str, ...] = ()
    #: Wall time spent on this container's kernel side, in seconds.
    elapsed_s: float = 0.0

    @property
    def gone(self) -> bool:
        return self.status == "gone"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "container": self.subject.to_dict(),
            "status": self.status,
            "notes": list(self.notes),
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class AuditReport:
    """Everything one audit found."""

    containers: Tuple[ContainerAudit, ...]
    #: Findings about the daemon and the host.
    daemon_findings: Tuple[Finding, ...]
    #: Wall time of the whole audit, in seconds.
    elapsed_s: float
    notes: Tuple[str, ...] = ()

    @property
    def findings(self) -> List[Finding]:
        """Every finding, daemon ones first."""
        out = list(self.daemon_findings)
        for c in self.containers:
            out.extend(c.findings)
        return out

    def at_or_above(self, severity: Severity) -> List[Finding]:
        return [f for f in self.findings if f.severity >= severity]

    def counts(self) -> Dict[str, int]:
        counts = {s.label: 0 for s in Severity}
        for f in self.findings:
            counts[f.severity.label] += 1
        return counts

    def to_dict(self) -> Dict[str, Any]:
        return {
            "elapsed_s": round(self.elapsed_s, 4),
            "counts": self.counts(),
            "daemon": [f.to_dict() for f in self.daemon_findings],
            "containers": [c.to_dict() for c in self.containers],
            "notes": list(self.notes),
        }


class AuditFailed(Error):
    """Findings at or above the severity a gate was set to.

    Not a malfunction: the audit ran, and its outcome is what the caller
    asked to be told about with a distinct exit code.
    """

    exit_code = EXIT_FINDINGS

    def __init__(self, threshold: Severity, findings: List[Finding]):
        self.threshold = threshold
        self.findings = findings
        super().__init__(
            f"{len(findings)} finding(s) at or above {threshold.label}")


@dataclass
class Mount:
    """One line of a mountinfo file."""

    mount_id: int
    parent_id: int
    #: ``major:minor`` of the filesystem.
    dev: str
    #: Path inside the filesystem that is mounted here (for a bind mount,
    #: the source's path relative to its filesystem's root).
    root: str
    mount_point: str
    options: Tuple[str, ...]
    #: Optional fields: ``shared:N``, ``master:N``, ``unbindable``.
    tags: Tuple[str, ...]
    fstype: str
    source: str
    super_options: Tuple[str, ...] = ()

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    @property
    def shared(self) -> bool:
        return any(t.startswith("shared:") for t in self.tags)

    def line(self) -> str:
        return (f"{self.mount_id} {self.parent_id} {self.dev} {self.root} "
                f"{self.mount_point} {','.join(self.options)} "
                f"{' '.join(self.tags)} - {self.fstype} {self.source}")


@dataclass
class ProcStatus:
    """What ``/proc/<pid>/status`` says about one process."""

    pid: int
    comm: str
    #: real, effective, saved, filesystem uid
    uids: Tuple[int, ...]
    cap_inh: int
    cap_prm: int
    cap_eff: int
    cap_bnd: int
    cap_amb: int
    no_new_privs: Optional[int]
    #: 0 disabled, 1 strict, 2 filter; None when the kernel lacks it.
    seccomp: Optional[int]


@dataclass
class ContainerFacts:
    """The declared and the effective side of one container."""

    subject: Subject
    #: ``GET /containers/<id>/json`` as the daemon answered.
    inspect: Dict[str, Any]
    #: Host pid of the container's first process.
    pid: int = 0
    #: Every process of the container (the init first).
    procs: List[ProcStatus] = field(default_factory=list)
    #: capget(2) of the init process: (effective, permitted, inheritable).
    capget: Optional[Tuple[int, int, int]] = None
    #: Namespace type -> inode, from ``/proc/<pid>/ns/*``.
    ns: Dict[str, int] = field(default_factory=dict)
    mounts: List[Mount] = field(default_factory=list)
    #: LSM label of the init process, None when no LSM is active.
    lsm_label: Optional[str] = None
    #: ``/proc/<pid>/uid_map`` text.
    uid_map: str = ""
    #: Cgroup limit name -> (file path, raw value).
    cgroup: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    #: What the forked child saw in the container's namespaces; None when
    #: no child ran (fixtures) or it failed.
    inside: Optional[Dict[str, Any]] = None
    #: Facts that could not be read, for the report's notes.
    notes: List[str] = field(default_factory=list)
