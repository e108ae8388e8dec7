"""The container start tracer: BPF attached, containers started, phases
assembled.

Import order matters for the time to attach: the BPF object is loaded and
attached before docker-py (and the requests stack under it) is imported.
"""

import logging
import os
import threading
import time

from dockertrace.startup.assemble import Attribution, assemble
from dockertrace.startup.assemble import is_container_exec
from dockertrace.signals import deferred
from dockertrace.startup.events import decode

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "dockertrace-busybox:latest"
DEFAULT_COMMAND = ("true",)

# How long to keep events in --watch mode: a start takes well under a
# second here, and a few seconds covers a slow one on a loaded host.
_WATCH_KEEP_NS = 10_000_000_000
# How long to wait for a container's command to exec after its start call
# returned (the exec usually comes first, but nothing orders the two).
_EXEC_WAIT_S = 3.0
DROP_CACHES = "/proc/sys/vm/drop_caches"


class StartupTracer:
    """Attach the startup BPF program and collect its events.

    Use as a context manager; leaving it detaches everything. Events are
    read by a background thread.
    """

    def __init__(self, *, allow=None):
        from dockertrace import engine
        from dockertrace._cext import ffi

        self._ffi = ffi
        self._obj = engine.BpfObject("startup", allow=allow)
        self._lock = threading.Lock()
        self._events = []
        self._listeners = []
        self._stop = threading.Event()
        self._error = None
        self._rb = self._obj.ring_buffer(self._on_record)
        self._thread = threading.Thread(target=self._poll,
                                        name="dockertrace-startup",
                                        daemon=True)
        self._thread.start()

    @property
    def mechanisms(self):
        return dict(self._obj.mechanisms)

    @property
    def dropped_events(self):
        return self._obj.dropped_events

    def _on_record(self, data):
        ev = decode(self._ffi, data)
        with self._lock:
            self._events.append(ev)
            listeners = list(self._listeners)
        for fn in listeners:
            fn(ev)
        return 0

    def _poll(self):
        # A failure here must not pass silently: it is kept and raised in
        # the caller's thread by the next call to events().
        try:
            while not self._stop.is_set():
                # Most events do not wake the reader (see startup.bpf.c),
                # so a poll that timed out still collects what is there.
                if self._rb.poll(100) == 0:
                    self._rb.consume()
        except Exception as err:  # noqa: BLE001 - re-raised by events()
            log.debug("ring buffer reader failed", exc_info=True)
            self._error = err

    def add_listener(self, fn):
        with self._lock:
            self._listeners.append(fn)

    def events(self, since_ns=0):
        if self._error is not None:
            from dockertrace.errors import TraceError
            raise TraceError(f"reading startup events failed: "
                             f"{self._error}") from self._error
        with self._lock:
            return [e for e in self._events if e.ts_ns >= since_ns]

    def forget(self, before_ns):
        """Drop events older than ``before_ns`` (bounded memory)."""
        with self._lock:
            self._events = [e for e in self._events if e.ts_ns >= before_ns]

    def close(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._obj.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_for_exec(self, container_id, timeout_s=_EXEC_WAIT_S):
        """Wait until the container's command has been exec'd."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            attr = Attribution()
            for ev in sorted(self.events(), key=lambda e: e.start_ns):
                owner = attr.feed(ev)
                if owner == container_id and is_container_exec(ev):
                    return True
            time.sleep(0.02)
        return False


def drop_page_cache():
    """Write back and drop the page cache, for a cold start."""
    os.sync()
    try:
        with open(DROP_CACHES, "w") as f:
            f.write("3\n")
    except PermissionError as err:
        from dockertrace.errors import AccessDenied
        raise AccessDenied("dropping the page cache for a cold start") \
            from err


def _create(client, spec):
    import docker.errors

    from dockertrace.errors import ContainerFailed

    from dockertrace.docker_api import owned

    try:
        return client.containers.create(
            spec.image, spec.command, **owned(spec.create_kwargs, "startup"))
    except docker.errors.ImageNotFound as err:
        raise ContainerFailed(
            f"image {spec.image} is not on this host; build or load it "
            "first (dockertrace never pulls; scripts/setup.sh builds "
            f"{DEFAULT_IMAGE})") from err
    except docker.errors.APIError as err:
        raise ContainerFailed(
            f"the daemon refused to create the container: "
            f"{err.explanation or err}; check the docker run options")\
            from err


def _start(container):
    import docker.errors

    from dockertrace.errors import ContainerFailed

    try:
        container.start()
    except docker.errors.APIError as err:
        raise ContainerFailed(
            f"the container did not start: {err.explanation or err}; "
            "check the image's command and the docker run options") \
            from err


def _remove(container):
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as err:
        log.warning("could not remove container %s: %s",
                    container.id[:12], err)


def start_one(tracer, client, spec, *, cold=False):
    """Create and start one container from ``spec`` and trace its start.

    The container is removed before this returns, whatever happens.
    """
    if cold:
        drop_page_cache()
    container = None
    try:
        t0 = time.monotonic_ns()
        with deferred():
            container = _create(client, spec)
        _start(container)
        t1 = time.monotonic_ns()
        if not tracer.wait_for_exec(container.id):
            log.warning("no exec seen for container %s",
                        container.id[:12])
    finally:
        if container is not None:
            _remove(container)
    return assemble(tracer.events(since_ns=t0 - 1_000_000), container.id,
                    client_start_ns=t0, client_end_ns=t1,
                    name=container.name, image=spec.image, cold=cold,
                    mechanisms=tracer.mechanisms,
                    dropped_events=tracer.dropped_events)
