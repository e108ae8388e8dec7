"""OverlayFS copy-ups of containers, live, and the layers behind them.

>>> import dockertrace
>>> for ev in dockertrace.trace_copyups(duration_s=10):
...     print(ev.container_name, ev.path, ev.size_bytes, ev.latency_ns)

or, for a summary at the end::

    with CopyupTracer() as t:
        for ev in t.events(duration_s=10):
            ...
        print(t.summary())
"""

import os
from dataclasses import asdict, dataclass
from typing import Optional

from dockertrace.copyup.assemble import (  # noqa: F401
    LIMITS, ContainerSummary, CopyUp, FileStat, Summary, summarize)
from dockertrace.copyup.layers import (  # noqa: F401
    COPY_OPTIONS, OverlayMount, dir_size, mounts)
from dockertrace.copyup.tracer import CopyupTracer  # noqa: F401


def trace_copyups(containers=None, *, duration_s=None, stop=None,
                  tracer=None, **kwargs):
    """Yield a :class:`CopyUp` for every copy-up, as it happens.

    ``containers`` (names or ids) restricts them to those containers.
    Runs until ``duration_s`` has passed, ``stop`` (a threading.Event) is
    set, or the caller stops iterating. Other keyword arguments go to
    :class:`CopyupTracer`.
    """
    own = tracer is None
    if own:
        tracer = CopyupTracer(containers=containers, **kwargs)
    try:
        yield from tracer.events(duration_s=duration_s, stop=stop)
    finally:
        if own:
            tracer.close()


@dataclass(frozen=True)
class Layer:
    role: str               # "upper" or "lower"
    path: str               # as given to the mount
    real_path: str          # with symlinks resolved
    size_bytes: Optional[int]
    files: Optional[int]


@dataclass(frozen=True)
class Layers:
    """A container's OverlayFS rootfs, from the kernel's mount table."""

    container_id: str
    container_name: str
    mount_point: str
    work_dir: Optional[str]
    layers: tuple
    #: The options that decide what a write copies: value per name.
    copy_options: dict
    #: Every superblock option as the mount table lists it.
    options: tuple
    source: str             # which mountinfo it was read from

    def to_dict(self):
        d = asdict(self)
        d["layers"] = [asdict(x) for x in self.layers]
        d["options"] = [f"{k}={v}" if v else k for k, v in self.options]
        return d

    @property
    def whole_file_copies(self):
        """True when a write, chmod or touch of a lower file copies all
        of it (metacopy off)."""
        return self.copy_options.get("metacopy") != "on"


def layers_of(ref, *, sizes=True, resolver=None):
    """The OverlayFS layers of container ``ref`` (name or id).

    Raises :class:`dockertrace.NoSuchContainer` for an unknown container
    and :class:`dockertrace.TraceError` when its rootfs is no overlay
    mount (another storage driver, or it is not running).
    """
    from dockertrace.errors import TraceError
    from dockertrace.identity import Resolver

    own = resolver is None
    resolver = resolver or Resolver()
    try:
        info = resolver.lookup(ref)
    finally:
        if own:
            resolver.close()

    mount, source = None, ""
    if info.merged_dir:
        for m in mounts("self"):
            if m.mount_point == info.merged_dir:
                mount, source = m, "/proc/self/mountinfo"
    if mount is None and info.init_pid:
        for m in mounts(info.init_pid):
            if m.mount_point == "/":
                mount = m
                source = f"/proc/{info.init_pid}/mountinfo"
    if mount is None:
        raise TraceError(
            f"container {info.name} has no overlay mount in the mount "
            f"table (storage driver {info.graph_driver or 'unknown'}, "
            f"status {info.status}); only overlay2 rootfs have layers")

    layers = []
    for role, path in mount.layers():
        size = files = None
        if sizes:
            size, files = dir_size(path + "/")
        layers.append(Layer(role, path, os.path.realpath(path), size,
                            files))
    copy_opts = {name: mount.option(name) for name in COPY_OPTIONS}
    return Layers(container_id=info.id, container_name=info.name,
                  mount_point=mount.mount_point, work_dir=mount.work_dir,
                  layers=tuple(layers), copy_options=copy_opts,
                  options=mount.options, source=source)
