"""What every benchmark section needs: containers that are always removed,
cgroup and /proc readers, progress reports and the machine's description.
"""

import contextlib
import logging
import os
import platform
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

from dockertrace.bench.model import Environment
from dockertrace.bench.parse import (CpuStat, Schedstat, SmapsRollup,
                                     page_cache_bytes, parse_cpu_stat,
                                     parse_schedstat, parse_smaps_rollup)

from dockertrace.signals import deferred

log = logging.getLogger(__name__)

#: Value of the ``dockertrace.owner`` label on everything the suite makes.
OWNER = "bench"
#: Label that ties containers, networks and volumes to one suite run, so a
#: run removes exactly its own leftovers even when an interrupt came
#: between a create call and its answer.
SESSION_LABEL = "dockertrace.bench.session"
#: When set, the session id of every ``Containers`` in this process
#: (instead of a random one), so that a caller running the suite in a
#: child process can find exactly that run's objects among others'.
SESSION_ENV = "DOCKERTRACE_BENCH_SESSION"
#: Prefix of the names of everything the suite creates.
NAME_PREFIX = "dockertrace-bench-"

DEFAULT_IMAGE = "dockertrace-busybox:latest"
BIGFILES_IMAGE = "dockertrace-bigfiles:latest"

#: Roots the readers use; tests point them at fixture trees.
PROC_ROOT = "/proc"
CGROUP_ROOT = "/sys/fs/cgroup"

# How long a workload container may run before it counts as hung. The
# longest workload here takes a few seconds; a loaded 2-core machine can
# make it several times slower.
_WAIT_S = 120


@dataclass(frozen=True)
class Progress:
    """One step of a long run: ``done`` of ``total`` steps of ``section``
    finished, ``message`` says what comes next."""

    section: str
    message: str
    done: int
    total: int


class Reporter:
    """Counts a section's steps and passes them to a progress callback."""

    def __init__(self, section: str, total: int,
                 callback: Optional[Callable[[Progress], None]]):
        self.section = section
        self.total = total
        self.done = 0
        self._callback = callback

    def step(self, message: str):
        """Report that the next step, ``message``, begins."""
        log.debug("%s %d/%d: %s", self.section, self.done, self.total,
                  message)
        if self._callback:
            self._callback(Progress(self.section, message,
                                    min(self.done, self.total), self.total))
        self.done += 1

    def finish(self):
        if self._callback:
            self._callback(Progress(self.section, "done", self.total,
                                    self.total))


class WorkloadFailed(RuntimeError):
    """A workload container exited non-zero or produced no result."""


def _on_sigterm(signum, frame):
    # SystemExit unwinds through every ``with Containers()``, like Ctrl-C.
    raise SystemExit(128 + signal.SIGTERM)


