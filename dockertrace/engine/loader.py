"""Loading a BPF object with one mechanism per probe point.

:class:`BpfObject` opens ``dockertrace/bpfobj/<name>.bpf.o``, groups its
programs into points (engine.points), picks for each point the best
mechanism the kernel supports (engine.features), switches the other
programs off, loads and attaches.  When the kernel refuses a point's
program after all, the object is reopened and that point retried with its
next mechanism; the reasons are logged and kept in ``failures``.
"""

import errno
import logging
import os
import pathlib
import re
import sys
import threading
import time

from dockertrace.engine import features as _features
from dockertrace.engine import lifecycle, points, raw
from dockertrace.engine.ringbuf import RingBuffer
from dockertrace.errors import (AccessDenied, FeatureNotSupported,
                                TraceError)

log = logging.getLogger(__name__)

#: Where the compiled objects live; tests may point it elsewhere.
OBJDIR = pathlib.Path(__file__).resolve().parent.parent / "bpfobj"

#: Objects in OBJDIR that are not tracers.
INTERNAL_OBJECTS = ("probes",)

EVENTS_MAP = "dt_events"
DROPS_MAP = "dt_drops"

_PERCPU_TYPES = frozenset(
    getattr(raw.lib, name) for name in (
        "BPF_MAP_TYPE_PERCPU_HASH", "BPF_MAP_TYPE_PERCPU_ARRAY",
        "BPF_MAP_TYPE_LRU_PERCPU_HASH"))

# How libbpf names the program it was loading when bpf_object__load fails
# ("prog 'dt_x': failed to load: -1", "prog 'dt_x': relo #3: ...").
_PROG_IN_LOG = re.compile(r"prog '([^']+)'")

_DETACH_THREADS = 8

_HINT = ("`dockertrace doctor` shows what this kernel supports; "
         "`dockertrace -v` shows the libbpf log")


def object_path(name, objdir=None):
    path = pathlib.Path(objdir or OBJDIR) / f"{name}.bpf.o"
    try:
        path.stat()
    except FileNotFoundError:
        raise TraceError(
            f"BPF object {name} not found at {path}; build it with "
            "`make bpf`") from None
    except PermissionError:
        # An install under a directory only root may enter (a private
        # clone, root's home) and a caller who is not root.
        raise AccessDenied(f"reading BPF object {path}") from None
    return path


def available_objects(objdir=None):
    """Names of the tracer objects that are built (probes excluded)."""
    objdir = pathlib.Path(objdir or OBJDIR)
    try:
        names = [p.name[:-len(".bpf.o")] for p in objdir.glob("*.bpf.o")]
    except PermissionError:     # as in object_path
        raise AccessDenied(f"listing BPF objects in {objdir}") from None
    return sorted(n for n in names if n not in INTERNAL_OBJECTS)


def _open(path):
    try:
        return raw.object_open(path)
    except OSError as err:
        raise TraceError(f"cannot open BPF object {path}: {err.strerror}; "
                         "rebuild it with `make bpf`",
                         errno=err.errno) from err


def _programs(obj):
    return {raw.program_name(p): p for p in raw.programs(obj)}


def _group(name, progs):
    try:
        return points.group_points(
            (n, raw.program_section(p)) for n, p in progs.items())
    except ValueError as err:
        raise TraceError(f"BPF object {name}: {err}") from err


def _mechanism_of(point, mech, progs):
    """What to report for a point: its mechanism, or a fixed one's kind."""
    if mech is not None or not point.fixed:
        return mech
    prog = progs[point.programs[None][0]]
    return points.section_kind(raw.program_section(prog))


