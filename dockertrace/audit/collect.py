"""Gather both sides of every container: the Engine API (declared) and
the kernel (effective).

Order matters for speed and for safety:

1. Engine API calls run in a thread pool (one inspect per container, plus
   info, version and the bridge network), since each is a round trip to
   the daemon.  The pool is shut down before anything is forked.
2. The kernel side of each container is read directly from /proc and
   cgroupfs in this thread, and a child is forked per container to look
   from inside its namespaces; the children run in parallel.
3. Each container's init process is pinned with a pidfd before its facts
   are read and checked afterwards: if it exited meanwhile (or its pid was
   reused) the container is reported as gone and its facts dropped.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import select
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from dockertrace import docker_api
from dockertrace.audit import host as hostmod
from dockertrace.audit import nsexec, procfs
from dockertrace.audit.model import ContainerFacts, Subject
from dockertrace.audit.procfs import Gone, HostView
from dockertrace.errors import NoSuchContainer

log = logging.getLogger(__name__)

#: Threads for Engine API calls; dockerd answers inspects concurrently.
API_THREADS = 16
#: Fewest containers worth a forked namespace child of their own.
CONTAINERS_PER_CHILD = 8

#: net.* sysctls read inside each container, for the sysctl check.
NET_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.route_localnet",
               "net.ipv4.ip_unprivileged_port_start")


def subject_of(data: Dict[str, Any]) -> Subject:
    return Subject(id=data.get("Id", ""),
                   name=(data.get("Name") or "").lstrip("/"),
                   image=(data.get("Config") or {}).get("Image") or "")


class Collected:
    """Facts of one audit: the host, the audited containers and the ones
    that were gone."""

    def __init__(self, host: hostmod.HostFacts) -> None:
        self.host = host
        self.facts: List[ContainerFacts] = []
        #: (subject, reason) of containers that were gone.
        self.gone: List[Tuple[Subject, str]] = []


def collect(refs: Sequence[str] = (), *, client: Any = None,
            view: Optional[HostView] = None,
            inside: bool = True) -> Collected:
    """Facts for the containers named in ``refs`` (all running ones when
    empty).  ``inside=False`` skips the forked children."""
    view = view or HostView()
    own = client is None
    if own:
        client = docker_api.client()
    try:
        api = client.api
        host = hostmod.gather(view)
        url = docker_api.docker_url()
        with docker_api.translated(url):
            inspected = _engine_api(api, list(refs), host)
    finally:
        if own:
            client.close()

    out = Collected(host)
    live = []
    for ref, data in inspected:
        if data is None:
            out.gone.append((Subject(ref, ref, ""), "removed"))
            continue
        state = data.get("State") or {}
        subject = subject_of(data)
        if not state.get("Running") or not state.get("Pid"):
            out.gone.append((subject, f"not running ({state.get('Status')})"))
            continue
        live.append(data)
    _kernel_side(live, out, inside)
    return out


_POOL: Optional[concurrent.futures.ThreadPoolExecutor] = None
_POOL_LOCK = threading.Lock()


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    # Kept for the life of the process: starting 16 threads per audit
    # cost tens of milliseconds on a loaded machine.  Its threads are
    # idle (holding no lock) whenever a namespace child is forked, since
    # every API call has returned by then.
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = concurrent.futures.ThreadPoolExecutor(
                API_THREADS, thread_name_prefix="dockertrace-audit")
        return _POOL


def _engine_api(api: Any, refs: List[str], host: hostmod.HostFacts):
    from docker.errors import NotFound

    named = bool(refs)
    if not named:
        refs = [c["Id"] for c in api.containers(
            filters={"status": "running"})]

    def inspect(ref: str):
        try:
            return ref, api.inspect_container(ref)
        except NotFound:
            if named:
                raise NoSuchContainer(ref) from None
            return ref, None

    def bridge():
        try:
            return api.inspect_network("bridge")
        except NotFound:
            return {}

    pool = _pool()
    info = pool.submit(api.info)
    version = pool.submit(api.version)
    net = pool.submit(bridge)
    results = list(pool.map(inspect, refs))
    host.info = info.result()
    host.version = version.result()
    host.bridge = net.result()
    return results


def _kernel_side(live: List[Dict[str, Any]], out: Collected,
                 inside: bool) -> None:
    host = out.host
    view = host.view
    pending: List[Tuple[ContainerFacts, Optional[int]]] = []
    requests: List[nsexec.Request] = []
    fds: List[Dict[str, int]] = []
    try:
        if inside and host.engine_tcp and view.live:
            host.host_addrs = hostmod.host_addresses()
        for data in live:
            subject = subject_of(data)
            pid = data["State"]["Pid"]
            pidfd = None
            try:
                pidfd = _pin(pid) if view.live else None
                facts = read_container(view, data, pid, host)
                if inside and view.live:
                    req, ns = _request(host, facts)
                    requests.append(req)
                    fds.append(ns)
            except Gone as err:
                _close(pidfd)
                out.gone.append((subject, str(err)))
                continue
            pending.append((facts, pidfd))

        answers: List[Dict[str, Any]] = []
        if requests:
            children = []
            for chunk in _chunks(len(requests)):
                children.append(nsexec.start(
                    [requests[i] for i in chunk], [fds[i] for i in chunk]))
            # The children hold their own copies of the descriptors.
            for ns in fds:
                for fd in ns.values():
                    os.close(fd)
            fds = []
            answers = nsexec.gather(children)
    except BaseException:
        for _, pidfd in pending:
            _close(pidfd)
        raise
    finally:
        for ns in fds:
            for fd in ns.values():
                os.close(fd)

    for i, (facts, pidfd) in enumerate(pending):
        if answers:
            answer = answers[i]
            if "error" in answer:
                facts.notes.append(
                    f"inside the namespaces: {answer['error']}")
            else:
                facts.inside = answer
        exited = _exited(pidfd)
        _close(pidfd)
        if exited:
            out.gone.append((facts.subject, "exited during the audit"))
        else:
            out.facts.append(facts)


def _chunks(n: int) -> List[range]:
    """Split n containers over children: one per CPU at most, and at
    least CONTAINERS_PER_CHILD containers each, since a fork costs more
    than looking at a few containers."""
    workers = max(1, min(os.cpu_count() or 1,
                         -(-n // CONTAINERS_PER_CHILD)))
    size = -(-n // workers)
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def _pin(pid: int) -> Optional[int]:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        raise Gone(f"process {pid} is gone") from None
    except (AttributeError, OSError):
        # No pidfd (kernel before 5.3): the /proc reads still fail with
        # Gone when the process is gone, but a reused pid goes unseen.
        return None


def _exited(pidfd: Optional[int]) -> bool:
    if pidfd is None:
        return False
    # A pidfd polls readable once its process has exited.
    ready, _, _ = select.select([pidfd], [], [], 0)
    return bool(ready)


def _close(fd: Optional[int]) -> None:
    if fd is not None:
        os.close(fd)


def read_container(view: HostView, data: Dict[str, Any], pid: int,
                   host: Optional[hostmod.HostFacts] = None
                   ) -> ContainerFacts:
    """The effective side of a container, from /proc and cgroupfs.

    Raises :class:`Gone` if its init process is not (or no longer) the
    container's.
    """
    facts = ContainerFacts(subject=subject_of(data), inspect=data, pid=pid)
    # A pid the container no longer owns (it exited and the number was
    # reused) would make every fact below someone else's.
    if facts.subject.id and facts.subject.id not in view.read_proc(
            pid, "cgroup"):
        raise Gone(f"pid {pid} no longer belongs to the container")

    for p in procfs.container_pids(view, pid):
        try:
            facts.procs.append(procfs.parse_status(
                p, view.read_proc(p, "status")))
        except Gone:
            if p == pid:
                raise
    if not facts.procs:
        raise Gone(f"process {pid} is gone")
    facts.ns = procfs.ns_inodes(view, pid)
    facts.mounts = procfs.parse_mounts(view.read_proc(pid, "mountinfo"))
    facts.uid_map = view.read_proc(pid, "uid_map")
    # Without a labelling LSM the kernel has no label to give (EINVAL).
    if host is None or host.lsms:
        facts.lsm_label = procfs.lsm_label(view, pid)
    try:
        facts.cgroup = procfs.cgroup_limits(view, pid)
    except Exception as err:  # noqa: BLE001 - one fact, keep the rest
        facts.notes.append(f"cgroup limits unreadable: {err}")
    if view.live:
        from dockertrace.engine import raw
        try:
            facts.capget = raw.capget(pid)
        except OSError as err:
            facts.notes.append(f"capget({pid}): {err}")
    return facts


def socket_candidates(host: hostmod.HostFacts,
                      facts: ContainerFacts) -> List[Tuple[str, int, int,
                                                           str]]:
    """Paths inside the container where a host API socket would be if a
    mount exposes it: a mount of the socket's filesystem whose root
    contains the socket's path there.  The child confirms each by inode.
    """
    out = []
    for sock in host.sockets:
        if not sock.fs_dev:
            continue
        for m in facts.mounts:
            if m.dev != sock.fs_dev:
                continue
            root = m.root.rstrip("/")
            if sock.fs_path == m.root:
                path = m.mount_point
            elif sock.fs_path.startswith(root + "/"):
                path = m.mount_point.rstrip("/") + sock.fs_path[len(root):]
            else:
                continue
            out.append((path, sock.dev, sock.ino, sock.path))
    return out


def _request(host: hostmod.HostFacts, facts: ContainerFacts
             ) -> Tuple[nsexec.Request, Dict[str, int]]:
    """What the namespace child should do for a container, and open
    descriptors of its namespaces (opened now, while its pid is pinned
    and known to be the container's)."""
    view = host.view
    req = nsexec.Request(
        pid=facts.pid, join_net=facts.ns.get("net") != host.ns.get("net"),
        socket_candidates=socket_candidates(host, facts),
        tcp_targets=list(host.engine_tcp), host_addrs=host.host_addrs,
        sysctls=list(dict.fromkeys(NET_SYSCTLS + tuple(
            k for k in (facts.inspect.get("HostConfig") or {}).get(
                "Sysctls") or {} if k.startswith("net.")))))
    req.join_mnt = bool(req.socket_candidates)
    fds: Dict[str, int] = {}
    try:
        for ns in ("net", "mnt"):
            fds[ns] = os.open(view.proc(facts.pid, "ns", ns),
                              os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        for fd in fds.values():
            os.close(fd)
        raise Gone(f"process {facts.pid} is gone (ns)") from None
    return req, fds


def load_recorded(directory: str) -> Collected:
    """Facts of a container recorded as a fixture tree (see
    tests/unit/fixtures/audit/record.py): ``inspect.json``,
    ``host.json`` and ``root/`` standing for ``/``.  The same readers
    as for a live host run over it; only the forked child and capget,
    which need a live process, are left out."""
    import json

    with open(os.path.join(directory, "inspect.json")) as f:
        data = json.load(f)
    with open(os.path.join(directory, "host.json")) as f:
        recorded = json.load(f)
    view = HostView(os.path.join(directory, "root"))
    host = hostmod.gather(view)
    host.info = recorded.get("info") or {}
    host.version = recorded.get("version") or {}
    host.bridge = recorded.get("bridge") or {}
    out = Collected(host)
    try:
        out.facts.append(read_container(view, data, data["State"]["Pid"],
                                        host))
    except Gone as err:
        out.gone.append((subject_of(data), str(err)))
    return out
