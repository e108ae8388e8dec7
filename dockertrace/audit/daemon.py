"""Checks of the daemon and the host (CIS 2.x, 3.15, 3.16).

Declared: ``docker info``, ``docker version``, the daemon's command line
(``/proc/<dockerd>/cmdline``) and ``daemon.json``.  Effective: the API
sockets' modes and owners as stat(2) sees them, the TCP sockets dockerd
listens on (its socket fds matched against ``/proc/<dockerd>/net/tcp``),
and the bridge network's options.
"""

from __future__ import annotations

import grp
import gzip
import re
from typing import Dict, Iterator, Optional, Sequence, Tuple

from dockertrace.audit.host import HostFacts, flag_values
from dockertrace.audit.model import Finding, Severity
from dockertrace.audit.rules import finding, rule

R_SOCK_PERMS = rule(
    "daemon.socket_perms", "API socket permissions too open",
    Severity.HIGH, ("3.15", "3.16"),
    "chown root:docker /var/run/docker.sock && chmod 660 "
    "/var/run/docker.sock (dockerd --group docker)",
    "Anyone who can open the socket controls the daemon.")
R_TCP_TLS = rule(
    "daemon.tcp_no_tls", "Engine API on TCP without TLS",
    Severity.CRITICAL, ("2.6",),
    "dockerd --tlsverify --tlscacert ... --tlscert ... --tlskey ..., or "
    "remove -H tcp://",
    "An unauthenticated TCP API gives root on the host to whoever reaches "
    "the port.")
R_USERNS = rule(
    "daemon.userns", "no user namespace remapping", Severity.LOW, ("2.8",),
    "\"userns-remap\": \"default\" in daemon.json",
    "Without remapping, root in every container is root on the host.")
R_LIVE = rule(
    "daemon.live_restore", "live restore disabled", Severity.LOW,
    ("2.13",), "\"live-restore\": true in daemon.json",
    "Containers stop whenever the daemon stops or is upgraded.")
R_ICC = rule(
    "daemon.icc", "inter-container traffic on the default bridge",
    Severity.LOW, ("2.1",), "\"icc\": false in daemon.json",
    "Containers on docker0 can talk to each other freely.")
R_ULIMITS = rule(
    "daemon.ulimits", "no default ulimits", Severity.INFO, ("2.7",),
    "\"default-ulimits\" in daemon.json (e.g. nofile, nproc)",
    "Containers inherit the daemon's own limits.")
R_MAC = rule(
    "daemon.no_mac", "no AppArmor or SELinux on the host", Severity.INFO,
    ("5.1", "5.2"), "enable AppArmor or SELinux on the host",
    "Without a MAC policy, CIS 5.1 and 5.2 cannot be met by any "
    "container; they are not checked per container.")
R_RUNC = rule(
    "daemon.runc_cve", "runc has a known container escape",
    Severity.CRITICAL, (), "upgrade runc (with containerd or docker)",
    "The runtime version is older than the fix for a container escape.")
R_CONTAINERD = rule(
    "daemon.containerd_cve", "containerd has a known vulnerability",
    Severity.HIGH, (), "upgrade containerd",
    "The containerd version is older than the fix for a vulnerability.")

#: (CVE, fixed versions per release branch, severity, what it does).  A
#: version is vulnerable if its branch's fix is newer, or if it is older
#: than every fixed branch.
RUNC_CVES = (
    ("CVE-2019-5736", ("1.0.0-rc7",), Severity.CRITICAL,
     "a container overwrites the host's runc binary via /proc/self/exe"),
    ("CVE-2021-30465", ("1.0.0-rc95",), Severity.HIGH,
     "a symlink race in mount setup mounts host paths into a container"),
    ("CVE-2024-21626", ("1.1.12",), Severity.CRITICAL,
     "a leaked host directory fd lets a container or image escape "
     "(\"Leaky Vessels\")"),
    ("CVE-2025-31133", ("1.2.8", "1.3.3", "1.4.0-rc.3"), Severity.HIGH,
     "a race on masked paths (/dev/null) gives write access to host "
     "procfs files"),
)
CONTAINERD_CVES = (
    ("CVE-2020-15257", ("1.3.9", "1.4.3"), Severity.HIGH,
     "host-network containers reach containerd-shim's abstract socket"),
    ("CVE-2022-23648", ("1.4.13", "1.5.10", "1.6.1"), Severity.MEDIUM,
     "image volumes copy arbitrary host files into containers (CRI)"),
)

#: Distribution builds known to carry a fix for an older upstream
#: version: (component, exact package version) -> fixed CVEs.  Where a
#: Debian changelog is on the host it is read as well.
BACKPORTS = {
    ("runc", "1.1.5+ds1-1+deb12u1"): {"CVE-2024-21626"},
    ("runc", "1.0.0~rc93+ds1-5+deb11u3"): {"CVE-2024-21626"},
}
_CHANGELOGS = {"runc": "/usr/share/doc/runc/changelog.Debian.gz",
               "containerd": "/usr/share/doc/containerd/changelog.Debian.gz"}


def parse_version(text: str) -> Optional[Tuple]:
    """An ordering key for runc/containerd versions: ``1.1.5+ds1`` ->
    (1, 1, 5, 1, 0); release candidates sort before their release."""
    m = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-~.]?rc\.?(\d+))?", text)
    if not m:
        return None
    major, minor, patch, rc = m.groups()
    return (int(major), int(minor), int(patch or 0),
            0 if rc is not None else 1, int(rc or 0))


def vulnerable(version: str, fixed: Sequence[str]) -> bool:
    v = parse_version(version)
    if v is None:
        return False
    keys = sorted(k for k in (parse_version(f) for f in fixed) if k)
    for k in keys:
        if k[:2] == v[:2]:
            return v < k
    return v < keys[0]


