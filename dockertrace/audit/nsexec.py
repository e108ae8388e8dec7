"""Look at a container from inside its namespaces, in a forked child.

The auditing process never calls ``setns(2)`` itself: a child is forked,
joins the container's network namespace (and then its mount namespace),
gathers everything the audit needs there in one go, writes it as JSON to
a pipe and exits.  The parent only reads the pipe, so a container cannot
make the auditor resolve a path in its filesystem, and the auditor's own
namespaces never change.

What the child gathers:

- interfaces, addresses and default gateways, through netlink
  (pyroute2), in the container's network namespace;
- listening TCP sockets (``/proc/self/net/tcp{,6}`` of the host's proc,
  which shows the namespace of the reading task);
- the values of ``net.*`` sysctls, which are per network namespace;
- whether each Docker Engine API TCP endpoint accepts a connection from
  there;
- after joining the mount namespace: whether the host's API sockets are
  reachable at the paths the parent worked out from the mountinfo,
  confirmed by device and inode number.

Children run in parallel: :func:`start` forks and returns at once,
:func:`gather` reads every pipe with one ``select`` loop and kills a
child that outlives its deadline.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import stat
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

log = logging.getLogger(__name__)

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000

#: Seconds a child may take before it is killed.
CHILD_TIMEOUT_S = 3.0
#: Seconds the child waits for TCP connects to the Engine API.
CONNECT_TIMEOUT_S = 0.3

# /proc/net/tcp state of a listening socket.
_TCP_LISTEN = "0A"


@dataclass
class Request:
    """What to look at for one container."""

    pid: int
    #: Join the network namespace (False for host networking, where the
    #: child's own namespace is the container's).
    join_net: bool = True
    #: Join the mount namespace to confirm socket candidates.
    join_mnt: bool = True
    #: (path inside the container, st_dev, st_ino, host path) to lstat.
    socket_candidates: List[Tuple[str, int, int, str]] = field(
        default_factory=list)
    #: (address, port) of Engine API TCP listeners; an address of
    #: ``"*"`` means the default gateways plus ``host_addrs``.
    tcp_targets: List[Tuple[str, int]] = field(default_factory=list)
    host_addrs: List[str] = field(default_factory=list)
    #: sysctl names (``net.ipv4.ip_forward``) whose value to read.
    sysctls: List[str] = field(default_factory=list)


@dataclass
class Child:
    request: Request
    pid: int
    fd: int
    deadline: float
    data: bytearray = field(default_factory=bytearray)


def _pyroute2():
    # Imported by the parent before the first fork: importing pyroute2
    # takes about 0.25 s, which each child would pay again.
    from pyroute2 import IPRoute
    return IPRoute


def start(request: Request, ns_fds: Dict[str, int]) -> Child:
    """Fork a child that looks at the container; returns at once.

    ``ns_fds`` holds open ``/proc/<pid>/ns/{net,mnt}`` descriptors that
    the caller closes after the fork (they pin the namespaces, so a pid
    reused meanwhile cannot redirect the child).
    """
    iproute = _pyroute2() if request.join_net or request.tcp_targets \
        else None
    rfd, wfd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(rfd)
        code = 0
        try:
            out = _look(request, ns_fds, iproute)
        except BaseException as err:  # noqa: BLE001 - report, then exit
            out = {"error": f"{type(err).__name__}: {err}"}
            code = 1
        try:
            payload = json.dumps(out).encode()
            view = memoryview(payload)
            while view:
                n = os.write(wfd, view)
                view = view[n:]
        finally:
            os._exit(code)
    os.close(wfd)
    return Child(request, child, rfd, time.monotonic() + CHILD_TIMEOUT_S)


def gather(children: Sequence[Child]) -> List[Dict[str, Any]]:
    """Wait for every child; their answers in the order given.  A child
    that fails or times out answers ``{"error": ...}``."""
    pending = {c.fd: c for c in children}
    while pending:
        now = time.monotonic()
        wait = max(0.0, min(c.deadline for c in pending.values()) - now)
        ready, _, _ = select.select(list(pending), [], [], wait)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if chunk:
                pending[fd].data += chunk
            else:
                os.close(fd)
                del pending[fd]
        now = time.monotonic()
        for fd, c in list(pending.items()):
            if now >= c.deadline:
                log.debug("child for pid %d timed out", c.request.pid)
                os.kill(c.pid, signal.SIGKILL)
                os.close(fd)
                del pending[fd]
                c.data = bytearray(b'{"error": "timed out"}')
    answers = []
    for c in children:
        os.waitpid(c.pid, 0)
        try:
            answers.append(json.loads(bytes(c.data) or b"{}"))
        except ValueError:
            answers.append({"error": "unreadable answer"})
    return answers


# The rest runs in the child.

def _look(req: Request, ns_fds: Dict[str, int],
          iproute: Any) -> Dict[str, Any]:
    from dockertrace.engine import raw

    out: Dict[str, Any] = {}
    if req.join_net:
        raw.setns(ns_fds["net"], CLONE_NEWNET)
    if iproute is not None:
        out.update(_interfaces(iproute))
    out["listening"] = _listening()
    out["sysctls"] = _sysctls(req.sysctls)
    out["engine_tcp"] = _probe_tcp(req, out.get("gateways", []))

    # The mount namespace last: after it, /proc is the container's.
    found = []
    if req.join_mnt and req.socket_candidates:
        raw.setns(ns_fds["mnt"], CLONE_NEWNS)
        for path, dev, ino, host_path in req.socket_candidates:
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if (stat.S_ISSOCK(st.st_mode) and st.st_dev == dev
                    and st.st_ino == ino):
                found.append({"path": path, "host_path": host_path,
                              "inode": ino, "mode": oct(st.st_mode & 0o7777)})
    out["sockets"] = found
    return out


def _interfaces(iproute: Any) -> Dict[str, Any]:
    with iproute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME")
                 for link in ipr.get_links()}
        addrs = [{"ifname": names.get(a["index"], ""),
                  "address": a.get_attr("IFA_ADDRESS"),
                  "prefixlen": a["prefixlen"]}
                 for a in ipr.get_addr()]
        gateways = []
        for route in ipr.get_default_routes():
            gw = route.get_attr("RTA_GATEWAY")
            if gw:
                gateways.append(gw)
    return {"interfaces": sorted(n for n in names.values() if n),
            "addresses": addrs, "gateways": gateways}


def _listening() -> List[Dict[str, Any]]:
    out = []
    for name, family in (("tcp", 4), ("tcp6", 6)):
        try:
            with open(f"/proc/self/net/{name}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != _TCP_LISTEN:
                continue
            addr, _, port = fields[1].partition(":")
            out.append({"family": family, "address": _hexaddr(addr),
                        "port": int(port, 16)})
    return out


def _hexaddr(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    # tcp6 prints four host-order 32-bit words.
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def _sysctls(names: Sequence[str]) -> Dict[str, str]:
    out = {}
    for name in names:
        path = "/proc/sys/" + name.replace(".", "/")
        try:
            with open(path) as f:
                out[name] = f.read().strip()
        except OSError:
            continue
    return out


def _probe_tcp(req: Request, gateways: List[str]) -> List[Dict[str, Any]]:
    """Try every target at once, non-blocking; the ones that accept."""
    targets = []
    for addr, port in req.tcp_targets:
        if addr == "*":
            targets.extend((a, port) for a in gateways + req.host_addrs)
        else:
            targets.append((addr, port))
    pending = {}
    for addr, port in dict.fromkeys(targets):
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((addr, port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        pending[s] = (addr, port)
    reachable = []
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        _, ready, _ = select.select([], list(pending), [], left)
        for s in ready:
            addr, port = pending.pop(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                reachable.append({"address": addr, "port": port})
            s.close()
    for s in pending:
        s.close()
    return reachable
