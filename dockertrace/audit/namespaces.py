"""Namespaces shared with the host (CIS 5.9, 5.15, 5.16, 5.20, 5.30).

Declared: ``HostConfig.{Pid,Network,Ipc,UTS,Userns,Cgroupns}Mode``.
Effective: the inode of ``/proc/<pid>/ns/<type>`` against the same link
of dockerd.  The inode comparison also catches sharing the declared side
hides, such as ``--network container:X`` where X uses host networking.
"""

from __future__ import annotations

from typing import Iterator

from dockertrace.audit.host import HostFacts
from dockertrace.audit.model import ContainerFacts, Finding, Severity
from dockertrace.audit.rules import finding, rule

# ns type -> (HostConfig key, severity, CIS ids, run flag that fixes it)
_NS = {
    "pid": ("PidMode", Severity.HIGH, ("5.15",),
            "remove --pid host"),
    "net": ("NetworkMode", Severity.HIGH, ("5.9",),
            "remove --network host; publish ports with -p instead"),
    "ipc": ("IpcMode", Severity.MEDIUM, ("5.16",),
            "remove --ipc host (use --ipc private or shareable)"),
    "uts": ("UTSMode", Severity.MEDIUM, ("5.20",),
            "remove --uts host"),
    "user": ("UsernsMode", Severity.MEDIUM, ("5.30",),
             "remove --userns host"),
    "cgroup": ("CgroupnsMode", Severity.LOW, (),
               "--cgroupns private (the default on cgroup v2 hosts)"),
    "mnt": ("", Severity.CRITICAL, (),
            "recreate the container; a runtime never shares the host's "
            "mount namespace on purpose"),
}

RULES = {
    ns: rule(f"ns.{ns}", f"shares the host's {ns} namespace", sev, cis,
             fix, "A namespace shared with the host removes that part of "
             "the isolation between the container and the host.")
    for ns, (_key, sev, cis, fix) in _NS.items()
}


def check(c: ContainerFacts, h: HostFacts) -> Iterator[Finding]:
    hc = c.inspect.get("HostConfig") or {}
    for ns, (key, _sev, _cis, _fix) in _NS.items():
        mine, hosts = c.ns.get(ns), h.ns.get(ns)
        if mine is None or hosts is None or mine != hosts:
            continue
        declared = hc.get(key) if key else None
        if ns == "user" and not (h.userns_remap or declared == "host"):
            # Without user namespace remapping every container shares
            # the host's user namespace; that is reported once per
            # container as user.root (if it runs as root) and once for
            # the daemon as daemon.userns.
            continue
        ref = h.ref_pid if h.ref_pid is not None else "self"
        yield finding(
            RULES[ns], c.subject,
            declared={key: declared} if key else None,
            effective={"inode": mine, "host_inode": hosts},
            evidence={f"/proc/{c.pid}/ns/{ns}": f"{ns}:[{mine}]",
                      f"/proc/{ref}/ns/{ns} (dockerd)": f"{ns}:[{hosts}]"})