class Containers:
    """Start the suite's containers and remove them on every way out.

    Everything made through it (containers, networks, volumes) carries
    ``dockertrace.owner=bench`` and a per-run session label and is named
    ``dockertrace-bench-...``. Leaving the ``with`` block, by return,
    exception, Ctrl-C or SIGTERM (turned into ``SystemExit(143)`` while
    the block runs, unless the application has its own handler), removes
    all of it, including objects whose create call was interrupted
    before it answered (found by the session label).
    """

    def __init__(self, client=None):
        self.session = (os.environ.get(SESSION_ENV)
                        or uuid.uuid4().hex[:8])
        self._client = client
        self._containers = []
        self._networks = []
        self._volumes = []
        self._old_sigterm = None

    @property
    def client(self):
        if self._client is None:
            from dockertrace.docker_api import client
            self._client = client()
        return self._client

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
            self._old_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
        return self

    def __exit__(self, *exc):
        # A second Ctrl-C must not cut the cleanup short: block the
        # signals while removing; a pending one is delivered afterwards.
        blocked = {signal.SIGINT, signal.SIGTERM}
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            self.cleanup()
        finally:
            if self._old_sigterm is not None:
                if signal.getsignal(signal.SIGTERM) is _on_sigterm:
                    signal.signal(signal.SIGTERM, self._old_sigterm)
                self._old_sigterm = None
            if in_main:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        return False

    def _labels(self, extra=None):
        from dockertrace.docker_api import OWNER_LABEL
        labels = {OWNER_LABEL: OWNER, SESSION_LABEL: self.session}
        labels.update(extra or {})
        return labels

    def name(self, hint: str) -> str:
        return f"{NAME_PREFIX}{self.session}-{hint}"

    def start(self, image: str, command, *, hint: str, **create_kwargs):
        """Create and start a container; return it, reloaded (``.attrs``
        has the pid and the network settings)."""
        import docker.errors

        from dockertrace.errors import ContainerFailed

        kw = dict(create_kwargs)
        kw["labels"] = self._labels(kw.get("labels"))
        kw.setdefault("name", self.name(hint))
        try:
            with deferred():
                c = self.client.containers.create(image, command,
                                                  detach=True, **kw)
                self._containers.append(c)
        except docker.errors.ImageNotFound as err:
            raise ContainerFailed(
                f"image {image} is not on this host; scripts/setup.sh "
                "builds the dockertrace-* images (nothing is pulled)") \
                from err
        except docker.errors.APIError as err:
            raise ContainerFailed(
                f"the daemon refused to create {kw['name']}: "
                f"{err.explanation or err}") from err
        try:
            c.start()
        except docker.errors.APIError as err:
            raise ContainerFailed(
                f"{kw['name']} did not start: {err.explanation or err}") \
                from err
        c.reload()
        return c

    def run(self, image: str, command, *, hint: str, timeout_s=_WAIT_S,
            **create_kwargs) -> str:
        """Run a container to its end and return its output (stdout and
        stderr interleaved as written). The container is removed."""
        c = self.start(image, command, hint=hint, **create_kwargs)
        code = self.wait(c, timeout_s)
        out = c.logs(stdout=True, stderr=True).decode(errors="replace")
        self.remove(c)
        if code != 0:
            raise WorkloadFailed(f"{c.name} exited with {code}: "
                                 f"{out.strip()[-300:]}")
        return out

    def wait(self, container, timeout_s=_WAIT_S) -> int:
        """Wait for ``container`` to exit; its exit code."""
        deadline = time.monotonic() + timeout_s
        while True:
            container.reload()
            state = container.attrs["State"]
            if state["Status"] in ("exited", "dead"):
                return state["ExitCode"]
            if time.monotonic() > deadline:
                raise WorkloadFailed(f"{container.name} still runs after "
                                     f"{timeout_s} s")
            time.sleep(0.05)

    def exec(self, container, command) -> str:
        """Run ``command`` in a running container; its output. Raises
        WorkloadFailed when it exits non-zero."""
        code, out = container.exec_run(command)
        text = out.decode(errors="replace")
        if code != 0:
            raise WorkloadFailed(f"{command!r} in {container.name} exited "
                                 f"with {code}: {text.strip()[-300:]}")
        return text

    def network(self, hint: str):
        """A user-defined bridge network, removed with the rest."""
        with deferred():
            net = self.client.networks.create(
                self.name(hint), driver="bridge", labels=self._labels())
            self._networks.append(net)
        return net

    def volume(self, hint: str):
        """A named local volume, removed with the rest."""
        with deferred():
            vol = self.client.volumes.create(self.name(hint),
                                             labels=self._labels())
            self._volumes.append(vol)
        return vol

    def remove(self, container):
        import docker.errors
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        with contextlib.suppress(ValueError):
            self._containers.remove(container)

    def cleanup(self):
        """Remove everything this run made. Best effort per object, but
        every failure is logged."""
        import docker.errors

        if not (self._containers or self._networks or self._volumes
                or self._client is not None):
            return
        # A fresh client: an interrupt may have left the old one's
        # connection in the middle of a request.
        try:
            from dockertrace.docker_api import client
            cli = client()
        except Exception:  # noqa: BLE001 - fall back to the old one
            log.warning("no new Engine API client for cleanup",
                        exc_info=True)
            cli = self.client
        flt = {"label": f"{SESSION_LABEL}={self.session}"}
        ids = {c.id for c in self._containers}
        # sparse: the list alone, no inspect per container; one that is
        # removed meanwhile would fail the whole listing otherwise.
        with contextlib.suppress(Exception):
            ids |= {c.id for c in cli.containers.list(all=True, sparse=True,
                                                      filters=flt)}
        for cid in ids:
            try:
                cli.api.remove_container(cid, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except Exception:  # noqa: BLE001 - keep removing the rest
                log.warning("could not remove container %s", cid[:12],
                            exc_info=True)
        self._containers.clear()
        nets = {n.id for n in self._networks}
        with contextlib.suppress(Exception):
            nets |= {n.id for n in cli.networks.list(filters=flt)}
        for nid in nets:
            try:
                cli.api.remove_network(nid)
            except docker.errors.NotFound:
                pass
            except Exception:  # noqa: BLE001
                log.warning("could not remove network %s", nid[:12],
                            exc_info=True)
        self._networks.clear()
        vols = {v.name for v in self._volumes}
        with contextlib.suppress(Exception):
            vols |= {v.name for v in cli.volumes.list(filters=flt)}
        for name in vols:
            try:
                cli.api.remove_volume(name, force=True)
            except docker.errors.NotFound:
                pass
            except Exception:  # noqa: BLE001
                log.warning("could not remove volume %s", name,
                            exc_info=True)
        self._volumes.clear()


def container_pid(container) -> int:
    """Host pid of a running container's first process."""
    container.reload()
    pid = container.attrs["State"]["Pid"]
    if not pid:
        raise WorkloadFailed(f"{container.name} is not running")
    return pid


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def read_smaps_rollup(pid: int) -> SmapsRollup:
    return parse_smaps_rollup(_read(f"{PROC_ROOT}/{pid}/smaps_rollup"))


def read_schedstat(pid: int) -> Schedstat:
    return parse_schedstat(_read(f"{PROC_ROOT}/{pid}/schedstat"))


def children(pid: int) -> list:
    """Pids of a process's children (of all its threads)."""
    kids = []
    for tid in os.listdir(f"{PROC_ROOT}/{pid}/task"):
        text = _read(f"{PROC_ROOT}/{pid}/task/{tid}/children")
        kids += [int(p) for p in text.split()]
    return kids


def cgroup_file(pid: int, controller: str, name: str) -> str:
    """Path of a cgroup file of ``pid``'s cgroup for ``controller``.

    A cgroup v1 hierarchy carrying the controller wins (this project's
    hosts are hybrid: v1 controllers, and a v2 tree without them); else
    the v2 tree. Mount points are read from mountinfo, not assumed.
    """
    from dockertrace.identity import cgroups

    layout = cgroups.cgroup_layout()
    lines = cgroups._proc_cgroup_lines(pid)
    mount = layout.v1_mount(controller)
    if mount is not None:
        for _hier, ctrls, path in lines:
            if controller in ctrls.split(","):
                return os.path.join(cgroups.cgroup_dir(path, mount), name)
    return os.path.join(cgroups.cgroup_dir(cgroups.cgroup_path_of_pid(pid)),
                        name)


def read_cpu_stat(path: str) -> CpuStat:
    return parse_cpu_stat(_read(path))


def read_page_cache(path: str) -> int:
    return page_cache_bytes(_read(path))


def environment(client=None) -> Environment:
    """Describe this machine, its kernel and its Docker for the report."""
    import dockertrace

    info, version = {}, {}
    if client is not None:
        try:
            info = client.info()
            version = client.version()
        except Exception:  # noqa: BLE001 - describe what we can
            log.warning("could not ask the daemon for its versions",
                        exc_info=True)
    comps = {c.get("Name", "").lower(): c.get("Version", "")
             for c in version.get("Components") or ()}
    features = {}
    try:
        from dockertrace import engine
        features = {k: getattr(v.outcome, "value", str(v.outcome))
                    for k, v in engine.probe_all().items()}
    except Exception:  # noqa: BLE001 - a probe failing is not fatal here
        log.debug("feature probes failed", exc_info=True)
    return Environment(
        kernel=platform.release(),
        os=_os_name(),
        docker_version=version.get("Version", ""),
        api_version=version.get("ApiVersion", ""),
        containerd_version=comps.get("containerd", ""),
        runc_version=comps.get("runc", ""),
        storage_driver=info.get("Driver", ""),
        cgroup_driver=info.get("CgroupDriver", ""),
        cgroup_version=str(info.get("CgroupVersion", "")),
        cpu_model=_cpu_model(),
        cpus=os.cpu_count() or 0,
        memory_bytes=_memory_bytes(),
        python=platform.python_version(),
        dockertrace_version=dockertrace.__version__,
        features=features)


def _os_name() -> str:
    try:
        for line in _read("/etc/os-release").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _cpu_model() -> str:
    try:
        for line in _read(f"{PROC_ROOT}/cpuinfo").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _memory_bytes() -> int:
    try:
        for line in _read(f"{PROC_ROOT}/meminfo").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rerun(section: str, runs: int, image: str) -> str:
    """The command that reproduces one section."""
    return (f"dockertrace bench --suite {section} --runs {runs} "
            f"--image {image}")


def figure_of(key: str, label: str, values, unit: str, detail: str = "",
              digits: int = 3):
    """A Figure with the median of ``values`` and (min, max) as spread."""
    from dockertrace.bench.model import Figure
    from dockertrace.bench.parse import median

    vals = [float(v) for v in values]
    return Figure(key, label, round(median(vals), digits), unit,
                  (round(min(vals), digits), round(max(vals), digits)),
                  detail)


def overlay_metacopy() -> Optional[bool]:
    """Whether overlayfs defaults to metacopy (copy-up of metadata only)
    on this host, or None when the module parameter cannot be read."""
    try:
        return _read("/sys/module/overlay/parameters/metacopy").strip() \
            in ("Y", "1")
    except OSError:
        return None
