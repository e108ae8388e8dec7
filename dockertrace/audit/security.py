"""Seccomp, AppArmor/SELinux, no-new-privileges and root without a user
namespace (CIS 5.1, 5.2, 5.21, 5.25; 4.1 for the user).

Declared: ``HostConfig.SecurityOpt``, ``Config.User``, ``AppArmorProfile``
and ``MountLabel``/``ProcessLabel``.  Effective: ``Seccomp``,
``NoNewPrivs`` and ``Uid`` in ``/proc/<pid>/status`` of every process,
``/proc/<pid>/attr/current`` and ``/proc/<pid>/uid_map``.
"""

from __future__ import annotations

from typing import Iterator, List

from dockertrace.audit.host import HostFacts
from dockertrace.audit.model import ContainerFacts, Finding, Severity
from dockertrace.audit.rules import finding, rule

R_SECCOMP = rule(
    "seccomp.disabled", "runs without a seccomp filter", Severity.HIGH,
    ("5.21",), "remove --security-opt seccomp=unconfined (and "
    "--privileged); pass a custom profile if a syscall is missing",
    "Docker's default seccomp profile blocks about 50 syscalls used in "
    "kernel exploits and escapes (keyctl, unshare, mount, bpf, ...).")
R_LSM = rule(
    "lsm.unconfined", "no AppArmor or SELinux confinement", Severity.MEDIUM,
    ("5.1", "5.2"), "remove --security-opt apparmor=unconfined / "
    "label=disable; use the runtime's default profile",
    "The host enforces a MAC policy, but this container's processes run "
    "unconfined by it.")
R_NNP = rule(
    "nnp.off", "can gain privileges through setuid binaries",
    Severity.MEDIUM, ("5.25",),
    "--security-opt no-new-privileges (or \"no-new-privileges\": true in "
    "daemon.json)",
    "Without no_new_privs, executing a setuid or file-capability binary "
    "raises a process's privileges inside the container.")
R_ROOT = rule(
    "user.root", "runs as root in the host's user namespace",
    Severity.MEDIUM, ("4.1", "5.30"),
    "--user UID:GID (a non-root user), or enable userns-remap on the "
    "daemon",
    "uid 0 in the container is uid 0 on the host: any escape or writable "
    "host mount is root's.")

_UNCONFINED = ("unconfined", "unconfined_t", "spc_t", "kernel_t")


def _security_opts(c: ContainerFacts) -> List[str]:
    return list((c.inspect.get("HostConfig") or {}).get("SecurityOpt")
                or [])


def check(c: ContainerFacts, h: HostFacts) -> Iterator[Finding]:
    opts = _security_opts(c)
    hc = c.inspect.get("HostConfig") or {}

    off = [p for p in c.procs if p.seccomp == 0]
    if off:
        yield finding(
            R_SECCOMP, c.subject,
            declared={"SecurityOpt": [o for o in opts if "seccomp" in o],
                      "Privileged": bool(hc.get("Privileged"))},
            effective={"Seccomp": 0, "pids": [p.pid for p in off]},
            evidence={f"/proc/{p.pid}/status": "Seccomp: 0" for p in off})

    label = c.lsm_label
    if h.lsms and _unconfined(label):
        yield finding(
            R_LSM, c.subject,
            declared={"SecurityOpt": opts,
                      "AppArmorProfile": c.inspect.get("AppArmorProfile"),
                      "ProcessLabel": c.inspect.get("ProcessLabel")},
            effective={"label": label, "host_lsms": h.lsms},
            evidence={f"/proc/{c.pid}/attr/current": label})

    nnp_off = [p for p in c.procs if p.no_new_privs == 0]
    if nnp_off:
        yield finding(
            R_NNP, c.subject,
            declared={"SecurityOpt": [o for o in opts
                                      if o.startswith("no-new-priv")]},
            effective={"NoNewPrivs": 0, "pids": [p.pid for p in nnp_off]},
            evidence={f"/proc/{p.pid}/status": "NoNewPrivs: 0"
                      for p in nnp_off})

    identity = _identity_map(c.uid_map)
    roots = [p for p in c.procs if len(p.uids) > 1 and p.uids[1] == 0]
    if roots and identity:
        yield finding(
            R_ROOT, c.subject,
            declared={"User": (c.inspect.get("Config") or {}).get("User")
                      or "", "UsernsMode": hc.get("UsernsMode") or ""},
            effective={"euid": 0, "pids": [p.pid for p in roots],
                       "uid_map": c.uid_map.split()},
            evidence={f"/proc/{c.pid}/uid_map": " ".join(c.uid_map.split()),
                      **{f"/proc/{p.pid}/status":
                         "Uid: " + " ".join(map(str, p.uids))
                         for p in roots}})


def _unconfined(label) -> bool:
    """True for no label, AppArmor's ``unconfined`` and SELinux types
    that are not confined (``spc_t`` is what --privileged gets)."""
    if not label:
        return True
    word = label.split()[0]
    if ":" in word:
        parts = word.split(":")
        word = parts[2] if len(parts) > 2 else word
    return word in _UNCONFINED


def _identity_map(uid_map: str) -> bool:
    """True when uid 0 inside is uid 0 outside (no user namespace, or one
    that maps root to root)."""
    for line in uid_map.splitlines():
        f = line.split()
        if len(f) == 3 and f[0] == "0":
            return f[1] == "0"
    return not uid_map.strip()