def plan(name, *, features=None, allow=None, exclude=None, objdir=None):
    """``{point: mechanism}`` the object would use, without loading it.

    Decided from the feature probes alone, so a program the kernel would
    still refuse is not accounted for; a point with no usable mechanism
    maps to None.  Fixed points report the kind of their program
    (``"iter"``, ``"tp"``, ...).
    """
    features = _features.probe_all() if features is None else features
    obj = _open(object_path(name, objdir))
    try:
        progs = _programs(obj)
        grouped = _group(name, progs)
        chosen = points.choose(grouped, features, allow, exclude)
        return {p: _mechanism_of(grouped[p], (c or [None])[0], progs)
                if c else None for p, c in chosen.items()}
    finally:
        raw.object_close(obj)


class _PointFailed(Exception):
    """Loading or attaching one point's program failed; try the next."""

    def __init__(self, point, program, stage, err, log_tail):
        super().__init__(point)
        self.point = point
        self.program = program
        self.stage = stage
        self.err = err
        self.log_tail = log_tail

    @property
    def reason(self):
        why = f"{self.stage} {self.program} failed: " \
              f"{raw.errno_name(self.err.errno)}"
        if self.log_tail:
            why += f" ({self.log_tail})"
        return why


# Lines of libbpf's log that say nothing about the cause of a failure.
_LOG_NOISE = re.compile(
    r"^(failed to load|-- (BEGIN|END) PROG LOAD LOG|processed \d+ insns"
    r"|verification time|stack depth|permission error while running as"
    r"|skipped loading|$)")


def _log_tail(lines):
    """The last line of libbpf's log that tells a cause: the verifier's
    complaint, or libbpf's account of what the kernel returned."""
    for line in reversed("\n".join(lines).splitlines()):
        line = line.strip()
        if line.startswith("libbpf: "):
            line = line[len("libbpf: "):]
        line = re.sub(r"^prog '[^']+': ", "", line)
        if not _LOG_NOISE.match(line):
            return line[:200]
    return ""


class Map:
    """A BPF map of a loaded object, with bytes (or int) keys and values.

    Keys and values are ``bytes`` of the map's sizes, cffi cdata structs
    (copied as their bytes) or, where the size is 4 or 8, ints.  Lookups
    of per-CPU maps return a list with one ``bytes`` per possible CPU.
    """

    def __init__(self, bpf_map):
        self.name = raw.map_name(bpf_map)
        self.fd = raw.map_fd(bpf_map)
        self.type = raw.map_type(bpf_map)
        self.key_size = raw.map_key_size(bpf_map)
        self.value_size = raw.map_value_size(bpf_map)
        self.max_entries = raw.map_max_entries(bpf_map)
        self.percpu = self.type in _PERCPU_TYPES
        self._size = self.value_size
        if self.percpu:
            # The kernel hands per-CPU values out 8-byte aligned, one per
            # possible CPU.
            self._stride = (self.value_size + 7) & ~7
            self._ncpus = raw.num_possible_cpus()
            self._size = self._stride * self._ncpus

    def __repr__(self):
        return f"<Map {self.name} fd={self.fd}>"

    def _bytes(self, what, data, size):
        if isinstance(data, int):
            if size not in (1, 2, 4, 8):
                raise TypeError(f"map {self.name}: {what} is {size} bytes, "
                                "pass bytes")
            return data.to_bytes(size, sys.byteorder)
        if isinstance(data, raw.ffi.CData):
            if raw.ffi.typeof(data).kind in ("struct", "union"):
                data = raw.ffi.addressof(data)
            data = raw.ffi.buffer(data)[:]
        data = bytes(data)
        if len(data) != size:
            raise ValueError(f"map {self.name}: {what} must be {size} "
                             f"bytes, got {len(data)}")
        return data

    def _error(self, op, err):
        return TraceError(f"map {self.name}: {op} failed: {err.strerror}",
                          errno=err.errno)

    def update(self, key, value, flags=0):
        """Set ``key`` to ``value``; for a per-CPU map ``value`` may be a
        list with one value per possible CPU."""
        if self.percpu and isinstance(value, (list, tuple)):
            value = b"".join(
                self._bytes("value", v, self.value_size)
                .ljust(self._stride, b"\0") for v in value)
        try:
            raw.map_update(self.fd, self._bytes("key", key, self.key_size),
                           self._bytes("value", value, self._size), flags)
        except OSError as err:
            raise self._error("update", err) from err

    def lookup(self, key):
        """The value (bytes, or a list for per-CPU maps), or None."""
        try:
            data = raw.map_lookup(
                self.fd, self._bytes("key", key, self.key_size), self._size)
        except OSError as err:
            raise self._error("lookup", err) from err
        if data is None or not self.percpu:
            return data
        return [data[i * self._stride:i * self._stride + self.value_size]
                for i in range(self._ncpus)]

    def delete(self, key):
        """Remove ``key``; False if it was not there."""
        try:
            return raw.map_delete(self.fd,
                                  self._bytes("key", key, self.key_size))
        except OSError as err:
            raise self._error("delete", err) from err

    def keys(self):
        """Iterate over the keys (bytes).  A concurrent delete may restart
        the walk from the first key, as with any BPF map."""
        key = None
        while True:
            try:
                key = raw.map_next_key(self.fd, key, self.key_size)
            except OSError as err:
                raise self._error("iteration", err) from err
            if key is None:
                return
            yield key

    def items(self):
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value


