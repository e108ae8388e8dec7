"""Kernel feature probes: run once, cached, three outcomes each.

Each probe asks the running kernel rather than comparing version numbers:
it loads (and where cheap, attaches and detaches) the smallest program of
the kind in question.  The answer is SUPPORTED, NOT_SUPPORTED, or UNKNOWN
when the probe could not tell (for instance because bpf(2) itself is
denied), with a detail saying what was tried and which errno came back.

The whole set takes a few tens of milliseconds, most of it parsing the
kernel's BTF once.  Filesystem locations are module-level so that tests
can point them elsewhere.
"""

import dataclasses
import enum
import errno
import functools
import logging
import os
import pathlib
import time

from dockertrace.engine import raw
from dockertrace.engine.raw import lib

log = logging.getLogger(__name__)

BTF_PATH = "/sys/kernel/btf/vmlinux"
TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"
LSM_LIST = "/sys/kernel/security/lsm"

# Attach points the probes use: present on every kernel with the feature.
FENTRY_TARGET = "vfs_read"
TP_BTF_TARGET = "sched_process_exec"
LSM_TARGET = "file_open"


class Outcome(enum.Enum):
    SUPPORTED = "supported"
    NOT_SUPPORTED = "not supported"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class Probe:
    """The answer of one feature probe."""

    feature: str
    outcome: Outcome
    detail: str
    errno: int = 0

    @property
    def supported(self):
        return self.outcome is Outcome.SUPPORTED


#: Feature name -> what it is, in the order doctor shows them.
FEATURES = {
    "btf": "kernel BTF (CO-RE, tp_btf, fentry)",
    "bpf": "bpf(2) loads tracing programs",
    "ringbuf": "BPF ring buffer map",
    "tracepoint": "classic tracepoints (tp)",
    "raw_tp": "raw tracepoints (raw_tp)",
    "tp_btf": "BTF tracepoints (tp_btf)",
    "fentry": "fentry/fexit trampolines",
    "kprobe": "kprobes and kretprobes",
    "lsm": "BPF LSM programs",
    "task_iter": "BPF task iterator",
}


def _failed(feature, what, err):
    """A probe whose load or attach the kernel refused."""
    name = raw.errno_name(err.errno)
    return Probe(feature, Outcome.NOT_SUPPORTED,
                 f"{what} failed: {name}", err.errno)


def _unknown(feature, why, code=0):
    return Probe(feature, Outcome.UNKNOWN, why, code)


def _tracefs():
    """The mounted tracefs root, or None."""
    for root in TRACEFS_ROOTS:
        if os.path.isdir(os.path.join(root, "events")):
            return root
    return None


def _load_attach(feature, prog_type, attach_type=0, btf_id=0,
                 attach=None, what=""):
    """Load a trivial program, attach it with ``attach(fd)``, undo both."""
    try:
        fd = raw.prog_load_trivial(prog_type, attach_type, btf_id)
    except OSError as err:
        return _failed(feature, f"loading {what}", err)
    try:
        if attach is None:
            return Probe(feature, Outcome.SUPPORTED, f"loaded {what}")
        try:
            link = attach(fd)
        except OSError as err:
            return _failed(feature, f"attaching {what} (it loaded)", err)
        os.close(link)
        return Probe(feature, Outcome.SUPPORTED,
                     f"loaded and attached {what}")
    finally:
        os.close(fd)


def _probe_btf():
    if not os.path.exists(BTF_PATH):
        return Probe("btf", Outcome.NOT_SUPPORTED,
                     f"no {BTF_PATH} (kernel built without "
                     "CONFIG_DEBUG_INFO_BTF)"), None
    try:
        btf = raw.btf_load_vmlinux()
    except OSError as err:
        if err.errno in (errno.EPERM, errno.EACCES):
            return _unknown("btf", f"cannot read {BTF_PATH}: "
                            f"{raw.errno_name(err.errno)}", err.errno), None
        return _failed("btf", f"parsing {BTF_PATH}", err), None
    count = raw.btf_type_count(btf)
    return Probe("btf", Outcome.SUPPORTED,
                 f"parsed {BTF_PATH} ({count} types)"), btf


