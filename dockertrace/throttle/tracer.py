"""Sources of bandwidth snapshots: the BPF program, or cpu.stat polled.

Both deliver the same records (events.Snapshot and friends) to a
callback from a background thread, and say which mechanism they use.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Dict, Iterable, Optional

from dockertrace.errors import TraceError
from dockertrace.throttle import cgroupfs
from dockertrace.throttle.events import Snapshot, decode

log = logging.getLogger(__name__)

#: Probe points that may be missing: exact moments need fentry or
#: kprobes, per-thread time is switched off on request.
MOMENT_POINTS = ("dt_th_throttle", "dt_th_unthrottle")
THREAD_POINT = "dt_th_runtime"
PERIOD_POINT = "dt_th_period"

#: How often the cpu.stat fallback reads the counters.
DEFAULT_POLL_S = 0.1

_ALL = ("fentry", "kprobe", "tp_btf", "raw_tp", "tp")


class _Reader:
    """A background thread that runs ``step`` until closed; a failure is
    kept and raised in the caller's thread by :meth:`check`."""

    def __init__(self, name: str, step: Callable[[], None]):
        self._step = step
        self._stop = threading.Event()
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=name,
                                        daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while not self._stop.is_set():
                self._step()
        except Exception as err:  # noqa: BLE001 - re-raised by check()
            log.debug("throttle reader failed", exc_info=True)
            self.error = err

    def check(self):
        if self.error is not None:
            raise TraceError(f"reading throttling records failed: "
                             f"{self.error}") from self.error

    def stop(self):
        self._stop.set()
        if self._thread.is_alive() and \
                self._thread is not threading.current_thread():
            self._thread.join(timeout=2)


class BpfSource:
    """The throttle BPF object, attached.

    ``cgroup_ids`` limits tracing to those groups (their ids in the CPU
    controller's hierarchy); None traces every group with a quota.
    ``threads`` turns per-thread CPU time on.  ``allow``/``exclude`` are
    the engine's (tests force mechanisms with them).
    """

    def __init__(self, on_record, *, cgroup_ids: Optional[Iterable[int]]
                 = None, threads: bool = True, allow=None, exclude=None,
                 features=None):
        from dockertrace import engine
        from dockertrace._cext import ffi

        self._ffi = ffi
        self._on_record = on_record
        exclude = _merge_exclude(exclude, threads)
        self._obj = engine.BpfObject(
            "throttle", allow=allow, exclude=exclude, features=features,
            optional=MOMENT_POINTS + (THREAD_POINT,))
        try:
            self._configure(cgroup_ids, threads)
            self._rb = self._obj.ring_buffer(self._record)
        except BaseException:
            self._obj.close()
            raise
        self._reader = _Reader("dockertrace-throttle", self._poll)

    def _configure(self, cgroup_ids, threads):
        ffi = self._ffi
        if cgroup_ids is not None:
            want = self._obj.map("dt_th_want")
            for cgid in cgroup_ids:
                want.update(cgid.to_bytes(8, "little"), b"\x01")
        cfg = ffi.new("struct dt_th_config *")
        cfg.filter = int(cgroup_ids is not None)
        cfg.threads = int(bool(threads) and self.threads)
        cfg.ncpus = _possible_cpus()
        self._obj.map("dt_th_cfg").update(0, cfg[0])

    def _record(self, data):
        self._on_record(decode(self._ffi, data))

    def _poll(self):
        # Thread and moment records do not wake the reader; a poll that
        # timed out still collects them.
        if self._rb.poll(100) == 0:
            self._rb.consume()

    @property
    def mechanisms(self) -> Dict[str, Optional[str]]:
        return dict(self._obj.mechanisms)

    @property
    def mechanism(self) -> str:
        """``fentry`` or ``kprobe`` when the exact throttle moments are
        traced, else the period timer's (``tp_btf`` or ``raw_tp``)."""
        mech = self._obj.mechanisms
        moments = {mech.get(p) for p in MOMENT_POINTS}
        if len(moments) == 1 and None not in moments:
            return moments.pop()
        return mech[PERIOD_POINT]

    @property
    def exact_moments(self) -> bool:
        return all(self._obj.mechanisms.get(p) for p in MOMENT_POINTS)

    @property
    def threads(self) -> bool:
        return self._obj.mechanisms.get(THREAD_POINT) is not None

    @property
    def dropped_events(self) -> int:
        return self._obj.dropped_events

    @property
    def failures(self):
        return dict(self._obj.failures)

    def check(self):
        self._reader.check()

    def flush(self):
        """Deliver what is in the ring buffer now."""
        self._reader.check()
        self._rb.consume()

    def close(self):
        self._reader.stop()
        self._obj.close()


