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
- listening TCP sockets (sock_diag netlink, from inside);
- the values of ``net.*`` sysctls, which are per network namespace;
- whether each Docker Engine API TCP endpoint accepts a connection from
  there;
- after joining the mount namespace: whether the host's API sockets are
  reachable at the paths the parent worked out from the mountinfo,
  confirmed by device and inode number.

Children run in parallel: :func:`start` forks and returns at once,
:func:`gather` reads every pipe with one ``select`` loop and kills a
child that outlives its deadline.  Each child visits several containers
in turn (see :func:`start`); the caller spreads them over a few children
so that they run on every CPU.
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
from typing import Any, Dict, List, Sequence, Tuple

log = logging.getLogger(__name__)

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000

#: Seconds a child may take before it is killed, plus some per container.
CHILD_TIMEOUT_S = 2.0
PER_CONTAINER_S = 0.2
#: Seconds the child waits for TCP connects to the Engine API.
CONNECT_TIMEOUT_S = 0.3

# TCP_LISTEN in include/net/tcp_states.h.
_TCP_LISTEN_STATE = 10


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
    requests: List[Request]
    pid: int
    fd: int
    deadline: float
    data: bytearray = field(default_factory=bytearray)


def _pyroute2():
    # Imported by the parent before the first fork: importing pyroute2
    # takes about 0.25 s, which each child would pay again.
    from pyroute2 import IPRoute
    return IPRoute


def start(requests: Sequence[Request],
          ns_fds: Sequence[Dict[str, int]]) -> Child:
    """Fork one child that looks at each container in turn; returns at
    once.

    ``ns_fds[i]`` holds open ``/proc/<pid>/ns/{net,mnt}`` descriptors of
    ``requests[i]``, which the caller closes after the fork (they pin the
    namespaces, so a pid reused meanwhile cannot redirect the child).
    One child visits many containers because a fork of a large Python
    process costs more than the work done in each namespace; it returns
    to its own namespaces between containers.
    """
    iproute = _pyroute2()
    rfd, wfd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(rfd)
        code = 0
        try:
            _visit_all(list(requests), list(ns_fds), iproute, wfd)
        except BaseException:  # noqa: BLE001 - the parent sees a gap
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    budget = CHILD_TIMEOUT_S + PER_CONTAINER_S * len(requests)
    return Child(list(requests), child, rfd, time.monotonic() + budget)


def gather(children: Sequence[Child]) -> List[Dict[str, Any]]:
    """Wait for every child; one answer per request, in the order of the
    children and their requests.  A container the child could not look
    at (it failed or timed out first) answers ``{"error": ...}``."""
    pending = {c.fd: c for c in children}
    timed_out = set()
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
                log.debug("namespace child %d timed out", c.pid)
                os.kill(c.pid, signal.SIGKILL)
                os.close(fd)
                del pending[fd]
                timed_out.add(c.pid)
    answers: List[Dict[str, Any]] = []
    for c in children:
        os.waitpid(c.pid, 0)
        got: Dict[int, Dict[str, Any]] = {}
        # One JSON line per container, so what was done before a
        # failure or a timeout is kept.
        for line in bytes(c.data).splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            got[item.pop("index", -1)] = item
        why = "timed out" if c.pid in timed_out else "child failed"
        answers.extend(got.get(i, {"error": why})
                       for i in range(len(c.requests)))
    return answers


# The rest runs in the child.

def _write(fd: int, item: Dict[str, Any]) -> None:
    view = memoryview(json.dumps(item).encode() + b"\n")
    while view:
        view = view[os.write(fd, view):]


def _visit_all(requests: List[Request], ns_fds: List[Dict[str, int]],
               iproute: Any, out_fd: int) -> None:
    # Our own namespaces, to come back to between containers: /proc/self
    # must be read through the host's proc, in the host's mount
    # namespace, for it to name this process.
    home = {"net": os.open("/proc/self/ns/net", os.O_RDONLY),
            "mnt": os.open("/proc/self/ns/mnt", os.O_RDONLY)}
    for i, (req, fds) in enumerate(zip(requests, ns_fds)):
        try:
            item = _look(req, fds, home, iproute)
        except Exception as err:  # noqa: BLE001 - one container's error
            item = {"error": f"{type(err).__name__}: {err}"}
            _go_home(home)
        item["index"] = i
        _write(out_fd, item)


def _go_home(home: Dict[str, int]) -> None:
    from dockertrace.engine import raw
    raw.setns(home["mnt"], CLONE_NEWNS)
    raw.setns(home["net"], CLONE_NEWNET)


def _look(req: Request, ns_fds: Dict[str, int], home: Dict[str, int],
          iproute: Any) -> Dict[str, Any]:
    from dockertrace.engine import raw

    out: Dict[str, Any] = {}
    raw.setns(ns_fds["net"] if req.join_net else home["net"], CLONE_NEWNET)
    if req.join_net or req.tcp_targets:
        out.update(_interfaces(iproute))
    out["listening"] = listening_sockets()
    out["sysctls"] = _sysctls(req.sysctls)
    out["engine_tcp"] = _probe_tcp(req, out.get("gateways", []))

    # The mount namespace last: while in it, /proc is the container's.
    found = []
    if req.join_mnt and req.socket_candidates:
        raw.setns(ns_fds["mnt"], CLONE_NEWNS)
        try:
            for path, dev, ino, host_path in req.socket_candidates:
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if (stat.S_ISSOCK(st.st_mode) and st.st_dev == dev
                        and st.st_ino == ino):
                    found.append({"path": path, "host_path": host_path,
                                  "inode": ino,
                                  "mode": oct(st.st_mode & 0o7777)})
        finally:
            raw.setns(home["mnt"], CLONE_NEWNS)
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


def listening_sockets() -> List[Dict[str, Any]]:
    """Listening TCP sockets of the caller's network namespace, through
    sock_diag netlink.  A dump of listening sockets only walks the
    listening hash; reading /proc/net/tcp walks every socket of the host
    and took 10 to 40 ms here."""
    from pyroute2 import DiagSocket

    out = []
    with DiagSocket() as ds:
        ds.bind()
        for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
            for msg in ds.get_sock_stats(family=family,
                                         states=1 << _TCP_LISTEN_STATE):
                out.append({"family": version,
                            "address": msg["idiag_src"],
                            "port": msg["idiag_sport"],
                            "inode": msg["idiag_inode"]})
    return out


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
