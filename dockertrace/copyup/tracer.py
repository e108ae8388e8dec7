"""The copy-up tracer: BPF attached, records read, copy-ups assembled.

The BPF object is loaded before docker-py is imported (the Engine API is
only needed to name containers), so attaching stays fast.
"""

import logging
import os
import queue
import threading
import time

from dockertrace.copyup.assemble import LIMITS, Context, assemble
from dockertrace.copyup.assemble import summarize
from dockertrace.copyup.events import Mech, decode
from dockertrace.copyup.layers import OverlayIndex

log = logging.getLogger(__name__)

#: Probe point of the copy-up itself (the syscall points are fixed).
COPY_POINT = "dt_cu_copy"

_MECH_NAMES = {"fentry": "fentry", "kprobe": "kprobe",
               "tp_btf": "tracepoint"}


def host_mntns():
    """This process's mount namespace: the host's when dockertrace runs
    next to dockerd, whose own overlay work (mounts, and the probes it
    makes at mount time) happens there. (pid 1's namespace is not always
    readable, even for root, in a sandbox.)"""
    try:
        return os.stat("/proc/self/ns/mnt").st_ino
    except OSError:
        return 0


class CopyupTracer:
    """Attach the copy-up BPF program and turn its records into
    :class:`~dockertrace.copyup.assemble.CopyUp` events.

    ``containers`` (names or ids) restricts the events to those
    containers. With ``containers_only`` (the default) tasks in the
    host's mount namespace are ignored in the kernel. ``on_event`` is
    called, in the reader thread, with each event; :meth:`events`
    yields them in the caller's thread. ``allow`` constrains the
    mechanism as for ``engine.BpfObject`` (tests force each one).

    Use as a context manager; leaving it detaches everything.
    """

    def __init__(self, *, containers=None, containers_only=True,
                 on_event=None, allow=None, resolver=None,
                 skip_mntns=None):
        from dockertrace import engine
        from dockertrace._cext import ffi

        t0 = time.monotonic()
        self._ffi = ffi
        self._obj = engine.BpfObject("copyup", allow=allow)
        try:
            cfg = ffi.new("struct dt_cu_cfg *")
            if skip_mntns is None:
                skip_mntns = host_mntns() if containers_only else 0
            cfg.skip_mntns = skip_mntns
            self._obj.map("dt_cu_cfg").update(0, cfg[0])
        except BaseException:
            self._obj.close()
            raise
        self.attach_s = time.monotonic() - t0
        self.started_ns = time.monotonic_ns()
        # Wall clock of a monotonic timestamp, for display.
        self._wall_offset_ns = time.time_ns() - time.monotonic_ns()

        self._resolver = resolver
        self._own_resolver = resolver is None
        self._resolver_lock = threading.Lock()
        self._wanted = None
        self._wanted_refs = tuple(containers or ())
        self._index = OverlayIndex()
        self._names = {}
        self._lock = threading.Lock()
        self._events = []
        self._queue = queue.Queue()
        self._listeners = [on_event] if on_event else []
        self._stop = threading.Event()
        self._error = None
        self.discarded = 0
        self._ctx = Context(mechanism=self.mechanism,
                            mount_for=self._mount_for,
                            container_for=self._container_for)
        if self._wanted_refs:
            self._wanted = self._resolve_wanted(self._wanted_refs)
        if self._resolver is None:
            warm = threading.Thread(target=self._warm_up, daemon=True,
                                    name="dockertrace-copyup-names")
            warm.start()
        self._rb = self._obj.ring_buffer(self._on_record)
        self._thread = threading.Thread(target=self._poll,
                                        name="dockertrace-copyup",
                                        daemon=True)
        self._thread.start()

    # What is in use

    @property
    def mechanism(self):
        """``fentry``, ``kprobe`` or ``tracepoint``."""
        m = self._obj.mechanisms.get(COPY_POINT)
        return _MECH_NAMES.get(m, m or "none")

    @property
    def limits(self):
        """What the mechanism in use cannot measure ("" for nothing)."""
        return LIMITS.get(self.mechanism, "")

    @property
    def mechanisms(self):
        return dict(self._obj.mechanisms)

    @property
    def failures(self):
        return dict(self._obj.failures)

    @property
    def dropped_events(self):
        return self._obj.dropped_events

    def wall_ns(self, ts_ns):
        return ts_ns + self._wall_offset_ns

    # Context for assembly

    def _get_resolver(self):
        with self._resolver_lock:
            if self._resolver is None:
                from dockertrace.identity import Resolver
                self._resolver = Resolver()
            return self._resolver

    def _resolve_wanted(self, refs):
        ids = set()
        for ref in refs:
            ids.add(self._get_resolver().lookup(ref).id)
        return ids

    def _container_for(self, raw):
        if raw.cgroup_id in self._names:
            return self._names[raw.cgroup_id]
        from dockertrace.errors import Error
        from dockertrace.identity import parse_cgroup_path

        # The cgroup's name (from the kernel, in the record) gives the
        # id even when the container is gone; the daemon adds the name
        # while it still knows the container.
        ref = parse_cgroup_path("/" + raw.cgroup) if raw.cgroup else None
        info = None
        try:
            if ref is not None:
                info = self._get_resolver().resolve_id(ref.container_id)
            if info is None:
                info = self._get_resolver().resolve_cgroup_id(
                    raw.cgroup_id)
        except Error as err:
            # Without the daemon (a bare overlay, a kernel test VM) the
            # events are still worth having, just without names.
            log.debug("cgroup %d not resolved: %s", raw.cgroup_id, err)
        if info is not None:
            ans = (info.id, info.name)
        elif ref is not None:
            ans = (ref.container_id, None)
        else:
            ans = None
        if info is not None or ref is None:
            self._names[raw.cgroup_id] = ans
        return ans

    def _warm_up(self):
        # Connecting to the daemon (and importing docker-py) takes a few
        # hundred ms: do it now, so the first copy-up of a short-lived
        # container is named before the container is gone.
        from dockertrace.errors import Error
        try:
            self._get_resolver().tree.refresh()
            # An id no container has: connects, and answers None.
            self._get_resolver().resolve_id("0" * 64)
        except Error as err:
            log.debug("no Engine API for container names: %s", err)

    def _mount_for(self, raw):
        if raw.mech is Mech.TP:
            return self._index.lookup(raw.wd_dev, raw.wd_ino, raw.tgid,
                                      raw.mntns)
        return self._index.root_of(raw.tgid, raw.mntns)

    # Reading

    def _on_record(self, data):
        raw = decode(self._ffi, data)
        ev = assemble(raw, self._ctx)
        if ev is None:
            self.discarded += 1
            log.debug("not a copy-up (work dir of no overlay): %s", raw)
            return 0
        if self._wanted is not None and ev.container_id not in self._wanted:
            return 0
        with self._lock:
            self._events.append(ev)
            listeners = list(self._listeners)
        self._queue.put(ev)
        for fn in listeners:
            fn(ev)
        return 0

    def _poll(self):
        # A failure here is kept and raised in the caller's thread.
        try:
            while not self._stop.is_set():
                self._rb.poll(100)
        except Exception as err:  # noqa: BLE001 - re-raised by check()
            log.debug("ring buffer reader failed", exc_info=True)
            self._error = err
            self._queue.put(None)

    def check(self):
        if self._error is not None:
            from dockertrace.errors import TraceError
            raise TraceError(f"reading copy-up events failed: "
                             f"{self._error}") from self._error

    def add_listener(self, fn):
        with self._lock:
            self._listeners.append(fn)

    def events(self, *, duration_s=None, stop=None):
        """Yield copy-ups as they happen, until ``duration_s`` passed,
        ``stop`` (a threading.Event) is set or the caller stops."""
        deadline = None if duration_s is None else \
            time.monotonic() + duration_s
        while stop is None or not stop.is_set():
            self.check()
            left = 0.2
            if deadline is not None:
                left = min(left, deadline - time.monotonic())
                if left <= 0:
                    return
            try:
                ev = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if ev is not None:
                yield ev

    def seen(self, since_ns=0):
        """Every copy-up so far (from ``since_ns``, monotonic)."""
        self.check()
        with self._lock:
            return [e for e in self._events if e.ts_ns >= since_ns]

    def settle(self, quiet_s=0.3, timeout_s=5.0):
        """Wait until no record arrived for ``quiet_s`` (the reader
        drained what the kernel had sent)."""
        deadline = time.monotonic() + timeout_s
        last = len(self.seen())
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            n = len(self.seen())
            if n != last:
                last, quiet_since = n, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return

    def summary(self, top=5):
        """A per-container summary of every copy-up seen so far."""
        return summarize(self.seen(), top=top, mechanism=self.mechanism,
                         dropped_events=self.dropped_events,
                         duration_s=(time.monotonic_ns() -
                                     self.started_ns) / 1e9)

    def close(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._obj.close()
        if self._own_resolver and self._resolver is not None:
            self._resolver.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
