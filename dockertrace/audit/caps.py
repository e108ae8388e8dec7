"""Capabilities and privileged mode (CIS 5.3, 5.4).

Declared: ``HostConfig.CapAdd``, ``CapDrop`` and ``Privileged``.
Effective: the capability sets of every process in the container
(``/proc/<pid>/status``) and ``capget(2)`` of its init process; for
privileged mode also the seccomp mode and the devices cgroup.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List

from dockertrace.audit.host import HostFacts
from dockertrace.audit.model import ContainerFacts, Finding, Severity
from dockertrace.audit.procfs import cap_mask, cap_names
from dockertrace.audit.rules import finding, rule

#: What Docker grants when nothing is added or dropped (moby's
#: oci/caps/defaults.go); CapEff of a default container is a80425fb.
DEFAULT_CAPS = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW",
    "SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE",
    "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)
DEFAULT_MASK = cap_mask(DEFAULT_CAPS)

#: Capabilities that hand a container a known way out or onto the host:
#: the value is the severity when one is held.
DANGEROUS = {
    "SYS_ADMIN": Severity.CRITICAL,      # mount, BPF, cgroup release_agent
    "SYS_MODULE": Severity.CRITICAL,     # load kernel code
    "SYS_RAWIO": Severity.CRITICAL,      # /dev/mem, port I/O
    "DAC_READ_SEARCH": Severity.CRITICAL,  # open_by_handle_at ("shocker")
    "SYS_PTRACE": Severity.HIGH,
    "NET_ADMIN": Severity.HIGH,
    "SYS_BOOT": Severity.HIGH,
    "SYS_TIME": Severity.HIGH,
    "BPF": Severity.HIGH,
    "PERFMON": Severity.HIGH,
    "MAC_ADMIN": Severity.HIGH,
    "MAC_OVERRIDE": Severity.HIGH,
    "SYSLOG": Severity.HIGH,
    "SYS_RESOURCE": Severity.HIGH,
    "LINUX_IMMUTABLE": Severity.HIGH,
    "CHECKPOINT_RESTORE": Severity.HIGH,
}

R_PRIV = rule(
    "privileged", "runs privileged", Severity.CRITICAL, ("5.4",),
    "remove --privileged; add only the capabilities and devices needed "
    "(--cap-add, --device)",
    "A privileged container has every capability, no seccomp filter and "
    "access to every host device: root in it is root on the host.")
R_DANGER = rule(
    "caps.dangerous", "holds dangerous capabilities", Severity.HIGH,
    ("5.3",), "--cap-drop ALL, then --cap-add only what the workload needs",
    "These capabilities have known paths from a container to the host.")
R_DEFAULTS = rule(
    "caps.defaults", "keeps Docker's default capabilities", Severity.LOW,
    ("5.3",), "--cap-drop ALL, then --cap-add only what the workload needs",
    "Docker's default set includes NET_RAW (spoofing on the bridge) and "
    "MKNOD; most workloads need none of it.")
R_MISMATCH = rule(
    "caps.mismatch", "capabilities beyond what was declared",
    Severity.HIGH, ("5.3",),
    "find what raised them (a runtime hook, a modified runc, a process "
    "started by docker exec --privileged) and recreate the container",
    "The kernel's bounding set of a container process holds capabilities "
    "its configuration does not grant.")


def _norm(caps) -> List[str]:
    return [c.upper().replace("CAP_", "", 1) for c in caps or []]


def declared_bounding(host_config: Dict[str, Any], full: int) -> int:
    """The bounding set the configuration asks for, as Docker computes it
    (moby oci/caps: ALL in CapAdd or CapDrop first, then the rest)."""
    if host_config.get("Privileged"):
        return full
    add = _norm(host_config.get("CapAdd"))
    drop = _norm(host_config.get("CapDrop"))
    mask = full if "ALL" in add else DEFAULT_MASK
    if "ALL" in drop:
        mask = full if "ALL" in add else 0
    for name in add:
        if name != "ALL":
            mask |= cap_mask([name]) if name in _known() else 0
    for name in drop:
        if name != "ALL" and name in _known():
            mask &= ~cap_mask([name])
    return mask & full


def _known():
    from dockertrace.audit.procfs import CAP_BITS
    return CAP_BITS


def _proc_evidence(c: ContainerFacts) -> Dict[str, Any]:
    ev = {}
    for p in c.procs:
        ev[f"/proc/{p.pid}/status"] = {
            "CapEff": f"{p.cap_eff:016x}", "CapPrm": f"{p.cap_prm:016x}",
            "CapBnd": f"{p.cap_bnd:016x}"}
    if c.capget is not None:
        eff, prm, inh = c.capget
        ev[f"capget({c.pid})"] = {"effective": f"{eff:016x}",
                                 "permitted": f"{prm:016x}",
                                 "inheritable": f"{inh:016x}"}
    return ev


def check(c: ContainerFacts, h: HostFacts) -> Iterator[Finding]:
    hc = c.inspect.get("HostConfig") or {}
    full = h.full_caps()
    bnd = 0
    eff = 0
    for p in c.procs:
        bnd |= p.cap_bnd
        eff |= p.cap_eff | p.cap_prm
    if c.capget is not None:
        eff |= c.capget[0] | c.capget[1]
    declared = {"Privileged": bool(hc.get("Privileged")),
                "CapAdd": hc.get("CapAdd"), "CapDrop": hc.get("CapDrop")}

    yield from _privileged(c, h, hc, bnd, full)

    held = [n for n in cap_names(bnd) if n in DANGEROUS]
    if held and not hc.get("Privileged"):
        sev = max(DANGEROUS[n] for n in held)
        yield finding(
            R_DANGER, c.subject, severity=sev,
            title=f"holds {', '.join(held)}",
            declared=declared,
            effective={"bounding": cap_names(bnd),
                       "effective_or_permitted":
                       [n for n in cap_names(eff) if n in held]},
            evidence=_proc_evidence(c),
            remedy="--cap-drop " + " --cap-drop ".join(held)
            + " (or --cap-drop ALL and add back only what is needed)")

    added = set(_norm(hc.get("CapAdd")))
    kept = [n for n in cap_names(bnd & DEFAULT_MASK) if n not in added]
    if kept:
        yield finding(
            R_DEFAULTS, c.subject,
            title=f"keeps {len(kept)} default capabilities "
                  f"({', '.join(kept[:3])}{', ...' if len(kept) > 3 else ''})",
            declared=declared, effective={"bounding": cap_names(bnd)},
            evidence=_proc_evidence(c))

    extra = bnd & ~declared_bounding(hc, full)
    if extra:
        yield finding(
            R_MISMATCH, c.subject,
            title=f"bounding set has undeclared {', '.join(cap_names(extra))}",
            declared={**declared,
                      "bounding": cap_names(declared_bounding(hc, full))},
            effective={"bounding": cap_names(bnd)},
            evidence=_proc_evidence(c))


def _privileged(c: ContainerFacts, h: HostFacts, hc: Dict[str, Any],
                bnd: int, full: int) -> Iterator[Finding]:
    devices = c.cgroup.get("devices")
    all_devices = devices is not None and "a *:* rwm" in devices[1]
    no_seccomp = any(p.seccomp == 0 for p in c.procs)
    full_caps = bnd & full == full
    signs = {"full capability set": full_caps, "seccomp off": no_seccomp,
             "all devices": all_devices}
    evidenced = full_caps and no_seccomp and (all_devices or devices is None)
    if not hc.get("Privileged") and not evidenced:
        return
    ev = _proc_evidence(c)
    for p in c.procs:
        ev.setdefault(f"/proc/{p.pid}/status", {})["Seccomp"] = p.seccomp
    if devices is not None:
        ev[devices[0]] = devices[1].splitlines()[:5]
    title = ("runs privileged" if hc.get("Privileged")
             else "has every privilege without --privileged")
    yield finding(
        R_PRIV, c.subject, title=title,
        declared={"Privileged": bool(hc.get("Privileged"))},
        effective={k: v for k, v in signs.items()},
        evidence=ev)