def _probe_bpf():
    # A tracepoint program needs CAP_BPF and CAP_PERFMON (or root), unlike a
    # socket filter, which unprivileged users may be allowed to load.
    try:
        fd = raw.prog_load_trivial(lib.BPF_PROG_TYPE_TRACEPOINT)
    except OSError as err:
        name = raw.errno_name(err.errno)
        if err.errno in (errno.EPERM, errno.EACCES):
            return Probe("bpf", Outcome.NOT_SUPPORTED,
                         f"bpf(BPF_PROG_LOAD) returned {name}: needs root "
                         "(CAP_BPF and CAP_PERFMON)", err.errno)
        if err.errno == errno.ENOSYS:
            return Probe("bpf", Outcome.NOT_SUPPORTED,
                         "no bpf(2) syscall (CONFIG_BPF_SYSCALL off)",
                         err.errno)
        return _unknown("bpf", f"loading a trivial tracepoint program "
                        f"failed: {name}", err.errno)
    os.close(fd)
    return Probe("bpf", Outcome.SUPPORTED,
                 "loaded a trivial tracepoint program")


def _probe_ringbuf():
    try:
        ok = raw.probe_map_type(lib.BPF_MAP_TYPE_RINGBUF)
    except OSError as err:
        return _unknown("ringbuf", "libbpf_probe_bpf_map_type failed: "
                        f"{raw.errno_name(err.errno)}", err.errno)
    if ok:
        return Probe("ringbuf", Outcome.SUPPORTED, "created a ringbuf map")
    return Probe("ringbuf", Outcome.NOT_SUPPORTED,
                 "kernel rejects BPF_MAP_TYPE_RINGBUF (needs Linux 5.8)")


def _probe_tracepoint():
    # Attaching needs the event ids tracefs publishes; the program type
    # itself was proven by the bpf probe.
    root = _tracefs()
    if root is None:
        return Probe("tracepoint", Outcome.NOT_SUPPORTED,
                     "tracefs not mounted (mount -t tracefs nodev "
                     f"{TRACEFS_ROOTS[0]})")
    return Probe("tracepoint", Outcome.SUPPORTED,
                 f"tracepoint programs load; events in {root}/events")


def _probe_raw_tp():
    return _load_attach(
        "raw_tp", lib.BPF_PROG_TYPE_RAW_TRACEPOINT,
        attach=lambda fd: raw.raw_tracepoint_open(TP_BTF_TARGET, fd),
        what=f"raw_tp/{TP_BTF_TARGET}")


def _btf_target(feature, btf, name, kind):
    """The BTF id of a probe's attach target, or a Probe saying why not."""
    if btf is None:
        return None, Probe(feature, Outcome.NOT_SUPPORTED,
                           "needs kernel BTF")
    type_id = raw.btf_find(btf, name, kind)
    if type_id is None:
        return None, _unknown(feature, f"{name} not in kernel BTF")
    return type_id, None


def _probe_tp_btf(btf):
    type_id, why = _btf_target("tp_btf", btf, "btf_trace_" + TP_BTF_TARGET,
                               lib.BTF_KIND_TYPEDEF)
    if why:
        return why
    return _load_attach(
        "tp_btf", lib.BPF_PROG_TYPE_TRACING, lib.BPF_TRACE_RAW_TP, type_id,
        attach=lambda fd: raw.raw_tracepoint_open(None, fd),
        what=f"tp_btf/{TP_BTF_TARGET}")


def _probe_fentry(btf):
    type_id, why = _btf_target("fentry", btf, FENTRY_TARGET,
                               lib.BTF_KIND_FUNC)
    if why:
        return why
    # fexit shares fentry's trampoline, so one answers for both.
    return _load_attach(
        "fentry", lib.BPF_PROG_TYPE_TRACING, lib.BPF_TRACE_FENTRY, type_id,
        attach=lambda fd: raw.raw_tracepoint_open(None, fd),
        what=f"fentry/{FENTRY_TARGET}")


