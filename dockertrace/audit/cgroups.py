"""Memory, CPU and pids limits (CIS 5.10, 5.11, 5.24, 5.28).

Declared: ``HostConfig.Memory``, ``NanoCpus``/``CpuQuota``/``CpuPeriod``/
``CpuShares``, ``PidsLimit`` and ``CgroupParent``.  Effective: the limit
files of the container's cgroups, found through ``/proc/<pid>/cgroup``
(cgroup v1 controllers first, the v2 files where a controller is only
in the unified tree).
"""

from __future__ import annotations

from typing import Iterator, Optional

from dockertrace.audit.host import HostFacts
from dockertrace.audit.model import ContainerFacts, Finding, Severity
from dockertrace.audit.rules import finding, rule

# cgroup v1 reports "no limit" as the largest page-aligned signed value.
_V1_UNLIMITED = 1 << 62

R_MEMORY = rule(
    "limits.memory", "no memory limit", Severity.MEDIUM, ("5.10",),
    "--memory 512m (and --memory-swap equal to it)",
    "One container can take the host's memory and push others into the "
    "OOM killer.")
R_CPU = rule(
    "limits.cpu", "no CPU limit or priority", Severity.LOW, ("5.11",),
    "--cpus 1.5 (quota) or --cpu-shares 512 (relative weight)",
    "Without a quota or a weight a busy container competes with the host "
    "and every other container on equal terms.")
R_PIDS = rule(
    "limits.pids", "no pids limit", Severity.MEDIUM, ("5.28",),
    "--pids-limit 200", "A fork bomb in the container exhausts the host's "
    "process table.")
R_MISMATCH = rule(
    "limits.mismatch", "cgroup limit differs from the configuration",
    Severity.MEDIUM, ("5.10", "5.11", "5.28"),
    "docker update the container (or recreate it) so the kernel enforces "
    "the declared limit",
    "The value the kernel enforces is not the one the configuration "
    "declares: something changed the cgroup behind Docker's back.")
R_PARENT = rule(
    "cgroup.parent", "custom cgroup parent", Severity.INFO, ("5.24",),
    "check that --cgroup-parent points at a cgroup with the intended "
    "limits", "The container's limits also depend on its parent cgroup.")


def _int(value: str) -> Optional[int]:
    try:
        return int(value)
    except ValueError:
        return None


def check(c: ContainerFacts, h: HostFacts) -> Iterator[Finding]:
    hc = c.inspect.get("HostConfig") or {}
    cg = c.cgroup

    if "memory" in cg:
        path, raw = cg["memory"]
        value = _int(raw.split()[0])
        unlimited = raw == "max" or (value is not None
                                     and value >= _V1_UNLIMITED)
        want = hc.get("Memory") or 0
        if unlimited:
            yield finding(R_MEMORY, c.subject,
                          declared={"Memory": want},
                          effective="unlimited", evidence={path: raw})
        elif want and value != want:
            yield _mismatch(c, "memory", {"Memory": want}, path, raw)

    quota = cg.get("cpu.quota")
    shares = cg.get("cpu.shares")
    if quota is not None:
        qpath, qraw = quota
        words = qraw.split()
        q = None if words[0] in ("max", "-1") else _int(words[0])
        period = _int(words[1]) if len(words) > 1 else _int(
            cg.get("cpu.period", ("", "100000"))[1])
        weight_default = shares is None or shares[1] in ("1024", "100")
        declared = {k: hc.get(k) for k in ("NanoCpus", "CpuQuota",
                                           "CpuPeriod", "CpuShares")}
        ev = {qpath: qraw}
        if shares is not None:
            ev[shares[0]] = shares[1]
        if q is None and weight_default:
            yield finding(R_CPU, c.subject, declared=declared,
                          effective={"quota": "none", "weight": "default"},
                          evidence=ev)
        want_q = None
        if hc.get("NanoCpus") and period:
            want_q = hc["NanoCpus"] * period // 10**9
        elif hc.get("CpuQuota"):
            want_q = hc["CpuQuota"]
        if want_q and q != want_q:
            yield _mismatch(c, "cpu", declared, qpath, qraw)

    if "pids" in cg:
        path, raw = cg["pids"]
        want = hc.get("PidsLimit") or 0
        if raw == "max":
            yield finding(R_PIDS, c.subject,
                          declared={"PidsLimit": hc.get("PidsLimit")},
                          effective="max", evidence={path: raw})
        elif want > 0 and _int(raw) != want:
            yield _mismatch(c, "pids", {"PidsLimit": want}, path, raw)

    if hc.get("CgroupParent"):
        yield finding(R_PARENT, c.subject,
                      title=f"cgroup parent {hc['CgroupParent']}",
                      declared={"CgroupParent": hc["CgroupParent"]},
                      effective=None, evidence={})


def _mismatch(c: ContainerFacts, what: str, declared, path: str,
              raw: str) -> Finding:
    return finding(R_MISMATCH, c.subject,
                   title=f"{what} limit in the cgroup is {raw}",
                   declared=declared, effective=raw, evidence={path: raw})
