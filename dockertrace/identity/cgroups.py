"""cgroup hierarchies: where they are mounted, which cgroup a process is
in, and which path a cgroup v2 id stands for.

BPF programs name a task's cgroup by its cgroup v2 id
(``bpf_get_current_cgroup_id()``), which is the inode number of the
cgroup's directory in the v2 hierarchy.  :class:`CgroupTree` turns such
ids back into paths by walking that hierarchy, so cgroups made before the
tracer started are known as well as new ones.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import posixpath
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from dockertrace.errors import FeatureNotSupported
from dockertrace.identity.paths import ContainerRef, parse_cgroup_path

log = logging.getLogger(__name__)

#: Root of the proc filesystem; tests point it at a fixture tree.  Mount
#: points are read from ``<PROC_ROOT>/self/mountinfo``, never assumed.
PROC_ROOT = "/proc"

# Controllers a cgroup v1 hierarchy can carry.  Every other word in the
# super options of a v1 mount (rw, xattr, clone_children, ...) is a mount
# option, not a controller.
_V1_CONTROLLERS = frozenset((
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb",
    "memory", "misc", "net_cls", "net_prio", "perf_event", "pids", "rdma",
))

# Where a v2-only host and a hybrid host mount the unified hierarchy; used
# only to choose between several cgroup2 mounts (bind mounts, containers).
_PREFERRED_V2_MOUNTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")


@dataclass(frozen=True)
class CgroupMount:
    """One mounted cgroup hierarchy."""

    #: Where the hierarchy is mounted, e.g. ``/sys/fs/cgroup/unified``.
    mount_point: str
    #: The part of the hierarchy the mount shows: ``/`` unless a cgroup
    #: namespace or a bind mount narrows it (inside a container).
    root: str
    #: 1 or 2.
    version: int
    #: v1 only: the controllers it carries, ``("cpu", "cpuacct")`` or a
    #: named hierarchy ``("name=systemd",)``; empty for v2.
    controllers: Tuple[str, ...] = ()


@dataclass(frozen=True)
class CgroupLayout:
    """The cgroup hierarchies this process sees."""

    #: ``"v1"``, ``"v2"`` or ``"hybrid"`` (v1 controllers plus a cgroup2
    #: mount, usually at ``/sys/fs/cgroup/unified``).
    mode: str
    #: The cgroup v2 mount, or None when none is mounted (pure v1).
    unified: Optional[CgroupMount]
    #: The cgroup v1 mounts, in mountinfo order.
    v1_mounts: Tuple[CgroupMount, ...] = ()

    def v1_mount(self, controller: str) -> Optional[CgroupMount]:
        """The v1 mount carrying ``controller`` (``"cpu"``,
        ``"name=systemd"``), or None."""
        for mount in self.v1_mounts:
            if controller in mount.controllers:
                return mount
        return None


def parse_mountinfo(text: str, source: str = "mountinfo") -> CgroupLayout:
    """Find the cgroup hierarchies in the text of a mountinfo file.

    Raises :class:`dockertrace.FeatureNotSupported` when there is no
    cgroup mount at all.
    """
    v2: List[CgroupMount] = []
    v1: List[CgroupMount] = []
    for line in text.splitlines():
        fields = line.split()
        # Optional fields (shared:N, master:N) come before a lone "-"; the
        # filesystem type and super options follow it.
        try:
            sep = fields.index("-", 6)
            fstype, superopts = fields[sep + 1], fields[sep + 3]
        except (ValueError, IndexError):
            continue
        if fstype not in ("cgroup", "cgroup2"):
            continue
        root, mount_point = _unescape(fields[3]), _unescape(fields[4])
        if fstype == "cgroup2":
            v2.append(CgroupMount(mount_point, root, 2))
            continue
        ctrls = tuple(o for o in superopts.split(",")
                      if o in _V1_CONTROLLERS or o.startswith("name="))
        if ctrls and not any(m.controllers == ctrls for m in v1):
            v1.append(CgroupMount(mount_point, root, 1, ctrls))

    unified = _pick_v2(v2)
    # A leftover named hierarchy (name=systemd) holds no controller, so a
    # host with only that beside cgroup2 is still v2 for every purpose.
    has_v1 = any(not c.startswith("name=")
                 for m in v1 for c in m.controllers)
    if unified is not None:
        mode = "hybrid" if has_v1 else "v2"
    elif v1:
        mode = "v1"
    else:
        raise FeatureNotSupported(
            "cgroup filesystem", detail=f"no cgroup mount in {source}",
            fix="mount one: mount -t cgroup2 none /sys/fs/cgroup")
    return CgroupLayout(mode, unified, tuple(v1))


def _pick_v2(mounts: List[CgroupMount]) -> Optional[CgroupMount]:
    if not mounts:
        return None

    # A mount of the whole hierarchy at the usual place is the one
    # runtimes and the kernel's view of /proc/<pid>/cgroup agree on.
    def rank(m: CgroupMount) -> Tuple[int, int]:
        place = (_PREFERRED_V2_MOUNTS.index(m.mount_point)
                 if m.mount_point in _PREFERRED_V2_MOUNTS
                 else len(_PREFERRED_V2_MOUNTS))
        return (0 if m.root == "/" else 1, place)

    return min(mounts, key=rank)


def _unescape(text: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


_layouts: Dict[str, CgroupLayout] = {}


def cgroup_layout(refresh: bool = False) -> CgroupLayout:
    """The cgroup layout of this machine, read once and cached.

    The cache is keyed by :data:`PROC_ROOT`, so a test that points it at
    a fixture gets that fixture's layout.
    """
    path = os.path.join(PROC_ROOT, "self", "mountinfo")
    if refresh or path not in _layouts:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            _layouts[path] = parse_mountinfo(f.read(), source=path)
        log.debug("cgroup layout from %s: %s", path, _layouts[path])
    return _layouts[path]


def cgroup_dir(path: str, mount: Optional[CgroupMount] = None) -> str:
    """The directory of a cgroup given by its path in the hierarchy (as in
    ``/proc/<pid>/cgroup``).

    ``mount`` defaults to the cgroup v2 mount.  Raises
    :class:`dockertrace.FeatureNotSupported` when there is no such mount
    or the cgroup lies outside what the mount shows (another cgroup
    namespace).
    """
    if mount is None:
        mount = _unified_mount()
    path = posixpath.normpath("/" + path.lstrip("/"))
    root = mount.root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        raise FeatureNotSupported(
            f"cgroup {path}",
            detail=f"outside the hierarchy mounted at {mount.mount_point}",
            fix="run dockertrace in the host's cgroup namespace")
    rel = path[len(root):].lstrip("/")
    return os.path.join(mount.mount_point, rel) if rel else mount.mount_point


def _unified_mount() -> CgroupMount:
    mount = cgroup_layout().unified
    if mount is None:
        raise FeatureNotSupported(
            "cgroup v2 hierarchy",
            detail="only cgroup v1 is mounted, and BPF names cgroups by "
                   "their v2 id",
            fix="mount -t cgroup2 none /sys/fs/cgroup/unified, then "
                "restart the containers to trace")
    return mount


def _proc_cgroup_lines(pid: int) -> List[Tuple[str, str, str]]:
    path = os.path.join(PROC_ROOT, str(pid), "cgroup")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        raise ProcessLookupError(errno.ESRCH, f"no process {pid}") from None
    lines = []
    for line in text.splitlines():
        # hierarchy-id:controllers:path, and the path may contain colons.
        parts = line.split(":", 2)
        if len(parts) == 3:
            lines.append((parts[0], parts[1], parts[2]))
    return lines


def cgroup_path_of_pid(pid: int) -> str:
    """The cgroup v2 path of a process (its ``0::`` line in
    ``/proc/<pid>/cgroup``), e.g. ``/docker/<id>``.

    Raises ``ProcessLookupError`` when the process does not exist.
    """
    for hier, _ctrls, path in _proc_cgroup_lines(pid):
        if hier == "0":
            return path
    raise FeatureNotSupported(
        "cgroup v2", detail=f"no 0:: line for pid {pid}",
        fix="use a kernel with cgroup v2 (4.5 or later)")


def cgroup_id_of_pid(pid: int) -> int:
    """The cgroup v2 id of a process: what ``bpf_get_current_cgroup_id()``
    returns in its context, i.e. the inode number of its cgroup v2
    directory.

    Raises ``ProcessLookupError`` when the process does not exist and
    ``FileNotFoundError`` when its cgroup vanished meanwhile.
    """
    return os.stat(cgroup_dir(cgroup_path_of_pid(pid))).st_ino


def container_of_pid(pid: int) -> Optional[ContainerRef]:
    """The container a process runs in, judged by its cgroup paths, or
    None for a process outside any container.

    The v2 path comes first; v1 paths are the fallback for hosts where
    containers were started before cgroup2 was mounted, which leaves them
    in the v2 root.
    """
    lines = sorted(_proc_cgroup_lines(pid), key=lambda ln: ln[0] != "0")
    for _hier, _ctrls, path in lines:
        ref = parse_cgroup_path(path)
        if ref is not None:
            return ref
    return None


class CgroupTree:
    """Maps cgroup v2 ids to cgroup paths.

    The first lookup walks the whole v2 tree once, recording the inode
    number of each directory, which is its cgroup id.  A later miss (a
    cgroup made after the walk) walks again, but at most once per
    ``refresh_interval_s``, so a stream of events from an unknown cgroup
    cannot turn into a stream of walks.  Entries for removed cgroups are
    kept, because events from a container often arrive after it is gone;
    they are the first to go when the map exceeds ``max_entries``.
    Cgroup ids are 64-bit and never reused, so a kept entry is never
    wrong.  Safe to use from several threads.
    """

    def __init__(self, mount_point: Optional[str] = None, *,
                 mount_root: str = "/",
                 refresh_interval_s: float = 0.25,
                 max_entries: int = 65536,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``mount_point`` defaults to the cgroup v2 mount found in
        mountinfo (then ``mount_root`` comes from there too); a test can
        pass any directory tree.  ``clock`` returns seconds."""
        if mount_point is None:
            mount = _unified_mount()
            mount_point, mount_root = mount.mount_point, mount.root
        self.mount_point = mount_point
        self.mount_root = mount_root
        self.refresh_interval_s = refresh_interval_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._paths: "collections.OrderedDict[int, str]" = (
            collections.OrderedDict())
        self._walked_at: Optional[float] = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._paths)

    def path_of(self, cgroup_id: int) -> Optional[str]:
        """The path of a cgroup (``/docker/<id>``), or None if the tree
        has no such cgroup, even after a walk allowed by the rate
        limit."""
        with self._lock:
            path = self._paths.get(cgroup_id)
            if path is not None:
                return path
            if self._walked_at is not None and (
                    self._clock() - self._walked_at
                    < self.refresh_interval_s):
                return None
            self._refresh_locked()
            return self._paths.get(cgroup_id)

    def container_of(self, cgroup_id: int) -> Optional[ContainerRef]:
        """The container whose cgroup (or a cgroup below it) has this id,
        or None."""
        path = self.path_of(cgroup_id)
        return parse_cgroup_path(path) if path is not None else None

    def note(self, cgroup_id: int, path: str) -> None:
        """Record a cgroup learned some other way, such as a
        ``cgroup_mkdir`` tracepoint, so no walk is needed to find it."""
        with self._lock:
            self._paths[cgroup_id] = path
            self._paths.move_to_end(cgroup_id)
            self._trim_locked()

    def refresh(self) -> int:
        """Walk the tree now, whatever the rate limit; returns the number
        of cgroups found."""
        with self._lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> int:
        started = time.monotonic()
        fresh: "collections.OrderedDict[int, str]" = (
            collections.OrderedDict())
        for ino, path in self._walk():
            fresh[ino] = path
            if len(fresh) >= self.max_entries:
                log.warning("more than %d cgroups under %s; the rest stay "
                            "unknown (raise max_entries)", self.max_entries,
                            self.mount_point)
                break

        # Gone cgroups first, so they are the first trimmed.
        merged = collections.OrderedDict(
            (k, v) for k, v in self._paths.items() if k not in fresh)
        merged.update(fresh)
        self._paths = merged
        self._trim_locked()
        self._walked_at = self._clock()
        log.debug("walked %d cgroups under %s in %.1f ms", len(fresh),
                  self.mount_point, (time.monotonic() - started) * 1e3)
        return len(fresh)

    def _trim_locked(self) -> None:
        while len(self._paths) > self.max_entries:
            self._paths.popitem(last=False)

    def _walk(self) -> Iterator[Tuple[int, str]]:
        try:
            yield os.stat(self.mount_point).st_ino, self.mount_root
        except OSError as err:
            log.debug("cannot stat %s: %s", self.mount_point, err)
            return
        stack = [(self.mount_point, self.mount_root)]
        while stack:
            directory, path = stack.pop()
            try:
                with os.scandir(directory) as it:
                    entries = list(it)
            except OSError as err:
                # Removed while we walked, or not ours to read: either way
                # nothing below it can be learned now.
                log.debug("skipping %s: %s", directory, err)
                continue
            for entry in entries:
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    ino = entry.stat(follow_symlinks=False).st_ino
                except OSError:
                    continue
                sub = posixpath.join(path, entry.name)
                yield ino, sub
                stack.append((entry.path, sub))