def _merge_exclude(exclude, threads):
    """The caller's ``exclude``, plus every mechanism of the per-thread
    point when threads are off (so it is not even attached)."""
    if threads:
        return exclude
    if exclude is None:
        return {THREAD_POINT: _ALL}
    if isinstance(exclude, dict):
        out = dict(exclude)
        out[THREAD_POINT] = _ALL
        return out
    # One set for every point: spell it out per point.
    from dockertrace import engine
    points = engine.loader.plan("throttle")
    out = {p: tuple(exclude) for p in points}
    out[THREAD_POINT] = _ALL
    return out


def _possible_cpus() -> int:
    try:
        from dockertrace.engine import raw
        return raw.num_possible_cpus()
    except Exception:  # noqa: BLE001 - the C layer may be missing
        return os.cpu_count() or 1


class PollSource:
    """cpu.stat (and CPU usage) of each group, read every ``interval_s``.

    ``groups`` maps a cgroup id to a ``(cpu, cpuacct)`` pair of
    :class:`~dockertrace.throttle.cgroupfs.ControllerDir` (cpuacct may be
    None).  A snapshot is made only when the kernel counted a period
    since the last one, like the timer that stops while a group idles.
    """

    mechanism = "cpu.stat"
    exact_moments = False
    threads = False
    dropped_events = 0
    failures: dict = {}

    def __init__(self, on_record, groups, *,
                 interval_s: float = DEFAULT_POLL_S):
        self._on_record = on_record
        self._groups = dict(groups)
        self.interval_s = interval_s
        self._last: Dict[int, int] = {}
        self._next = time.monotonic()
        self._sample()
        self._reader = _Reader("dockertrace-throttle-poll", self._step)

    @property
    def mechanisms(self):
        return {PERIOD_POINT: "cpu.stat"}

    def _step(self):
        self._next += self.interval_s
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            # Fell behind (a loaded machine): do not try to catch up.
            self._next = time.monotonic()
        self._sample()

    def _sample(self):
        for cgid, (cpu, acct) in list(self._groups.items()):
            try:
                stat = cgroupfs.read_cpu_stat(cpu, acct)
                bw = cgroupfs.read_bandwidth(cpu)
            except OSError:
                # The cgroup went away (container removed).
                self._groups.pop(cgid, None)
                continue
            ts = time.monotonic_ns()
            if self._last.get(cgid) == stat.nr_periods:
                continue
            self._last[cgid] = stat.nr_periods
            self._on_record(Snapshot(
                ts_ns=ts, cgroup_id=cgid, period_ns=bw.period_ns,
                quota_ns=bw.quota_ns, nr_periods=stat.nr_periods,
                nr_throttled=stat.nr_throttled,
                throttled_time_ns=stat.throttled_ns,
                usage_ns=stat.usage_ns, burst_ns=bw.burst_ns,
                burst_time_ns=stat.burst_ns, nr_burst=stat.nr_bursts))

    def check(self):
        self._reader.check()

    def flush(self):
        self._reader.check()

    def close(self):
        self._reader.stop()
