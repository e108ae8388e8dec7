"""What the Docker daemon says about a container, cached.

docker-py is imported inside the methods, never at module level: tracers
import :mod:`dockertrace.identity` before they attach BPF programs, and
importing docker-py (with requests and urllib3) costs more than the
attach itself.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import re
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable, List, Mapping, Optional, Tuple

from dockertrace import docker_api
from dockertrace.errors import NoSuchContainer
from dockertrace.identity.cgroups import CgroupTree

#: Container states in which it no longer runs anything.  "removed" is
#: dockertrace's own: the daemon no longer knows the container.
GONE_STATES = frozenset(("exited", "dead", "removed"))


@dataclass(frozen=True)
class ContainerInfo:
    """What the Docker daemon says about a container."""

    #: Full 64-hex-digit id.
    id: str
    #: Name without the leading slash the API puts on it.
    name: str
    #: The image as the container was created from it (``Config.Image``),
    #: e.g. ``busybox:latest``.
    image: str
    #: ``sha256:...`` id of the image.
    image_id: str
    #: First of the image's RepoDigests (``name@sha256:...``), or None for
    #: an image that never came from a registry.
    image_digest: Optional[str]
    #: Container labels (read-only).
    labels: Mapping[str, str] = field(hash=False)
    #: Host pid of the container's first process; None unless running.
    init_pid: Optional[int]
    created_at: datetime.datetime
    #: None if it never started.
    started_at: Optional[datetime.datetime]
    #: ``HostConfig.CgroupParent``; empty means the daemon's default.
    cgroup_parent: str
    #: Storage driver, e.g. ``overlay2``.
    graph_driver: str
    merged_dir: Optional[str]
    upper_dir: Optional[str]
    work_dir: Optional[str]
    #: Lower layers, top first.
    lower_dirs: Tuple[str, ...]
    #: ``default``, ``bridge``, ``host``, ``none``, ``container:<id>`` or
    #: a network name.
    network_mode: str
    #: The daemon's ``State.Status`` (``created``, ``running``,
    #: ``paused``, ``restarting``, ``exited``, ``dead``), or ``removed``
    #: once the daemon forgot a container this resolver had seen.
    status: str

    @property
    def gone(self) -> bool:
        """True once the container runs nothing any more: exited, dead, or
        removed (then the other fields are what was last known)."""
        return self.status in GONE_STATES

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any],
                     image_digest: Optional[str] = None) -> ContainerInfo:
        """Build from the JSON of ``GET /containers/<id>/json``."""
        state = data.get("State") or {}
        config = data.get("Config") or {}
        host = data.get("HostConfig") or {}
        graph = data.get("GraphDriver") or {}
        gdata = graph.get("Data") or {}
        lower = gdata.get("LowerDir") or ""
        pid = state.get("Pid") or 0
        return cls(
            id=data["Id"],
            name=(data.get("Name") or "").lstrip("/"),
            image=config.get("Image") or "",
            image_id=data.get("Image") or "",
            image_digest=image_digest,
            labels=types.MappingProxyType(dict(config.get("Labels") or {})),
            init_pid=pid if pid > 0 else None,
            created_at=_parse_time(data.get("Created"))
            or datetime.datetime.fromtimestamp(0, datetime.timezone.utc),
            started_at=_parse_time(state.get("StartedAt")),
            cgroup_parent=host.get("CgroupParent") or "",
            graph_driver=graph.get("Name") or "",
            merged_dir=gdata.get("MergedDir") or None,
            upper_dir=gdata.get("UpperDir") or None,
            work_dir=gdata.get("WorkDir") or None,
            lower_dirs=tuple(d for d in lower.split(":") if d),
            network_mode=host.get("NetworkMode") or "",
            status=state.get("Status") or "",
        )


_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)"
                   r"(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def _parse_time(text: Optional[str]) -> Optional[datetime.datetime]:
    """An RFC 3339 time from the Engine API, or None for its zero time.

    Written by hand because the API gives nanoseconds, which
    ``datetime.fromisoformat`` refuses before Python 3.11.
    """
    m = _TIME.match(text or "")
    if not m or m.group(1) == "0001":
        return None
    year, mon, day, hour, mins, sec = (int(g) for g in m.groups()[:6])
    micros = int((m.group(7) or "0")[:6].ljust(6, "0"))
    zone = m.group(8)
    if zone == "Z":
        tz = datetime.timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = datetime.timezone(sign * datetime.timedelta(
            hours=int(zone[1:3]), minutes=int(zone[4:6])))
    return datetime.datetime(year, mon, day, hour, mins, sec, micros, tz)


class _TTLCache:
    """A bounded map whose entries remember when they were stored.

    Expired entries are still handed out (with their age), because for a
    container the daemon has forgotten, a stale answer beats none.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: "collections.OrderedDict[str, Tuple[Any, float]]" = (
            collections.OrderedDict())

    def get(self, key: str) -> Optional[Tuple[Any, float]]:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, value: Any, stored_at: float) -> None:
        self._items[key] = (value, stored_at)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def values(self) -> List[Tuple[Any, float]]:
        return list(self._items.values())