def _destroy_link(name, link):
    try:
        raw.link_destroy(link)
    except OSError as err:
        log.debug("%s: bpf_link__destroy: %s", name, err)


def _destroy_links(name, links):
    """Detach ``links``, several at a time.

    Detaching a classic tracepoint waits for RCU grace periods inside the
    kernel (about 70 ms each on a small VM), and the wait partly overlaps
    between threads; the GIL is released during the call.
    """
    if len(links) < 2:
        for link in links:
            _destroy_link(name, link)
        return
    workers = []
    try:
        for i in range(min(_DETACH_THREADS, len(links))):
            t = threading.Thread(
                target=lambda part: [_destroy_link(name, x) for x in part],
                args=(links[i::_DETACH_THREADS],), daemon=True)
            t.start()
            workers.append((t, i))
    except RuntimeError:
        # No new threads at interpreter shutdown: finish in this one.
        for i in range(len(workers), _DETACH_THREADS):
            for link in links[i::_DETACH_THREADS]:
                _destroy_link(name, link)
    for t, _ in workers:
        t.join()


class BpfObject:
    """A loaded and attached BPF object from ``dockertrace/bpfobj``.

    ``allow`` and ``exclude`` constrain the mechanisms, either for every
    point (an iterable such as ``{"tp"}``) or per point (a mapping such as
    ``{"dt_st_openat": {"kprobe"}}``).  Points listed in ``optional`` may
    end up without a mechanism (None in ``mechanisms``) instead of
    failing.  ``ringbuf_bytes`` resizes ``dt_events`` (a power of two,
    multiple of the page size).  ``features`` replaces the probed answers
    (a mapping of feature name to Probe or Outcome).

    Raises AccessDenied without the privilege to load BPF,
    FeatureNotSupported when a point has no mechanism this kernel offers,
    and TraceError when the kernel refused every one that was tried.
    """

    def __init__(self, name, *, allow=None, exclude=None, optional=(),
                 ringbuf_bytes=None, features=None, objdir=None):
        self.name = name
        self.mechanisms = {}
        self.failures = {}
        self.load_ms = 0.0
        self._obj = None
        self._progs = {}
        self._links = {}
        self._maps = {}
        self._rings = []
        self._pid = os.getpid()

        start = time.monotonic()
        feats = _features.probe_all() if features is None else features
        # The privilege first: without it, that is the cause to report,
        # whatever else is wrong.
        self._check_basics(feats)
        self.path = object_path(name, objdir)
        obj = _open(self.path)
        try:
            progs = _programs(obj)
            self.points = _group(name, progs)
            todo = points.choose(self.points, feats, allow, exclude)
            self._check_ringbuf(obj, feats)
        except BaseException:
            raw.object_close(obj)
            raise

        for point, cands in todo.items():
            if not cands and point not in optional:
                raw.object_close(obj)
                raise self._no_mechanism(point, feats, allow, exclude)
        self._load(obj, todo, optional, ringbuf_bytes)
        self.load_ms = (time.monotonic() - start) * 1e3
        log.debug("%s: loaded and attached in %.1f ms: %s", name,
                  self.load_ms, self.mechanisms)
        lifecycle.register(self)

    def __repr__(self):
        state = "closed" if self._obj is None else "attached"
        return f"<BpfObject {self.name} {state} {self.mechanisms}>"

    # Choosing and loading

    def _check_basics(self, feats):
        bpf = feats.get("bpf")
        if bpf is not None and getattr(bpf, "errno", 0) in (
                errno.EPERM, errno.EACCES):
            raise AccessDenied(f"loading BPF object {self.name} "
                               f"({bpf.detail})")

    def _check_ringbuf(self, obj, feats):
        names = {raw.map_name(m) for m in raw.maps(obj)}
        ring = feats.get("ringbuf")
        if EVENTS_MAP in names and ring is not None and \
                points.outcome_of(ring) == "not supported":
            raise FeatureNotSupported(
                "BPF ring buffer", detail=getattr(ring, "detail", ""),
                fix="dockertrace needs Linux 5.8 or later")

    def _no_mechanism(self, point, feats, allow, exclude):
        p = self.points[point]
        kept = points.candidates(p, {m: "supported" for m in
                                     points.FEATURE_OF.values()},
                                 allow, exclude)
        if not kept:
            return TraceError(
                f"{self.name}: allow={allow!r} and exclude={exclude!r} "
                f"leave no mechanism for probe point {point} (it has "
                f"{', '.join(p.mechanisms)})", program=point)
        missing = []
        for mech in kept:
            answer = feats.get(points.FEATURE_OF[mech])
            detail = getattr(answer, "detail", "") or "not supported"
            missing.append(f"{mech}: {detail}")
        return FeatureNotSupported(
            f"{' or '.join(kept)} for probe point {point} of {self.name}",
            detail="; ".join(missing),
            fix="use a kernel with one of them; " + _HINT)

    def _load(self, obj, todo, optional, ringbuf_bytes):
        # Each failure removes one candidate, so this ends.
        todo = {p: list(c) for p, c in todo.items()}
        while True:
            chosen = {p: (c[0] if c else False) for p, c in todo.items()}
            try:
                self._try(obj, chosen, ringbuf_bytes)
            except _PointFailed as fail:
                obj = None
                mech = chosen[fail.point]
                self.failures.setdefault(fail.point, []).append(
                    (mech, fail.reason))
                todo[fail.point].pop(0)
                nxt = todo[fail.point][0] if todo[fail.point] else None
                log.info("%s: %s via %s: %s; %s", self.name, fail.point,
                         mech, fail.reason,
                         f"falling back to {nxt}" if nxt else "giving up")
                if nxt is None and fail.point not in optional:
                    raise self._exhausted(fail) from fail.err
                obj = _open(self.path)
                continue
            self.mechanisms = {p: _mechanism_of(self.points[p], m,
                                                self._progs)
                               if m is not False else None
                               for p, m in chosen.items()}
            return

    def _exhausted(self, fail):
        tried = "; ".join(f"{m}: {r}" for m, r in self.failures[fail.point])
        msg = (f"{self.name}: cannot attach probe point {fail.point} "
               f"({tried}); {_HINT}")
        return TraceError(msg, program=fail.program, errno=fail.err.errno)

    def _try(self, obj, chosen, ringbuf_bytes):
        """Load and attach with one mechanism per point, or raise.

        Consumes ``obj``: on failure it is closed, on success kept.
        """
        progs = _programs(obj)
        owner = {}
        try:
            for point, mech in chosen.items():
                p = self.points[point]
                for m, names in p.programs.items():
                    on = m == mech
                    for n in names:
                        raw.program_set_autoload(progs[n], on)
                        if on:
                            owner[n] = point
            if ringbuf_bytes:
                raw.map_set_max_entries(raw.find_map(obj, EVENTS_MAP),
                                        ringbuf_bytes)

            with raw.capture_log() as lines:
                try:
                    raw.object_load(obj)
                except OSError as err:
                    raise self._load_failure(err, lines, owner) from err

            links = {}
            for n, point in owner.items():
                try:
                    links[n] = raw.program_attach(progs[n])
                except OSError as err:
                    for link in links.values():
                        raw.link_destroy(link)
                    raise _PointFailed(point, n, "attaching", err,
                                       _log_tail(lines)) from err
        except BaseException:
            raw.object_close(obj)
            raise
        self._obj, self._progs, self._links = obj, progs, links

    def _load_failure(self, err, lines, owner):
        # bpf_object__load is all or nothing; libbpf's log names the
        # program it choked on, which tells the point to fall back for.
        failed = None
        for text in lines:
            for m in _PROG_IN_LOG.finditer(text):
                if m.group(1) in owner:
                    failed = m.group(1)
        tail = _log_tail(lines)
        if failed is not None and not self.points[owner[failed]].fixed:
            return _PointFailed(owner[failed], failed, "loading", err, tail)
        what = f"program {failed}" if failed else "the object"
        if err.errno in (errno.EPERM, errno.EACCES) and failed is None:
            return AccessDenied(f"loading BPF object {self.name}: "
                                f"{err.strerror}")
        return TraceError(
            f"{self.name}: loading {what} failed: "
            f"{raw.errno_name(err.errno)}{f' ({tail})' if tail else ''}; "
            f"{_HINT}", program=failed, errno=err.errno)

    # Using a loaded object

    def _live(self):
        if self._obj is None:
            raise TraceError(f"BPF object {self.name} is closed")
        return self._obj

    def map(self, name):
        """The :class:`Map` called ``name``."""
        if name not in self._maps:
            try:
                bpf_map = raw.find_map(self._live(), name)
            except OSError as err:
                raise TraceError(f"{self.name} has no map {name}",
                                 errno=err.errno) from err
            self._maps[name] = Map(bpf_map)
        return self._maps[name]

    def ring_buffer(self, callback, map_name=EVENTS_MAP):
        """A :class:`RingBuffer` delivering ``dt_events`` records as bytes
        to ``callback``; it is closed with the object."""
        ring = RingBuffer(self.map(map_name).fd, callback, map_name)
        self._rings.append(ring)
        return ring

    @property
    def dropped_events(self):
        """Events lost because ``dt_events`` was full, summed over CPUs."""
        values = self.map(DROPS_MAP).lookup(0) or []
        return sum(int.from_bytes(v[:8], sys.byteorder) for v in values)

    def iter_read(self, program):
        """Run the iterator program ``program`` once; all it wrote."""
        self._live()
        link = self._links.get(program)
        if link is None:
            raise TraceError(f"{self.name} has no attached program "
                             f"{program}")
        try:
            fd = raw.iter_create(raw.link_fd(link))
        except OSError as err:
            raise TraceError(f"{self.name}: running iterator {program} "
                             f"failed: {err.strerror}", program=program,
                             errno=err.errno) from err
        chunks = []
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks)

    def close(self):
        """Detach every program and free the object; idempotent."""
        obj, self._obj = self._obj, None
        lifecycle.unregister(self)
        if obj is None:
            return
        rings, links = self._rings, self._links
        self._rings, self._links, self._maps = [], {}, {}
        if os.getpid() != self._pid:
            # Inherited through fork: the programs are the parent's, and
            # detaching them from here would pull them from under it.
            return
        start = time.monotonic()
        for ring in rings:
            ring.close()
        _destroy_links(self.name, list(links.values()))
        raw.object_close(obj)
        log.debug("%s: closed in %.1f ms", self.name,
                  (time.monotonic() - start) * 1e3)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
