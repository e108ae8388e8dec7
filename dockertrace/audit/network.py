"""Ports, the default bridge, the Engine API over TCP, listening sockets,
sysctls and sshd (CIS 5.6, 5.7, 5.8, 5.13, 5.29).

Declared: ``NetworkSettings.Ports``, ``NetworkSettings.Networks`` and
``HostConfig.Sysctls``.  Effective: what the forked child saw inside the
container's network namespace (listening sockets, sysctl values, which
Engine API TCP endpoints accept a connection) and the processes' names.
"""

from __future__ import annotations

from typing import Iterator

from dockertrace.audit.host import HostFacts
from dockertrace.audit.model import ContainerFacts, Finding, Severity
from dockertrace.audit.rules import finding, rule

#: sysctls Kubernetes deems safe: namespaced and unable to affect other
#: containers or the host.  Docker only accepts namespaced ones at all.
SAFE_SYSCTLS = frozenset((
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
))

R_TCP = rule(
    "socket.tcp", "Engine API reachable over TCP", Severity.CRITICAL,
    ("5.31", "2.6"),
    "bind the daemon's TCP listener to an address containers cannot "
    "reach and require TLS (--tlsverify), or remove -H tcp://",
    "From this network namespace the Docker Engine API accepts "
    "connections: anyone in the container controls the daemon.")
R_ALL_IFACES = rule(
    "ports.all_interfaces", "ports published on all interfaces",
    Severity.LOW, ("5.13",), "-p 127.0.0.1:HOST:CONTAINER (or a specific "
    "host address)", "A port bound to 0.0.0.0 is reachable from every "
    "network the host is on.")
R_PRIV_PORT = rule(
    "ports.privileged", "privileged host port mapped", Severity.LOW,
    ("5.7",), "-p 8080:80 (a host port above 1023)",
    "Host ports below 1024 are meant for services the host's root runs.")
R_BRIDGE = rule(
    "net.default_bridge", "on Docker's default bridge", Severity.LOW,
    ("5.29",), "--network NAME (a user-defined network) or --network none",
    "Every container on docker0 can reach every other one (unless icc is "
    "off), and ARP spoofing is possible with NET_RAW.")
R_LISTEN = rule(
    "net.listening", "listening sockets inside", Severity.INFO, ("5.8",),
    "stop services the container does not need to offer",
    "What listens inside the container, from its network namespace.")
R_SYSCTL = rule(
    "sysctls.unsafe", "unsafe sysctls set", Severity.MEDIUM, (),
    "remove --sysctl NAME=VALUE unless the workload needs it",
    "These sysctls are not among those known to be safe per container.")
R_SSHD = rule(
    "proc.sshd", "sshd runs inside", Severity.MEDIUM, ("5.6",),
    "remove sshd from the image; use docker exec for access",
    "An SSH daemon adds credentials, a listening service and updates to "
    "manage inside the container.")

_ALL = ("", "0.0.0.0", "::")


def check(c: ContainerFacts, h: HostFacts) -> Iterator[Finding]:
    settings = c.inspect.get("NetworkSettings") or {}
    hc = c.inspect.get("HostConfig") or {}
    inside = c.inside or {}

    reach = inside.get("engine_tcp") or []
    if reach:
        yield finding(
            R_TCP, c.subject,
            title="Engine API reachable at " + ", ".join(
                f"{r['address']}:{r['port']}" for r in reach),
            declared={"NetworkMode": hc.get("NetworkMode")},
            effective=reach,
            evidence={"dockerd TCP listeners": [
                f"{a}:{p}" for a, p in h.engine_tcp],
                "connect() from the container's network namespace":
                "accepted"})

    wide, low = [], []
    for cport, binds in (settings.get("Ports") or {}).items():
        for b in binds or []:
            entry = f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}" \
                    f"->{cport}"
            if (b.get("HostIp") or "") in _ALL:
                wide.append(entry)
            if b.get("HostPort", "").isdigit() and int(b["HostPort"]) < 1024:
                low.append(entry)
    if wide:
        yield finding(R_ALL_IFACES, c.subject,
                      title="published on all interfaces: "
                      + ", ".join(sorted(set(wide))[:3]),
                      declared=hc.get("PortBindings"), effective=wide,
                      evidence={"NetworkSettings.Ports": wide})
    if low:
        yield finding(R_PRIV_PORT, c.subject,
                      title="privileged host port: " + ", ".join(low[:3]),
                      declared=hc.get("PortBindings"), effective=low,
                      evidence={"NetworkSettings.Ports": low})

    if "bridge" in (settings.get("Networks") or {}):
        net = settings["Networks"]["bridge"]
        yield finding(R_BRIDGE, c.subject,
                      declared={"NetworkMode": hc.get("NetworkMode")},
                      effective={"network": "bridge",
                                 "address": net.get("IPAddress")},
                      evidence={"NetworkSettings.Networks":
                                list(settings["Networks"])})

    listening = inside.get("listening") or []
    if listening and hc.get("NetworkMode") != "host" and \
            c.ns.get("net") != h.ns.get("net"):
        socks = sorted({f"{s['address']}:{s['port']}" for s in listening})
        yield finding(R_LISTEN, c.subject,
                      title="listens on " + ", ".join(socks[:4]),
                      declared={"ExposedPorts": list(
                          ((c.inspect.get("Config") or {}).get(
                              "ExposedPorts") or {}))},
                      effective=socks,
                      evidence={"/proc/self/net/tcp{,6} in the container's"
                                " network namespace": socks})

    unsafe = {k: v for k, v in (hc.get("Sysctls") or {}).items()
              if k not in SAFE_SYSCTLS}
    if unsafe:
        seen = inside.get("sysctls") or {}
        yield finding(R_SYSCTL, c.subject,
                      title="sysctls " + ", ".join(sorted(unsafe)),
                      declared=unsafe,
                      effective={k: seen[k] for k in unsafe if k in seen}
                      or None,
                      evidence={"/proc/sys in the container's network "
                                "namespace": {k: seen[k] for k in unsafe
                                              if k in seen}})

    sshd = [p for p in c.procs if p.comm in ("sshd", "dropbear")]
    if sshd:
        yield finding(R_SSHD, c.subject,
                      title=f"{sshd[0].comm} runs inside",
                      declared=None,
                      effective=[{"pid": p.pid, "comm": p.comm}
                                 for p in sshd],
                      evidence={f"/proc/{p.pid}/status": f"Name: {p.comm}"
                                for p in sshd})
