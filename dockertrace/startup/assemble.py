"""From kernel events to the phases of one container start.

Pure functions: no BPF, no Docker. The tracer feeds them the events it
recorded, the unit tests feed them recorded sequences.

A start is cut at *milestones*, kernel events that mark the beginning of a
phase. A phase runs from its milestone to the next milestone that was
seen, so the phases tile the interval between the first and the last
boundary without gap or overlap and their durations add up to the total
exactly. When the caller measured the start itself (the client's request
and the moment the start call returned), those two times are the outer
boundaries, so the total is the client's wall time.
"""

from dataclasses import dataclass, field
from typing import Optional

from dockertrace.startup import flags as _flags
from dockertrace.startup.events import Kind, KernelEvent

# (name, title), in the order the phases happen.
PHASES = (
    ("api", "API request until the daemon mounts the rootfs"),
    ("rootfs", "daemon mounts the container's overlay rootfs"),
    ("daemon", "daemon and containerd prepare the task"),
    ("shim", "containerd-shim starts and runs runc"),
    ("runc", "runc create re-executes itself as runc init"),
    ("cgroups", "cgroups created and joined"),
    ("namespaces", "namespaces created"),
    ("mounts", "mounts in the container's mount namespace"),
    ("network", "network prestart hook (libnetwork-setkey)"),
    ("pivot_root", "pivot_root and masked/read-only paths"),
    ("security", "capabilities, no_new_privs and seccomp"),
    ("start", "create returns; daemon calls runc start"),
    ("exec", "exec of the container's command"),
    ("return", "start call returns to the client"),
)
PHASE_NAMES = tuple(name for name, _ in PHASES)
_TITLES = dict(PHASES)

_RUNC_SUBCOMMANDS = ("create", "start", "delete", "state", "kill", "run")


@dataclass(frozen=True)
class Phase:
    name: str
    title: str
    start_ns: int
    duration_ns: int
    events: tuple = ()
    detail: str = ""

    @property
    def end_ns(self):
        return self.start_ns + self.duration_ns


@dataclass(frozen=True)
class Startup:
    """The kernel-level breakdown of one container start."""

    container_id: str
    phases: tuple
    total_ns: int
    client_ns: Optional[int] = None
    namespaces: tuple = ()
    mount_count: int = 0
    mount_ns: int = 0
    cgroup_dirs: int = 0
    missing: tuple = ()
    # How long after the client's start call returned the container's
    # command was exec'd (0 when it was exec'd before): nothing orders the
    # two, and then the start ends with the exec, not with the call.
    late_exec_ns: int = 0
    # cgroup v2 id of the container (what bpf_get_current_cgroup_id()
    # returns inside it), from the exec of its command; 0 if not seen.
    cgroup_id: int = 0
    name: str = ""
    image: str = ""
    cold: bool = False
    mechanisms: dict = field(default_factory=dict)
    dropped_events: int = 0

    def phase(self, name):
        for p in self.phases:
            if p.name == name:
                return p
        return None

    def to_dict(self, verbose=False):
        d = {
            "container_id": self.container_id, "name": self.name,
            "image": self.image, "cold": self.cold,
            "total_ns": self.total_ns, "client_ns": self.client_ns,
            "namespaces": list(self.namespaces),
            "mount_count": self.mount_count, "mount_ns": self.mount_ns,
            "cgroup_dirs": self.cgroup_dirs, "missing": list(self.missing),
            "late_exec_ns": self.late_exec_ns,
            "cgroup_id": self.cgroup_id,
            "mechanisms": dict(self.mechanisms),
            "dropped_events": self.dropped_events,
            "phases": [],
        }
        for p in self.phases:
            pd = {"name": p.name, "title": p.title,
                  "start_ns": p.start_ns, "duration_ns": p.duration_ns,
                  "detail": p.detail}
            if verbose:
                pd["events"] = [e.to_dict() for e in p.events]
            d["phases"].append(pd)
        return d


def runc_subcommand(ev):
    """`create`, `start`, ... for an exec of runc; None otherwise."""
    if not ev.args or not ev.args[0].rsplit("/", 1)[-1].startswith("runc"):
        return None
    for a in ev.args[1:]:
        if a in _RUNC_SUBCOMMANDS:
            return a
    return None


def is_shim_exec(ev):
    return bool(ev.args) and "containerd-shim" in ev.args[0]


def is_hook_exec(ev):
    return bool(ev.args) and ev.args[0] == "libnetwork-setkey"


def is_container_exec(ev):
    """The init process replacing itself with the container's command."""
    return ev.kind is Kind.EXEC and ev.old_comm.startswith("runc:[2:INIT]")