class Resolver:
    """Resolves cgroup ids and container ids or names to
    :class:`ContainerInfo`, through the Engine API, with a TTL cache.

    Nothing is contacted when it is made: the docker-py client is created
    on first use (unless one is passed in), and the cgroup tree is walked
    on the first :meth:`resolve_cgroup_id`.  Answers are cached for
    ``ttl_s`` seconds.  A container the daemon forgets (``docker rm``)
    keeps resolving to its last known info, with status ``removed``, for
    as long as the cache holds it.  Safe to use from several threads;
    calls that go to the daemon are serialised.
    """

    def __init__(self, client: Any = None, *,
                 tree: Optional[CgroupTree] = None,
                 ttl_s: float = 5.0, max_entries: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``client`` is a ``docker.DockerClient``; by default one from
        :func:`dockertrace.docker_api.client` (which honours DOCKER_HOST).
        ``tree`` defaults to a :class:`CgroupTree` of this host."""
        self._client = client
        # A client passed in belongs to the caller, who closes it.
        self._owns_client = client is None
        self._tree = tree
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.RLock()
        # container id -> ContainerInfo, or None for an id the daemon does
        # not know (a containerd or podman container).
        self._containers = _TTLCache(max_entries)
        # image id -> first RepoDigest or None
        self._digests = _TTLCache(max_entries)
        self._url = docker_api.docker_url()

    @property
    def tree(self) -> CgroupTree:
        """The cgroup tree used to resolve cgroup ids."""
        with self._lock:
            if self._tree is None:
                self._tree = CgroupTree()
            return self._tree

    def resolve_cgroup_id(self, cgroup_id: int) -> Optional[ContainerInfo]:
        """The container a cgroup v2 id (as BPF reports it) belongs to, or
        None for a cgroup outside any container the daemon knows."""
        ref = self.tree.container_of(cgroup_id)
        if ref is None:
            return None
        # The innermost container is the precise answer; enclosing ones
        # are what the host's daemon knows when the inner one belongs to a
        # daemon running inside a container.
        for cid in (ref.container_id,) + tuple(reversed(ref.outer_ids)):
            info = self.resolve_id(cid)
            if info is not None:
                return info
        return None

    def resolve_id(self, container_id: str) -> Optional[ContainerInfo]:
        """Info for a full container id, or None if the daemon never knew
        it (containers of other runtimes)."""
        with self._lock:
            now = self._clock()
            cached = self._containers.get(container_id)
            if cached is not None and now - cached[1] < self.ttl_s:
                return cached[0]
            try:
                info: Optional[ContainerInfo] = self._inspect(container_id)
            except NoSuchContainer:
                last = cached[0] if cached is not None else None
                info = (dataclasses.replace(last, status="removed",
                                            init_pid=None)
                        if last is not None else None)
            self._containers.put(container_id, info, now)
            return info

    def lookup(self, name_or_id: str) -> ContainerInfo:
        """Info for a container named by the user: name, full id or id
        prefix, as the docker CLI accepts them.

        Raises :class:`dockertrace.NoSuchContainer` if the daemon does not
        know it.
        """
        ref = name_or_id.lstrip("/")
        with self._lock:
            now = self._clock()
            for info, stored_at in self._containers.values():
                if (info is not None and now - stored_at < self.ttl_s
                        and ref in (info.name, info.id)):
                    return info
            info = self._inspect(ref)
            self._containers.put(info.id, info, now)
            return info

    def close(self) -> None:
        """Close the docker-py client if this resolver made it."""
        with self._lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _api(self) -> Any:
        if self._client is None:
            self._client = docker_api.client()
        return self._client.api

    def _inspect(self, ref: str) -> ContainerInfo:
        from docker.errors import NotFound

        api = self._api()
        with docker_api.translated(self._url):
            try:
                data = api.inspect_container(ref)
            except NotFound as err:
                raise NoSuchContainer(ref) from err
            digest = self._image_digest(api, data.get("Image") or "")
        return ContainerInfo.from_inspect(data, digest)

    def _image_digest(self, api: Any, image_id: str) -> Optional[str]:
        from docker.errors import NotFound

        if not image_id:
            return None
        now = self._clock()
        cached = self._digests.get(image_id)
        if cached is not None and now - cached[1] < self.ttl_s:
            return cached[0]
        try:
            digests = api.inspect_image(image_id).get("RepoDigests") or []
        except NotFound:
            # The image was deleted under a container still using it.
            digests = []
        digest = digests[0] if digests else None
        self._digests.put(image_id, digest, now)
        return digest
