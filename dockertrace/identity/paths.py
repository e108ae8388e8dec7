"""Container ids in cgroup paths.

Every container runtime puts a container's processes in a cgroup whose
path carries the container id; only the shape of the path differs
(``/docker/<id>``, ``/system.slice/docker-<id>.scope``,
``.../cri-containerd-<id>.scope``, ``libpod-<id>.scope``, ...).  The
shape also hints at which runtime made it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

#: Runtime guesses :func:`parse_cgroup_path` can return.
RUNTIMES = ("docker", "containerd", "cri", "podman", "runc")


@dataclass(frozen=True)
class ContainerRef:
    """A container as its cgroup path names it."""

    #: The 64-hex-digit id of the innermost container in the path.
    container_id: str
    #: Which runtime made the cgroup, guessed from its naming: one of
    #: :data:`RUNTIMES`.  A guess, since runtimes can be told to use
    #: any path.
    runtime: str
    #: The cgroup path the id came from.
    cgroup_path: str
    #: Ids of containers enclosing this one, outermost first (a daemon
    #: running inside a container).  The host's daemon knows only the
    #: outermost one.
    outer_ids: Tuple[str, ...] = ()


# A container id is 64 lowercase hex digits standing alone in a path
# component or set off by punctuation: "docker-<id>.scope",
# "libpod-<id>.scope", "...slice:cri-containerd:<id>".
_ID_IN_COMPONENT = re.compile(
    r"(?:^|[^0-9a-zA-Z])([0-9a-f]{64})(?=$|[^0-9a-zA-Z])")


def parse_cgroup_path(path: str) -> Optional[ContainerRef]:
    """Find the container id in a cgroup path (v1 or v2), or None.

    Knows the paths of Docker with the cgroupfs driver (``/docker/<id>``)
    and the systemd driver (``/system.slice/docker-<id>.scope``), rootless
    Docker under ``/user.slice``, containerd (``/default/<id>``), CRI
    runtimes under ``kubepods``, podman (``libpod-<id>.scope``), and any
    other path with a 64-hex-digit component (plain runc).  Leaves below
    the container's own cgroup, such as the ``init`` cgroup a nested
    systemd or dockerd makes, belong to the container above them.
    """
    parts = [p for p in path.split("/") if p]
    found: List[Tuple[int, str]] = []
    for i, part in enumerate(parts):
        # A slice groups units and is never a container itself (podman
        # pods name theirs "machine-libpod_pod_<pod id>.slice"); a conmon
        # scope holds the container's monitor, not the container.
        if part.endswith(".slice") or "conmon" in part:
            continue
        m = _ID_IN_COMPONENT.search(part)
        if m:
            found.append((i, m.group(1)))
    if not found:
        return None
    index, cid = found[-1]
    return ContainerRef(
        container_id=cid,
        runtime=_guess_runtime(parts, index),
        cgroup_path=path,
        outer_ids=tuple(c for _i, c in found[:-1]),
    )


def _guess_runtime(parts: List[str], index: int) -> str:
    part = parts[index]
    parent = parts[index - 1] if index > 0 else ""
    above = parts[:index]

    # The component's own prefix is the surest sign, then its parent
    # (the runtime's cgroup parent or containerd namespace), then any
    # ancestor.
    if part.startswith("libpod") or parent == "libpod_parent":
        return "podman"
    if (part.startswith(("cri-containerd-", "crio-"))
            or ":cri-containerd:" in part or ":crio:" in part):
        return "cri"
    if part.startswith("docker-") or parent in ("docker", "moby"):
        return "docker"
    if (parent == "k8s.io" or "kubepods" in part
            or any(a.startswith("kubepods") for a in above)):
        return "cri"
    if (part.startswith("nerdctl-") or parent == "default"
            or "containerd.service" in above):
        return "containerd"
    return "runc"