class Attribution:
    """Which container each runtime process works for.

    The shim and runc carry the container id on their command line; every
    process they fork works for the same container (runc init, the network
    hook, the container's own init). Events arrive in time order, and a
    pid that is reused later is re-attributed by its next exec or fork.
    """

    def __init__(self):
        self.owner = {}

    def feed(self, ev):
        if ev.kind is Kind.EXEC:
            ids = ev.container_ids()
            if ids and (is_shim_exec(ev) or runc_subcommand(ev)
                        or is_hook_exec(ev)):
                self.owner[ev.tgid] = ids[-1]
        elif ev.kind is Kind.FORK:
            parent = self.owner.get(ev.tgid)
            if parent is not None:
                self.owner[ev.aux] = parent
            else:
                self.owner.pop(ev.aux, None)
        return self.owner.get(ev.tgid)


def rootfs_path(events):
    """The container's rootfs as runc bind-mounts it onto itself."""
    for ev in events:
        if (ev.kind is Kind.MOUNT and ev.tracked and ev.args
                and ev.args[0] and ev.args[0] == ev.path
                and ev.path.endswith("/merged")):
            return ev.path
    return None


def select(events, container_id, layer_id=None):
    """The events of one container start, in time order.

    The daemon serves every container and carries no container id, so its
    overlay mounts are matched by where they go: the rootfs directory that
    runc later bind-mounts (or ``layer_id``, the overlay2 layer directory
    name, when the caller knows it).
    """
    attr = Attribution()
    mine, daemon = [], []
    for ev in sorted(events, key=lambda e: e.start_ns):
        owner = attr.feed(ev)
        if ev.kind is Kind.CGROUP_MKDIR:
            if container_id in ev.path:
                mine.append(ev)
        elif ev.kind is Kind.MOUNT and not ev.tracked:
            daemon.append(ev)
        elif owner == container_id:
            mine.append(ev)
    root = rootfs_path(mine)
    for ev in daemon:
        if (root and ev.path == root) or (layer_id and layer_id in ev.path):
            mine.append(ev)
    mine.sort(key=lambda e: e.start_ns)
    return mine


def _first(events, pred, after=0):
    for ev in events:
        if ev.start_ns >= after and pred(ev):
            return ev
    return None


def milestones(events):
    """Start time of each phase that the events show, by phase name.

    ``events`` are one container's, in time order (see :func:`select`).
    """
    m = {}
    overlay = [e for e in events if e.kind is Kind.MOUNT and not e.tracked]
    shim = _first(events, lambda e: e.kind is Kind.EXEC and is_shim_exec(e))
    if overlay:
        m["rootfs"] = overlay[0].start_ns
        before_shim = [e for e in overlay
                       if shim is None or e.ts_ns <= shim.start_ns]
        if before_shim:
            m["daemon"] = before_shim[-1].ts_ns
    if shim:
        m["shim"] = shim.start_ns
    create = _first(events, lambda e: e.kind is Kind.EXEC
                    and runc_subcommand(e) == "create")
    if create:
        m["runc"] = create.start_ns
    mkdir = _first(events, lambda e: e.kind is Kind.CGROUP_MKDIR)
    if mkdir:
        m["cgroups"] = mkdir.start_ns
    ns = _first(events, lambda e: e.kind in (Kind.UNSHARE, Kind.CLONE)
                and _flags.namespaces(e.arg))
    if ns:
        m["namespaces"] = ns.start_ns
        mnt = _first(events, lambda e: e.kind in (Kind.MOUNT, Kind.NEWMOUNT)
                     and e.tracked, after=ns.ts_ns)
        if mnt:
            m["mounts"] = mnt.start_ns
    hook = _first(events, lambda e: e.kind is Kind.EXEC and is_hook_exec(e))
    if hook:
        m["network"] = hook.start_ns
    pivot = _first(events, lambda e: e.kind is Kind.PIVOT_ROOT)
    if pivot:
        m["pivot_root"] = pivot.start_ns
    execd = _first(events, is_container_exec)

    def is_security(e):
        # runc probes seccomp support with calls that fail on purpose;
        # only a call that succeeded changed the process.
        return e.ret == 0 and (
            e.kind in (Kind.CAPSET, Kind.NO_NEW_PRIVS)
            or (e.kind is Kind.SECCOMP and _flags.installs_filter(e.arg)))

    sec = [e for e in events if is_security(e)
           and (pivot is None or e.start_ns >= pivot.start_ns)
           and (execd is None or e.ts_ns <= execd.start_ns)]
    if sec:
        m["security"] = sec[0].start_ns
        m["start"] = sec[-1].ts_ns
    if execd:
        m["exec"] = execd.start_ns
        m["return"] = execd.ts_ns
    return m


