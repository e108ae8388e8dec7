"""Facts about the host and the daemon that every check compares with.

"The host's namespaces" are those of the dockerd process: host
networking means dockerd's network namespace, and reading them from pid 1
fails in some sandboxes.  The Engine API sockets are found on the host by
their usual paths and by what dockerd was told on its command line; their
device and inode numbers are what container mounts are matched against.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from dockertrace.audit import procfs
from dockertrace.audit.model import Mount
from dockertrace.audit.procfs import HostView

log = logging.getLogger(__name__)

#: Where Engine API and containerd sockets usually are.
SOCKET_PATHS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/docker/containerd/containerd.sock",
    "/run/docker/containerd/containerd.sock",
    "/run/containerd/containerd.sock.ttrpc",
)
DAEMON_JSON = "/etc/docker/daemon.json"
PID_FILES = ("/var/run/docker.pid", "/run/docker.pid")


@dataclass
class ApiSocket:
    """A Docker or containerd API socket on the host."""

    path: str
    kind: str
    dev: int
    ino: int
    mode: int
    uid: int
    gid: int
    #: ``major:minor`` of its filesystem and its path inside that
    #: filesystem, as container mountinfo files would show them.
    fs_dev: str = ""
    fs_path: str = ""


@dataclass
class HostFacts:
    view: HostView
    #: Pid whose namespaces count as the host's (dockerd), or None.
    ref_pid: Optional[int] = None
    ns: Dict[str, int] = field(default_factory=dict)
    sockets: List[ApiSocket] = field(default_factory=list)
    #: (address, port) dockerd listens on for the Engine API over TCP.
    engine_tcp: List[Tuple[str, int]] = field(default_factory=list)
    daemon_args: List[str] = field(default_factory=list)
    daemon_json: Dict[str, Any] = field(default_factory=dict)
    daemon_json_path: str = DAEMON_JSON
    info: Dict[str, Any] = field(default_factory=dict)
    version: Dict[str, Any] = field(default_factory=dict)
    #: ``docker network inspect bridge``; empty if there is none.
    bridge: Dict[str, Any] = field(default_factory=dict)
    lsms: List[str] = field(default_factory=list)
    cap_last_cap: int = len(procfs.CAP_NAMES) - 1
    #: Addresses of the host's interfaces, for wildcard TCP listeners.
    host_addrs: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def userns_remap(self) -> bool:
        return any("name=userns" in o
                   for o in self.info.get("SecurityOptions") or [])

    def full_caps(self) -> int:
        return (1 << (self.cap_last_cap + 1)) - 1


def find_dockerd(view: HostView) -> Optional[int]:
    """Pid of dockerd: from its pid file, else by scanning /proc."""
    for pidfile in PID_FILES:
        try:
            pid = int(view.read(pidfile).strip())
        except (OSError, ValueError):
            continue
        if _comm(view, pid) == "dockerd":
            return pid
    try:
        entries = os.listdir(view.proc())
    except OSError:
        return None
    for name in entries:
        if name.isdigit() and _comm(view, int(name)) == "dockerd":
            return int(name)
    return None


def _comm(view: HostView, pid: int) -> str:
    try:
        return view.read_proc(pid, "comm").strip()
    except (OSError, procfs.Gone):
        return ""


def gather(view: HostView) -> HostFacts:
    """Everything about the host that does not need the Engine API."""
    h = HostFacts(view=view, lsms=procfs.active_lsms(view),
                  cap_last_cap=view.cap_last_cap())
    h.ref_pid = find_dockerd(view)
    if h.ref_pid is None:
        h.notes.append("dockerd not found in /proc; the auditor's own "
                       "namespaces stand for the host's")
    ref = h.ref_pid if h.ref_pid is not None else "self"
    try:
        h.ns = procfs.ns_inodes(view, ref)  # type: ignore[arg-type]
    except procfs.Gone:
        h.ns = procfs.ns_inodes(view, "self")  # type: ignore[arg-type]
    if h.ref_pid is not None:
        try:
            h.daemon_args = view.read_proc(h.ref_pid, "cmdline").split(
                "\0")[:-1]
        except (OSError, procfs.Gone):
            pass
    h.daemon_json_path = _flag(h.daemon_args, "--config-file") or DAEMON_JSON
    try:
        h.daemon_json = json.loads(view.read(h.daemon_json_path))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as err:
        h.notes.append(f"cannot read {h.daemon_json_path}: {err}")
    h.sockets = _api_sockets(view, h)
    if h.ref_pid is not None:
        h.engine_tcp = _tcp_listeners(view, h.ref_pid)
    return h


def _flag(args: List[str], name: str) -> Optional[str]:
    values = flag_values(args, name)
    return values[-1] if values else None


def flag_values(args: List[str], *names: str) -> List[str]:
    """Values of a repeated command line flag (``-H x``, ``--host=x``)."""
    out = []
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                out.append(args[i + 1])
            elif arg.startswith(name + "="):
                out.append(arg[len(name) + 1:])
    return out


def _api_sockets(view: HostView, h: HostFacts) -> List[ApiSocket]:
    paths = list(SOCKET_PATHS)
    hosts = flag_values(h.daemon_args, "-H", "--host") + list(
        h.daemon_json.get("hosts") or [])
    for url in hosts:
        if url.startswith("unix://"):
            paths.insert(0, url[len("unix://"):])
    containerd = _flag(h.daemon_args, "--containerd") or h.daemon_json.get(
        "containerd")
    if containerd:
        paths.append(containerd)
    host_mounts = _host_mounts(view, h.ref_pid)
    seen = set()
    out = []
    for path in paths:
        full = view.path(path)
        try:
            st = os.stat(full)
        except OSError:
            continue
        if not stat.S_ISSOCK(st.st_mode) or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        kind = "containerd" if "containerd" in path else "docker"
        sock = ApiSocket(path, kind, st.st_dev, st.st_ino,
                         stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        real = os.path.realpath(full)
        if view.live:
            sock.fs_dev, sock.fs_path = _fs_location(real, host_mounts)
        else:
            sock.fs_dev, sock.fs_path = _fs_location(
                "/" + os.path.relpath(real, view.root), host_mounts)
        out.append(sock)
    return out


def _host_mounts(view: HostView, ref_pid: Optional[int]) -> List[Mount]:
    try:
        return procfs.parse_mounts(view.read("/proc/self/mountinfo"))
    except OSError:
        return []


def _fs_location(path: str, mounts: List[Mount]) -> Tuple[str, str]:
    """(``major:minor``, path inside the filesystem) of a host path: the
    deepest mount containing it decides."""
    best = None
    for m in mounts:
        mp = m.mount_point.rstrip("/")
        if path == m.mount_point or path.startswith(mp + "/"):
            if best is None or len(mp) >= len(best.mount_point.rstrip("/")):
                best = m
    if best is None:
        return "", ""
    rel = path[len(best.mount_point.rstrip("/")):]
    return best.dev, (best.root.rstrip("/") + rel) or "/"


def _tcp_listeners(view: HostView, pid: int) -> List[Tuple[str, int]]:
    """TCP sockets dockerd listens on: the listening sockets of its
    network namespace whose inodes are among its fds."""
    # inode -> (address, port); "*" for a wildcard address.
    listening: Dict[str, Tuple[str, int]] = {}
    if view.live and _same_netns(view, pid):
        from dockertrace.audit.nsexec import listening_sockets
        for sock in listening_sockets():
            listening[str(sock["inode"])] = (_wild(sock["address"]),
                                             sock["port"])
    else:
        for name in ("tcp", "tcp6"):
            try:
                lines = view.read_proc(pid, f"net/{name}").splitlines()[1:]
            except (OSError, procfs.Gone):
                continue
            for line in lines:
                f = line.split()
                if len(f) > 9 and f[3] == "0A":
                    addr, _, port = f[1].partition(":")
                    listening[f[9]] = (_wild(_hexaddr(addr)), int(port, 16))
    # Reading dockerd's fds costs a readlink each; most hosts have no TCP
    # listener that could be dockerd's, so look only when there is one.
    if not listening:
        return []
    try:
        fds = os.listdir(view.proc(pid, "fd"))
    except OSError:
        return []
    out = []
    for fd in fds:
        try:
            link = os.readlink(view.proc(pid, "fd", fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in listening:
            out.append(listening.pop(link[8:-1]))
    return sorted(out)


def _same_netns(view: HostView, pid: int) -> bool:
    """True when the auditor shares dockerd's network namespace, so that
    its own sock_diag dump shows dockerd's sockets."""
    try:
        return os.readlink(view.proc("self", "ns", "net")) == os.readlink(
            view.proc(pid, "ns", "net"))
    except OSError:
        return False


def _wild(addr: str) -> str:
    return "*" if addr in ("0.0.0.0", "::") else addr


def _hexaddr(text: str) -> str:
    """An address as /proc/net/tcp{,6} prints it, in text."""
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    # tcp6 prints four host-order 32-bit words.
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def host_addresses() -> List[str]:
    """IPv4 addresses of the auditor's network namespace (the host's)."""
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        return [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=2)]