def _components(h: HostFacts) -> Dict[str, Tuple[str, str]]:
    """name -> (version, package version or commit) from the Engine API."""
    out = {}
    for comp in h.version.get("Components") or []:
        name = (comp.get("Name") or "").lower()
        if name in ("runc", "containerd"):
            out[name] = (comp.get("Version") or "",
                         (comp.get("Details") or {}).get("GitCommit", ""))
    for key, name in (("RuncCommit", "runc"),
                      ("ContainerdCommit", "containerd")):
        if name not in out and h.info.get(key):
            out[name] = ("", h.info[key].get("ID", ""))
    return out


def _changelog_fixes(h: HostFacts, name: str) -> str:
    if not h.view.live:
        return ""
    try:
        with gzip.open(h.view.path(_CHANGELOGS[name]), "rt",
                       errors="replace") as f:
            return f.read(200000)
    except OSError:
        return ""


def check(h: HostFacts) -> Iterator[Finding]:
    yield from _sockets(h)
    yield from _tcp(h)
    if not h.userns_remap:
        yield finding(R_USERNS, None,
                      declared={"userns-remap": h.daemon_json.get(
                          "userns-remap")},
                      effective={"SecurityOptions":
                                 h.info.get("SecurityOptions")},
                      evidence={"docker info": "SecurityOptions has no "
                                "name=userns"})
    if h.info and not h.info.get("LiveRestoreEnabled"):
        yield finding(R_LIVE, None,
                      declared={"live-restore": h.daemon_json.get(
                          "live-restore")},
                      effective={"LiveRestoreEnabled": False},
                      evidence={"docker info": "LiveRestoreEnabled: false"})
    opts = (h.bridge.get("Options") or {})
    if h.bridge and opts.get(
            "com.docker.network.bridge.enable_icc", "true") == "true":
        yield finding(R_ICC, None,
                      declared={"icc": h.daemon_json.get("icc")},
                      effective={"enable_icc": opts.get(
                          "com.docker.network.bridge.enable_icc")},
                      evidence={"docker network inspect bridge": opts})
    if not h.daemon_json.get("default-ulimits") and not flag_values(
            h.daemon_args, "--default-ulimit"):
        yield finding(R_ULIMITS, None, declared=None, effective=None,
                      evidence={h.daemon_json_path: "no default-ulimits"})
    if not h.lsms:
        yield finding(R_MAC, None, declared=None, effective=[],
                      evidence={"/sys/kernel/security/lsm": "no apparmor "
                                "or selinux", "docker info":
                                h.info.get("SecurityOptions")})
    yield from _cves(h)


def _sockets(h: HostFacts) -> Iterator[Finding]:
    for s in h.sockets:
        problems = []
        if s.mode & 0o007:
            problems.append("accessible to every user")
        if s.uid != 0:
            problems.append(f"owned by uid {s.uid}")
        try:
            group = grp.getgrgid(s.gid).gr_name
        except KeyError:
            group = str(s.gid)
        if s.kind == "docker" and group not in ("docker", "root"):
            problems.append(f"group {group}")
        if s.mode & 0o117:
            problems.append(f"mode {s.mode:o}")
        if not problems:
            continue
        yield finding(
            R_SOCK_PERMS, None,
            severity=Severity.CRITICAL if s.mode & 0o006 else None,
            title=f"{s.path}: {', '.join(problems)}",
            declared={"group": flag_values(h.daemon_args, "-G", "--group")
                      or h.daemon_json.get("group")},
            effective={"mode": f"{s.mode:04o}", "uid": s.uid,
                       "group": group},
            evidence={s.path: f"mode {s.mode:04o} uid {s.uid} "
                      f"group {group}"})


def _tcp(h: HostFacts) -> Iterator[Finding]:
    declared = [u for u in flag_values(h.daemon_args, "-H", "--host")
                + list(h.daemon_json.get("hosts") or [])
                if u.startswith("tcp://")]
    tls = any(a.startswith("--tlsverify") for a in h.daemon_args) or bool(
        h.daemon_json.get("tlsverify"))
    if (h.engine_tcp or declared) and not tls:
        yield finding(
            R_TCP_TLS, None,
            title="Engine API on " + ", ".join(
                f"{a}:{p}" for a, p in h.engine_tcp) or ", ".join(declared),
            declared={"hosts": declared, "tlsverify": tls},
            effective=[f"{a}:{p}" for a, p in h.engine_tcp],
            evidence={f"/proc/{h.ref_pid}/net/tcp": "listening sockets "
                      "held by dockerd"})


def _cves(h: HostFacts) -> Iterator[Finding]:
    comps = _components(h)
    for name, table, r in (("runc", RUNC_CVES, R_RUNC),
                           ("containerd", CONTAINERD_CVES, R_CONTAINERD)):
        if name not in comps:
            continue
        version, package = comps[name]
        version = version or package
        changelog = None
        for cve, fixed, sev, what in table:
            if not vulnerable(version, fixed):
                continue
            if cve in BACKPORTS.get((name, package), ()):
                continue
            if changelog is None:
                changelog = _changelog_fixes(h, name)
            if cve in changelog:
                continue
            yield finding(
                r, None, severity=sev,
                title=f"{name} {version} is affected by {cve}",
                declared={"version": version, "package": package},
                effective={"fixed_in": list(fixed)},
                evidence={"docker version": f"{name} {version} "
                          f"({package})", cve: what},
                remedy=f"upgrade {name} to {' / '.join(fixed)} or later "
                "(or a distribution build that carries the fix)")