def _detail(name, events):
    if name == "rootfs":
        mounts = [e for e in events if e.kind is Kind.MOUNT]
        return f"{len(mounts)} overlay mount(s)" if mounts else ""
    if name == "cgroups":
        n = sum(1 for e in events if e.kind is Kind.CGROUP_MKDIR)
        return f"{n} cgroup dir(s)" if n else ""
    if name == "namespaces":
        names = []
        for e in events:
            if e.kind in (Kind.UNSHARE, Kind.CLONE):
                names += [n for n in _flags.namespaces(e.arg)
                          if n not in names]
        return " ".join(names)
    if name in ("mounts", "pivot_root"):
        mounts = [e for e in events if e.kind in (Kind.MOUNT, Kind.NEWMOUNT)]
        if not mounts:
            return ""
        ms = sum(e.duration_ns for e in mounts) / 1e6
        return f"{len(mounts)} mounts ({ms:.1f} ms in mount)"
    if name == "security":
        parts = []
        for e in events:
            if e.kind is Kind.CAPSET and "capset" not in parts:
                parts.append("capset")
            elif e.kind is Kind.NO_NEW_PRIVS and "no_new_privs" not in parts:
                parts.append("no_new_privs")
            elif (e.kind is Kind.SECCOMP and _flags.installs_filter(e.arg)
                  and e.ret == 0 and "seccomp filter" not in parts):
                parts.append("seccomp filter")
        return ", ".join(parts)
    if name == "network":
        hooks = [e for e in events if e.kind is Kind.EXEC
                 and is_hook_exec(e)]
        return "hook " + hooks[0].args[0] if hooks else ""
    if name == "shim":
        n = sum(1 for e in events if e.kind is Kind.EXEC
                and is_shim_exec(e))
        return f"{n} shim exec(s)" if n else ""
    if name == "exec":
        ex = [e for e in events if is_container_exec(e)]
        return " ".join(ex[0].args)[:50] if ex else ""
    return ""


def assemble(events, container_id, *, layer_id=None, client_start_ns=None,
             client_end_ns=None, **info):
    """Build the :class:`Startup` of ``container_id`` from ``events``.

    ``events`` may hold other containers' events too. ``info`` fills the
    descriptive fields of the result (name, image, cold, mechanisms,
    dropped_events).
    """
    mine = select(events, container_id, layer_id)
    marks = milestones(mine)
    if client_start_ns is not None:
        marks["api"] = client_start_ns

    # Boundaries in phase order; one seen out of order is clamped to the
    # previous one, so its phase shows as empty rather than negative.
    bounds = []
    for name in PHASE_NAMES:
        if name in marks:
            t = marks[name]
            if bounds and t < bounds[-1][1]:
                t = bounds[-1][1]
            bounds.append((name, t))
    if not bounds:
        raise ValueError(f"no kernel events for container {container_id}")
    end = bounds[-1][1] if client_end_ns is None else client_end_ns
    end = max(end, bounds[-1][1])

    phases = []
    for i, (name, start) in enumerate(bounds):
        stop = bounds[i + 1][1] if i + 1 < len(bounds) else end
        inside = tuple(e for e in mine if start <= e.start_ns < stop)
        phases.append(Phase(name=name, title=_TITLES[name],
                            start_ns=start, duration_ns=stop - start,
                            events=inside, detail=_detail(name, inside)))
    # The last phase ends where the client saw the call return; without a
    # client the start ends with the exec, and "return" is a point.
    if client_end_ns is None and phases and phases[-1].name == "return":
        phases.pop()

    ns_names = []
    for e in mine:
        if e.kind in (Kind.UNSHARE, Kind.CLONE):
            ns_names += [n for n in _flags.namespaces(e.arg)
                         if n not in ns_names]
    in_ns = [e for e in mine if e.tracked and e.kind is Kind.MOUNT
             and "namespaces" in marks and e.start_ns >= marks["namespaces"]]
    expected = [n for n in PHASE_NAMES
                if n not in ("api", "return") or client_start_ns is not None]
    total = phases[-1].end_ns - phases[0].start_ns
    client = None
    late = 0
    if client_start_ns is not None and client_end_ns is not None:
        client = client_end_ns - client_start_ns
        late = max(0, phases[-1].end_ns - client_end_ns)
    return Startup(
        container_id=container_id, phases=tuple(phases), total_ns=total,
        client_ns=client, namespaces=tuple(ns_names),
        mount_count=len(in_ns),
        mount_ns=sum(e.duration_ns for e in in_ns),
        cgroup_dirs=sum(1 for e in mine if e.kind is Kind.CGROUP_MKDIR),
        missing=tuple(n for n in expected if n not in marks),
        late_exec_ns=late,
        cgroup_id=next((e.cgroup_id for e in mine if is_container_exec(e)),
                       0), **info)
