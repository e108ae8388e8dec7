"""Mounts, devices and API sockets (CIS 5.5, 5.12, 5.17, 5.19, 5.31).

Declared: ``Mounts`` (source, destination, RW, propagation),
``HostConfig.Devices`` and ``ReadonlyRootfs``.  Effective: the
container's ``/proc/<pid>/mountinfo`` (read-only flag, propagation tags),
its devices cgroup, and, for API sockets, what the forked child found by
inode inside the container's mount namespace.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Optional

from dockertrace.audit.host import HostFacts
from dockertrace.audit.model import ContainerFacts, Finding, Mount, Severity
from dockertrace.audit.rules import finding, rule

#: Host directories whose mount gives a container power over the host.
SENSITIVE = ("/", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc",
             "/sys", "/usr", "/bin", "/sbin", "/root", "/run", "/var/run",
             "/var/lib/docker", "/var/lib/containerd", "/var/lib/kubelet")
#: Below these even a single file is sensitive when writable.
_SUBTREES = ("/boot", "/dev", "/etc", "/proc", "/sys", "/root",
             "/var/lib/docker", "/var/lib/containerd", "/usr", "/lib",
             "/bin", "/sbin")

#: Entries of Docker's default devices cgroup (v1 devices.list).
DEFAULT_DEVICES = frozenset((
    "b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
    "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",
    "c 10:200 rwm", "c 136:* rwm", "c 10:229 rwm",
))

R_SOCKET = rule(
    "socket.mounted", "Docker or containerd API socket inside",
    Severity.CRITICAL, ("5.31",),
    "remove the -v/--mount that exposes the socket",
    "Whoever reaches the Engine API or containerd socket can start a "
    "privileged container: it is root on the host.")
R_SENSITIVE = rule(
    "mounts.sensitive", "sensitive host path mounted", Severity.HIGH,
    ("5.5",), "remove the mount, or mount a narrower path read-only "
    "(-v SRC:DST:ro)",
    "Host system directories give a container a way to change the host "
    "(writable) or to read its secrets.")
R_ROOTFS = rule(
    "rootfs.writable", "root filesystem is writable", Severity.LOW,
    ("5.12",), "--read-only (with --tmpfs for paths that must be "
    "writable)",
    "A read-only root filesystem stops an intruder from changing the "
    "container's binaries and keeps state in declared volumes.")
R_DEVICES = rule(
    "devices.host", "host devices exposed", Severity.HIGH, ("5.17",),
    "remove --device (or narrow its permissions, e.g. :r)",
    "A host device node gives direct access to hardware or kernel "
    "interfaces below the container's isolation.")
R_PROPAGATION = rule(
    "mounts.propagation", "mount propagation is shared", Severity.MEDIUM,
    ("5.19",), "drop the shared/rshared propagation option of the mount "
    "(Docker's default is rprivate)",
    "With shared propagation, mounts made in the container appear on the "
    "host and the other way round.")


def _mount_at(c: ContainerFacts, dest: str) -> Optional[Mount]:
    found = None
    for m in c.mounts:
        # The last mount at a point is the one on top.
        if m.mount_point == dest:
            found = m
    return found


def _socket_paths(h: HostFacts) -> List[str]:
    out = []
    for s in h.sockets:
        out.append(s.path)
        real = os.path.realpath(h.view.path(s.path))
        out.append(real if h.view.live else
                   "/" + os.path.relpath(real, h.view.root))
    return out


def check(c: ContainerFacts, h: HostFacts) -> Iterator[Finding]:
    yield from _sockets(c, h)
    yield from _sensitive(c, h)
    yield from _rootfs(c)
    yield from _devices(c)
    yield from _propagation(c)


def _sockets(c: ContainerFacts, h: HostFacts) -> Iterator[Finding]:
    found = (c.inside or {}).get("sockets") or []
    # Declared mounts of a socket's path, for when no child could look
    # (and as the declared side of what it found).
    paths = _socket_paths(h)
    declared = [{"Source": m.get("Source"), "Destination":
                 m.get("Destination"), "RW": m.get("RW")}
                for m in c.inspect.get("Mounts") or []
                if any(p == m.get("Source") or p.startswith(
                    (m.get("Source") or "").rstrip("/") + "/")
                    for p in paths if m.get("Source"))]
    if not found and not (declared and c.inside is None):
        return
    ev: Dict[str, Any] = {}
    for s in found:
        ev[f"{s['path']} (inside)"] = {"inode": s["inode"],
                                       "host": s["host_path"]}
    for s in h.sockets:
        ev.setdefault(f"{s.path} (host)", {"inode": s.ino,
                                           "kind": s.kind})
    where = ", ".join(s["path"] for s in found) or ", ".join(
        d["Destination"] for d in declared)
    yield finding(
        R_SOCKET, c.subject, title=f"API socket reachable at {where}",
        declared=declared, effective=found or "not looked at (no child)",
        evidence=ev,
        remedy="remove the mount of "
        + ", ".join(sorted({d["Source"] for d in declared}) or ["it"]))


def _is_sensitive(src: str) -> bool:
    src = os.path.normpath(src)
    for s in SENSITIVE:
        # The path itself, or a parent of it (mounting / exposes all).
        if src == s or s.startswith(src.rstrip("/") + "/"):
            return True
    return False


def _under_sensitive(src: str) -> bool:
    src = os.path.normpath(src)
    return any(src.startswith(s + "/") for s in _SUBTREES)


def _sensitive(c: ContainerFacts, h: HostFacts) -> Iterator[Finding]:
    sockets = set(_socket_paths(h))
    for m in c.inspect.get("Mounts") or []:
        if m.get("Type") != "bind":
            continue
        src, dest = m.get("Source") or "", m.get("Destination") or ""
        if src in sockets:
            continue
        eff = _mount_at(c, dest)
        writable = (not eff.read_only) if eff is not None else bool(
            m.get("RW"))
        if _is_sensitive(src):
            sev = Severity.HIGH if writable else Severity.MEDIUM
        elif _under_sensitive(src) and writable:
            sev = Severity.MEDIUM
        else:
            continue
        mode = "writable" if writable else "read-only"
        yield finding(
            R_SENSITIVE, c.subject, severity=sev,
            title=f"host {src} mounted {mode} at {dest}",
            declared={"Source": src, "Destination": dest,
                      "RW": m.get("RW"), "Mode": m.get("Mode")},
            effective={"read_only": not writable} if eff else None,
            evidence={f"/proc/{c.pid}/mountinfo":
                      eff.line() if eff else "no mount at " + dest},
            remedy=f"remove -v {src}:{dest}, or mount a narrower path "
            "read-only (:ro)")


def _rootfs(c: ContainerFacts) -> Iterator[Finding]:
    hc = c.inspect.get("HostConfig") or {}
    root = _mount_at(c, "/")
    if root is None or root.read_only:
        return
    declared_ro = bool(hc.get("ReadonlyRootfs"))
    yield finding(
        R_ROOTFS, c.subject,
        severity=Severity.MEDIUM if declared_ro else None,
        title=("root filesystem is writable although --read-only was "
               "given" if declared_ro else None) or "",
        declared={"ReadonlyRootfs": declared_ro},
        effective={"options": ",".join(root.options)},
        evidence={f"/proc/{c.pid}/mountinfo": root.line()[:200]})


def _devices(c: ContainerFacts) -> Iterator[Finding]:
    hc = c.inspect.get("HostConfig") or {}
    declared = [{"PathOnHost": d.get("PathOnHost"),
                 "PathInContainer": d.get("PathInContainer"),
                 "CgroupPermissions": d.get("CgroupPermissions")}
                for d in hc.get("Devices") or []]
    dev = c.cgroup.get("devices")
    extra: List[str] = []
    if dev is not None:
        extra = [ln for ln in dev[1].splitlines()
                 if ln.strip() and ln.strip() not in DEFAULT_DEVICES]
    # Privileged containers are reported as such; their "a *:* rwm" is
    # part of that finding.
    if hc.get("Privileged") or not (declared or extra):
        return
    every = "a *:* rwm" in extra
    yield finding(
        R_DEVICES, c.subject,
        severity=Severity.CRITICAL if every else None,
        title=("every host device is accessible" if every else
               "host devices: " + ", ".join(
                   d["PathOnHost"] or "" for d in declared)
               if declared else "devices cgroup allows "
               + ", ".join(extra[:3])),
        declared=declared, effective={"devices.list extra": extra},
        evidence={dev[0]: extra} if dev else {})


def _propagation(c: ContainerFacts) -> Iterator[Finding]:
    shared = [m for m in c.mounts if m.shared]
    declared = [{"Destination": m.get("Destination"),
                 "Propagation": m.get("Propagation")}
                for m in c.inspect.get("Mounts") or []
                if m.get("Propagation") in ("shared", "rshared")]
    if not shared and not declared:
        return
    yield finding(
        R_PROPAGATION, c.subject,
        title="shared propagation on " + ", ".join(
            sorted({m.mount_point for m in shared}
                   or {d["Destination"] for d in declared})[:3]),
        declared=declared,
        effective=[{"mount_point": m.mount_point,
                    "tags": list(m.tags)} for m in shared],
        evidence={f"/proc/{c.pid}/mountinfo": [m.line()[:200]
                                               for m in shared[:5]]})
