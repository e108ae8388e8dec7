"""From BPF records to copy-up events, and from events to a summary.

Pure functions over plain values: the mount table and the container
lookup come in as callables, so all of this is tested on recorded
fixtures without root.
"""

import posixpath
import stat
from dataclasses import asdict, dataclass
from typing import Callable, Optional

from dockertrace.copyup.events import Mech, Op, PathSource, RawCopyUp
from dockertrace.copyup.events import syscall_name
from dockertrace.copyup.layers import find_in_layers

O_WRONLY = 0o1
O_RDWR = 0o2
O_CREAT = 0o100
O_TRUNC = 0o1000

#: Operations that change a file's metadata only: with metacopy=on they
#: copy up no data.
META_OPS = frozenset((Op.CHMOD, Op.CHOWN, Op.XATTR, Op.UTIMES, Op.RENAME,
                      Op.LINK))

# Syscalls that act on a symlink itself rather than on what it points to.
_NOFOLLOW = frozenset(("lchown", "lsetxattr", "lremovexattr", "rename",
                       "renameat", "renameat2", "link", "linkat"))

#: What each mechanism cannot measure, in words for the user.
LIMITS = {
    "fentry": "",
    "kprobe": "",
    "tracepoint": (
        "latency runs from the copy-up's temporary inode to the end of "
        "the triggering syscall (path lookup and locking before the "
        "copy-up are not in it; the rest of the syscall is); the size is "
        "the lower file's, read from its layer; only copy-ups inside "
        "the traced syscalls (open for writing, truncate, chmod, chown, "
        "xattr, utimes, rename, link, create, unlink) on an ext4 upper "
        "layer are seen; with metacopy=on a metadata-only copy-up is "
        "told apart by its trigger, not measured"),
}


def trigger_of(raw: RawCopyUp) -> str:
    """A short name for what made the copy-up happen."""
    if raw.op is Op.OPEN:
        if raw.flags & O_TRUNC:
            return "open-trunc"
        if raw.flags & (O_WRONLY | O_RDWR):
            return "open-write"
        return "open-create"
    return raw.op.name.lower()