def _probe_kprobe(objdir):
    root = _tracefs()
    events = root and os.path.exists(os.path.join(root, "kprobe_events"))
    if not os.path.isdir(KPROBE_PMU) and not events:
        return Probe("kprobe", Outcome.NOT_SUPPORTED,
                     f"kernel has no kprobes: no {KPROBE_PMU} and no "
                     "kprobe_events in tracefs (CONFIG_KPROBE_EVENTS off)")

    path = pathlib.Path(objdir) / "probes.bpf.o"
    if not path.exists():
        return _unknown("kprobe", f"kprobes present but {path} is missing "
                        "(run `make bpf`)")
    obj = raw.object_open(path)
    try:
        raw.object_load(obj)
        prog = raw.programs(obj)[0]
        link = raw.program_attach(prog)
        raw.link_destroy(link)
    except OSError as err:
        return _failed("kprobe", "loading and attaching kprobe/vfs_read",
                       err)
    finally:
        raw.object_close(obj)
    return Probe("kprobe", Outcome.SUPPORTED,
                 "loaded and attached kprobe/vfs_read")


def _probe_lsm(btf):
    type_id, why = _btf_target("lsm", btf, "bpf_lsm_" + LSM_TARGET,
                               lib.BTF_KIND_FUNC)
    if why:
        return why
    try:
        active = pathlib.Path(LSM_LIST).read_text().strip().split(",")
    except OSError:
        active = None
    if active is not None and "bpf" not in active:
        return Probe("lsm", Outcome.NOT_SUPPORTED,
                     "bpf is not among the active LSMs "
                     f"({','.join(active)}); boot with lsm=...,bpf")
    # An LSM program returning 0 allows everything, so attaching it for
    # an instant changes nothing.
    return _load_attach(
        "lsm", lib.BPF_PROG_TYPE_LSM, lib.BPF_LSM_MAC, type_id,
        attach=lambda fd: raw.raw_tracepoint_open(None, fd),
        what=f"lsm/{LSM_TARGET}")


def _probe_task_iter(btf):
    type_id, why = _btf_target("task_iter", btf, "bpf_iter_task",
                               lib.BTF_KIND_FUNC)
    if why:
        return why
    return _load_attach(
        "task_iter", lib.BPF_PROG_TYPE_TRACING, lib.BPF_TRACE_ITER, type_id,
        attach=lambda fd: raw.link_create(fd, 0, lib.BPF_TRACE_ITER),
        what="iter/task")


def _default_objdir():
    return pathlib.Path(__file__).resolve().parent.parent / "bpfobj"


def run_probes(objdir=None):
    """Run every probe now (uncached); feature name -> :class:`Probe`."""
    objdir = objdir or _default_objdir()
    start = time.monotonic()
    results = {}

    probe, btf = _probe_btf()
    results["btf"] = probe
    try:
        results["bpf"] = _probe_bpf()
        if results["bpf"].supported:
            results["ringbuf"] = _probe_ringbuf()
            results["tracepoint"] = _probe_tracepoint()
            results["raw_tp"] = _probe_raw_tp()
            results["tp_btf"] = _probe_tp_btf(btf)
            results["fentry"] = _probe_fentry(btf)
            results["kprobe"] = _probe_kprobe(objdir)
            results["lsm"] = _probe_lsm(btf)
            results["task_iter"] = _probe_task_iter(btf)
        else:
            # Without bpf(2) nothing else can be asked of the kernel.
            bpf = results["bpf"]
            for name in FEATURES:
                results.setdefault(name, _unknown(
                    name, "cannot probe: bpf(2) is not usable", bpf.errno))
    finally:
        if btf is not None:
            raw.btf_free(btf)

    elapsed_ms = (time.monotonic() - start) * 1e3
    log.debug("feature probes took %.1f ms", elapsed_ms)
    for p in results.values():
        log.debug("feature %s: %s (%s)", p.feature, p.outcome.value,
                  p.detail)
    return {name: results[name] for name in FEATURES}


@functools.lru_cache(maxsize=None)
def _cached():
    return run_probes()


def probe_all():
    """Every feature probe, run on first use and cached for the process."""
    return dict(_cached())


def probe(feature):
    """The cached :class:`Probe` of one feature."""
    return _cached()[feature]


def reset():
    """Forget the cached answers (tests, or after mounting tracefs)."""
    _cached.cache_clear()
