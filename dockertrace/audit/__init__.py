"""Security audit of running containers, from the host.

Each container is looked at twice: as configured (the Engine API's
inspect) and as enforced (its processes' capability sets, namespaces,
mounts, seccomp mode and cgroup limits, read from the host's /proc and
cgroupfs, plus what a forked child sees from inside its namespaces).  A
finding says what was declared, what is effective, the evidence, and the
``docker run`` flag or daemon setting that fixes it.

    import dockertrace
    report = dockertrace.audit()             # every running container
    for f in report.at_or_above(dockertrace.audit.Severity.HIGH): ...

Checks are split by subject: :mod:`.caps`, :mod:`.namespaces`,
:mod:`.mounts`, :mod:`.cgroups`, :mod:`.security`, :mod:`.network`,
:mod:`.config`, :mod:`.daemon`; :mod:`.cis` maps them to the CIS Docker
Benchmark.
"""

from __future__ import annotations

import logging
import sys
import time
import types
from typing import Any, Iterable, List, Sequence

from dockertrace.audit import (caps, cgroups, config, daemon, mounts,
                               namespaces, network, security)
from dockertrace.audit.collect import Collected, collect
from dockertrace.audit.model import (EXIT_FINDINGS, AuditFailed,
                                     AuditReport, ContainerAudit,
                                     ContainerFacts, Finding, Severity,
                                     Subject)
from dockertrace.audit.procfs import HostView
from dockertrace.audit.rules import RULES

__all__ = [
    "EXIT_FINDINGS", "RULES", "AuditFailed", "AuditReport",
    "ContainerAudit", "Finding", "Severity", "Subject", "audit",
    "check_container", "report_from",
]

log = logging.getLogger(__name__)

#: Container check modules, in the order their findings are listed.
CONTAINER_CHECKS = (caps, namespaces, security, mounts, cgroups, network,
                    config)


def audit(containers: Sequence[str] = (), *, client: Any = None,
          daemon_checks: bool = True, inside: bool = True,
          root: str = "/") -> AuditReport:
    """Audit containers (names or ids; every running one when empty).

    ``client`` is a docker-py ``DockerClient`` (default: one from
    DOCKER_HOST).  ``inside=False`` skips the forked children that look
    from inside each container's namespaces (API sockets by inode,
    Engine API over TCP, listening sockets).  ``root`` is where the
    host's /proc and /sys are found, for tests.

    Raises :class:`dockertrace.NoSuchContainer` for a named container the
    daemon does not know, :class:`dockertrace.DockerUnavailable` when the
    daemon cannot be reached.  A container that stops during the audit is
    reported with status ``gone``, not raised.
    """
    started = time.monotonic()
    got = collect(list(containers), client=client, view=HostView(root),
                  inside=inside)
    return report_from(got, daemon_checks=daemon_checks,
                       elapsed_s=time.monotonic() - started)


def check_container(facts: ContainerFacts, host) -> List[Finding]:
    """Every finding for one container's facts."""
    out: List[Finding] = []
    for module in CONTAINER_CHECKS:
        out.extend(module.check(facts, host))
    return out


def report_from(got: Collected, *, daemon_checks: bool = True,
                elapsed_s: float = 0.0) -> AuditReport:
    """Run the checks over collected facts."""
    results = []
    for facts in got.facts:
        results.append(ContainerAudit(
            facts.subject, "audited",
            tuple(check_container(facts, got.host)), tuple(facts.notes)))
    for subject, reason in got.gone:
        results.append(ContainerAudit(subject, "gone", (), (reason,)))
    results.sort(key=lambda r: (r.subject.name, r.subject.id))
    daemon_findings: Iterable[Finding] = (
        daemon.check(got.host) if daemon_checks else ())
    return AuditReport(tuple(results), tuple(daemon_findings), elapsed_s,
                       tuple(got.host.notes))


class _CallableModule(types.ModuleType):
    """Importing this package rebinds ``dockertrace.audit`` from the
    function to the package; making the package callable keeps
    ``dockertrace.audit(...)`` working either way."""

    def __call__(self, *args: Any, **kwargs: Any) -> AuditReport:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