def file_type(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special"


def target_path(raw: RawCopyUp) -> str:
    """The path the syscall (or the copy-up) was about, as the container
    sees it; "" when the record carries none."""
    if raw.path_src in (PathSource.DENTRY, PathSource.FILE):
        return raw.walked_path or "/"
    if not raw.arg:
        return ""
    if raw.arg.startswith("/"):
        return posixpath.normpath(raw.arg)
    base = raw.walked_path if raw.path_src is PathSource.BASE else ""
    return posixpath.normpath(posixpath.join(base or "/", raw.arg))


@dataclass(frozen=True)
class CopyUp:
    """One copy-up, or the copy-ups one syscall needed.

    ``path`` is the object copied, as the container sees it: the file, or
    for a syscall that only copied directories (a new file in an image
    directory) the deepest directory. ``dirs_copied`` counts the parent
    directories copied up along the way. ``size_bytes`` is the data
    copied (0 for a directory, a metadata-only copy-up or O_TRUNC; None
    when it could not be read). ``latency_ns`` is the copy-up's duration
    as the mechanism measures it (see :data:`LIMITS`).
    """

    ts_ns: int
    pid: int
    tid: int
    comm: str
    container_id: Optional[str]
    container_name: Optional[str]
    cgroup_id: int
    path: str
    file_type: str
    size_bytes: Optional[int]
    latency_ns: int
    syscall_ns: Optional[int]
    copy: str
    trigger: str
    syscall: str
    dirs_copied: int
    files_copied: int
    mechanism: str
    path_exact: bool
    lower_dir: Optional[str] = None

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


@dataclass
class Context:
    """What assembly needs from the outside world.

    ``mount_for(raw)`` returns the record's OverlayMount or None;
    ``container_for(raw)`` returns ``(id, name)`` (name may be None) or
    None for a task outside any container.
    """

    mechanism: str = "tracepoint"
    mount_for: Callable = lambda raw: None
    container_for: Callable = lambda raw: None
    machine: Optional[str] = None
    #: Drop tracepoint records whose work dir is no known overlay's.
    strict: bool = True


def assemble(raw: RawCopyUp, ctx: Context) -> Optional[CopyUp]:
    """The :class:`CopyUp` of a record, or None if it is not one.

    A record of the tracepoint mechanism is dropped when its work dir
    belongs to no overlay mount: then overlay was creating a file in a
    container directory that happens to be called "work".
    """
    mount = ctx.mount_for(raw)
    if raw.mech is Mech.TP and mount is None and ctx.strict:
        return None
    sysname = syscall_name(raw.nr, ctx.machine)
    trigger = trigger_of(raw)
    target = target_path(raw)
    lowers = tuple(mount.lower_dirs) if mount is not None else ()
    follow = sysname not in _NOFOLLOW

    ftype = file_type(raw.mode)
    path, exact, size, lower_dir = target, True, None, None
    if raw.mech is Mech.FUNC:
        size = raw.size if ftype == "file" else 0
        exact = raw.path_src is PathSource.DENTRY
    else:
        path, exact, found = _tp_object(raw, target, lowers, follow)
        if found is not None:
            lower_dir = lowers[found[0]]
            if ftype == "file":
                size = found[2].st_size
        if ftype != "file":
            size = 0
        elif raw.op is Op.OPEN and raw.flags & O_TRUNC:
            # Overlay copies no data for an open with O_TRUNC.
            size = 0

    # A directory, symlink or device has no data to copy.
    copy = "data" if ftype == "file" else "metadata"
    if (ftype == "file" and raw.op in META_OPS and mount is not None
            and mount.option("metacopy") == "on"):
        copy = "metadata"
        size = 0
    if raw.nother == 0 and raw.op is Op.OPEN and raw.flags & O_CREAT:
        # Only the parents of a new file were copied.
        trigger = "open-create"
    dirs = raw.ndirs - (1 if ftype == "dir" else 0)

    if raw.mech is Mech.FUNC:
        latency = raw.copy_ns
    else:
        latency = raw.ts_ns - raw.copy_start_ns
    cont = ctx.container_for(raw)
    return CopyUp(
        ts_ns=raw.ts_ns, pid=raw.tgid, tid=raw.pid, comm=raw.comm,
        container_id=cont[0] if cont else None,
        container_name=cont[1] if cont else None,
        cgroup_id=raw.cgroup_id, path=path, file_type=ftype,
        size_bytes=size, latency_ns=latency,
        syscall_ns=raw.ts_ns - raw.start_ns if raw.start_ns else None,
        copy=copy, trigger=trigger, syscall=sysname,
        dirs_copied=max(dirs, 0), files_copied=raw.nother,
        mechanism=ctx.mechanism, path_exact=exact and not raw.depth_hit,
        lower_dir=lower_dir)


def _tp_object(raw, target, lowers, follow):
    """``(path, exact, found)`` of the object a tracepoint record's
    syscall copied: the target itself, or, when only directories were
    copied and the target is not one of them, the target's parent.
    ``found`` is find_in_layers' answer for that path."""
    if not target:
        return "", False, None
    found = find_in_layers(lowers, target, follow=follow) if lowers \
        else None
    if found is not None:
        target = found[3]
    only_dirs = raw.nother == 0
    if only_dirs:
        is_dir = found is not None and stat.S_ISDIR(found[2].st_mode)
        if not (raw.op in META_OPS and is_dir):
            target = posixpath.dirname(target) or "/"
            found = find_in_layers(lowers, target) if lowers else None
    # A path walked from the file is the kernel's; one rebuilt from a
    # syscall argument is ours, with symlinks resolved in the layers.
    exact = raw.path_src is PathSource.FILE and not only_dirs
    return target, exact, found


# Summary


def percentile(values, q):
    """Nearest-rank percentile of ``values`` (q in 0..100), or 0."""
    if not values:
        return 0
    s = sorted(values)
    k = max(0, min(len(s) - 1, -(-q * len(s) // 100) - 1))
    return s[int(k)]


@dataclass(frozen=True)
class FileStat:
    path: str
    count: int
    bytes: int
    latency_ns: int


@dataclass(frozen=True)
class ContainerSummary:
    """Copy-ups of one container (or of tasks outside any, id None)."""

    container_id: Optional[str]
    container_name: Optional[str]
    count: int
    bytes: int
    total_latency_ns: int
    p50_latency_ns: int
    p99_latency_ns: int
    top_by_bytes: tuple
    top_by_time: tuple

    def to_dict(self):
        d = asdict(self)
        d["top_by_bytes"] = [asdict(f) for f in self.top_by_bytes]
        d["top_by_time"] = [asdict(f) for f in self.top_by_time]
        return d


@dataclass(frozen=True)
class Summary:
    """What a trace saw, per container."""

    containers: tuple
    mechanism: str
    limits: str
    dropped_events: int
    duration_s: float

    @property
    def count(self):
        return sum(c.count for c in self.containers)

    def container(self, name_or_id):
        for c in self.containers:
            if name_or_id in (c.container_name, c.container_id):
                return c
        return None

    def to_dict(self):
        return {"mechanism": self.mechanism, "limits": self.limits,
                "dropped_events": self.dropped_events,
                "duration_s": self.duration_s,
                "containers": [c.to_dict() for c in self.containers]}


def summarize(events, *, top=5, mechanism="", dropped_events=0,
              duration_s=0.0):
    """A :class:`Summary` of ``events`` (CopyUp), busiest container
    first."""
    groups = {}
    for e in events:
        groups.setdefault(e.container_id, []).append(e)
    out = []
    for cid, evs in groups.items():
        files = {}
        for e in evs:
            f = files.setdefault(e.path, [0, 0, 0])
            f[0] += 1
            f[1] += e.size_bytes or 0
            f[2] += e.latency_ns
        stats = [FileStat(p, *v) for p, v in files.items()]
        lat = [e.latency_ns for e in evs]
        out.append(ContainerSummary(
            container_id=cid, container_name=evs[0].container_name,
            count=len(evs), bytes=sum(e.size_bytes or 0 for e in evs),
            total_latency_ns=sum(lat),
            p50_latency_ns=percentile(lat, 50),
            p99_latency_ns=percentile(lat, 99),
            top_by_bytes=tuple(sorted(stats, key=lambda f: (-f.bytes,
                                                            f.path))[:top]),
            top_by_time=tuple(sorted(
                stats, key=lambda f: (-f.latency_ns, f.path))[:top])))
    out.sort(key=lambda c: (-c.bytes, -c.count, c.container_name or ""))
    return Summary(containers=tuple(out), mechanism=mechanism,
                   limits=LIMITS.get(mechanism, ""),
                   dropped_events=dropped_events, duration_s=duration_s)

