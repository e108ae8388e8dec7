"""Kernel-level breakdown of container starts.

>>> import dockertrace
>>> result = dockertrace.trace_startup(["--network", "host",
...                                     "dockertrace-busybox", "true"])
>>> for phase in result.runs[0].phases:
...     print(phase.name, phase.duration_ns)
"""

import statistics
import time
from dataclasses import dataclass

from dockertrace.startup.assemble import (  # noqa: F401
    PHASE_NAMES, Phase, Startup, assemble)
from dockertrace.startup.events import KernelEvent, Kind  # noqa: F401
from dockertrace.startup.tracer import (  # noqa: F401
    DEFAULT_COMMAND, DEFAULT_IMAGE, StartupTracer, start_one)


@dataclass(frozen=True)
class PhaseStats:
    """One phase over several runs."""

    name: str
    title: str
    median_ns: int
    min_ns: int
    max_ns: int
    runs: int


@dataclass(frozen=True)
class Summary:
    """Medians per phase over runs of one kind (cold or warm)."""

    cold: bool
    runs: int
    phases: tuple
    median_total_ns: int
    median_client_ns: int

    def phase(self, name):
        for p in self.phases:
            if p.name == name:
                return p
        return None

    def to_dict(self):
        return {"cold": self.cold, "runs": self.runs,
                "median_total_ns": self.median_total_ns,
                "median_client_ns": self.median_client_ns,
                "phases": [p.__dict__ for p in self.phases]}


def summarize(startups, cold):
    """Medians per phase of the runs in ``startups`` with that ``cold``."""
    runs = [s for s in startups if s.cold == cold]
    if not runs:
        return None
    phases = []
    for name in PHASE_NAMES:
        durs = [s.phase(name).duration_ns for s in runs if s.phase(name)]
        if not durs:
            continue
        title = next(s.phase(name).title for s in runs if s.phase(name))
        # A phase missing from a run took no time in it.
        durs += [0] * (len(runs) - len(durs))
        phases.append(PhaseStats(name, title, int(statistics.median(durs)),
                                 min(durs), max(durs), len(runs)))
    clients = [s.client_ns for s in runs if s.client_ns is not None]
    return Summary(
        cold=cold, runs=len(runs), phases=tuple(phases),
        median_total_ns=int(statistics.median(s.total_ns for s in runs)),
        median_client_ns=int(statistics.median(clients)) if clients else 0)


@dataclass(frozen=True)
class StartupResult:
    """What :func:`trace_startup` measured."""

    runs: tuple
    warm: Summary = None
    cold: Summary = None
    attach_s: float = 0.0
    mechanisms: dict = None
    dropped_events: int = 0

    def to_dict(self, verbose=False):
        return {
            "attach_s": self.attach_s,
            "mechanisms": self.mechanisms,
            "dropped_events": self.dropped_events,
            "runs": [r.to_dict(verbose) for r in self.runs],
            "warm": self.warm.to_dict() if self.warm else None,
            "cold": self.cold.to_dict() if self.cold else None,
        }


def trace_startup(run_args=None, *, runs=1, cold=False, progress=None,
                  tracer=None):
    """Start containers and break each start into kernel phases.

    ``run_args`` are ``docker run`` arguments (image, command and options;
    default: the built-in busybox image running ``true``). With ``cold``,
    each of the ``runs`` is done twice, once after dropping the page cache
    and once warm. ``progress(i, n)`` is called before each start. Every
    container started is removed again.
    """
    from dockertrace.runargs import parse_run_args

    spec = parse_run_args(list(run_args or [DEFAULT_IMAGE,
                                            *DEFAULT_COMMAND]))
    t0 = time.monotonic()
    own = tracer is None
    if own:
        tracer = StartupTracer()
    try:
        attach_s = time.monotonic() - t0
        from dockertrace.docker_api import client as docker_client
        client = docker_client()
        plan = []
        for _ in range(runs):
            if cold:
                plan.append(True)
            plan.append(False)
        results = []
        for i, is_cold in enumerate(plan):
            if progress:
                progress(i, len(plan))
            results.append(start_one(tracer, client, spec, cold=is_cold))
        return StartupResult(
            runs=tuple(results), warm=summarize(results, False),
            cold=summarize(results, True), attach_s=attach_s,
            mechanisms=tracer.mechanisms,
            dropped_events=tracer.dropped_events)
    finally:
        if own:
            tracer.close()


def watch_startups(*, duration_s=None, tracer=None, stop=None):
    """Yield a :class:`Startup` for every container that starts.

    Runs until ``duration_s`` has passed, ``stop`` (a threading.Event) is
    set, or the caller stops iterating. Without a client request to time,
    each start runs from the daemon's first overlay mount to the exec of
    the container's command.
    """
    import queue

    from dockertrace.startup.assemble import (Attribution,
                                              is_container_exec)
    from dockertrace.startup.tracer import _WATCH_KEEP_NS

    own = tracer is None
    if own:
        tracer = StartupTracer()
    done = queue.Queue()
    attr = Attribution()

    def on_event(ev):
        owner = attr.feed(ev)
        if owner is not None and is_container_exec(ev):
            done.put((owner, ev.ts_ns))

    tracer.add_listener(on_event)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        from dockertrace.docker_api import client as docker_client
        client = docker_client()
        while stop is None or not stop.is_set():
            left = 0.2
            if deadline is not None:
                left = min(left, deadline - time.monotonic())
                if left <= 0:
                    break
            try:
                cid, ts = done.get(timeout=left)
            except queue.Empty:
                continue
            name, image = _describe(client, cid)
            yield assemble(tracer.events(since_ns=ts - _WATCH_KEEP_NS), cid,
                           name=name, image=image,
                           mechanisms=tracer.mechanisms,
                           dropped_events=tracer.dropped_events)
            tracer.forget(time.monotonic_ns() - _WATCH_KEEP_NS)
    finally:
        if own:
            tracer.close()


def _describe(client, cid):
    """Name and image of a container, or blanks if it is already gone."""
    import docker.errors

    try:
        c = client.containers.get(cid)
    except docker.errors.NotFound:
        return "", ""
    image = c.attrs.get("Config", {}).get("Image", "")
    return c.name, image
