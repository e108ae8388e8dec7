"""Readers for what the benchmarks' workloads and the kernel print.

Pure functions on text, so they are unit-tested on fixture strings:
busybox ``dd`` and ``ping`` output, the timestamp marks the workload
scripts print, ``/proc/<pid>/smaps_rollup``, ``/proc/<pid>/schedstat``,
and the cgroup files ``cpu.stat`` and ``memory.stat`` (v1 and v2).
"""

import math
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

#: Shell function the workload scripts use to mark a moment: ``m NAME``
#: prints ``@mark NAME`` and then the clock. busybox has no ``date +%N``;
#: ``adjtimex`` prints the clock to the microsecond (``time.tv_sec`` and
#: ``time.tv_usec`` lines). A mark costs one fork and exec (about a
#: millisecond), the same for every mark, so it cancels out of the
#: difference between a first and a second write.
MARK_FUNCTION = 'm() { echo "@mark $1"; adjtimex; }'

_MARK = re.compile(r"^@mark (\S+)\n(?:.*\n)*?\s*time\.tv_sec:\s*(\d+)\n"
                   r"\s*time\.tv_usec:\s*(\d+)$", re.M)


def parse_marks(text: str) -> Dict[str, int]:
    """``{name: microseconds since the epoch}`` of the marks in
    ``text``."""
    return {m.group(1): int(m.group(2)) * 1_000_000 + int(m.group(3))
            for m in _MARK.finditer(text)}


def segments(text: str) -> Dict[str, str]:
    """``{mark name: output printed after that mark, up to the next}``
    (the clock lines of the mark itself left out)."""
    out = {}
    matches = list(_MARK.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end():end]
        # adjtimex's last line ("return value: ...") follows tv_usec.
        out[m.group(1)] = re.sub(r"^\s*return value:.*\n?", "",
                                 body.lstrip("\n"), count=1)
    return out


def mark_delta_s(marks: Dict[str, int], a: str, b: str) -> Optional[float]:
    """Seconds from mark ``a`` to mark ``b``, or None if one is missing."""
    if a not in marks or b not in marks:
        return None
    return (marks[b] - marks[a]) / 1e6


@dataclass(frozen=True)
class DdResult:
    records_in: str          # "16+0": full + partial blocks
    records_out: str
    bytes: Optional[int] = None
    seconds: Optional[float] = None

    @property
    def full_blocks_out(self) -> int:
        return int(self.records_out.split("+")[0])


_DD_RECORDS = re.compile(r"^(\d+\+\d+) records (in|out)$", re.M)
# GNU dd: "16777216 bytes (17 MB, 16 MiB) copied, 0.1 s, 168 MB/s";
# busybox with its status line: "16777216 bytes (16.0MB) copied,
# 0.105929 seconds, 151.0MB/s".
_DD_COPIED = re.compile(
    r"^(\d+) bytes .*copied, ([0-9.]+) s(?:econds)?", re.M)


def parse_dd(text: str) -> Optional[DdResult]:
    """The statistics ``dd`` printed, or None if there are none.

    Debian's busybox prints only the two records lines; a dd that also
    prints bytes and time (GNU, other busybox builds) fills those in.
    """
    rec = {kind: n for n, kind in _DD_RECORDS.findall(text)}
    if "in" not in rec or "out" not in rec:
        return None
    copied = _DD_COPIED.search(text)
    if copied:
        return DdResult(rec["in"], rec["out"], int(copied.group(1)),
                        float(copied.group(2)))
    return DdResult(rec["in"], rec["out"])


@dataclass(frozen=True)
class PingResult:
    transmitted: int
    received: int
    rtts_ms: tuple           # one per reply, in order


_PING_REPLY = re.compile(r"bytes from .*time=([0-9.]+) ?ms")
_PING_STATS = re.compile(
    r"(\d+) packets transmitted, (\d+) (?:packets )?received")


def parse_ping(text: str) -> Optional[PingResult]:
    """Replies and counts of busybox (or iputils) ``ping`` output."""
    stats = _PING_STATS.search(text)
    if not stats:
        return None
    rtts = tuple(float(t) for t in _PING_REPLY.findall(text))
    return PingResult(int(stats.group(1)), int(stats.group(2)), rtts)


def parse_kib_fields(text: str) -> Dict[str, int]:
    """``{field: kB}`` of a ``Name:   123 kB`` file (smaps_rollup,
    status, meminfo)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s+(\d+) kB$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


@dataclass(frozen=True)
class SmapsRollup:
    """Memory of one process, in KiB, from ``/proc/<pid>/smaps_rollup``."""

    rss_kib: int
    pss_kib: int
    shared_clean_kib: int
    shared_dirty_kib: int
    private_clean_kib: int
    private_dirty_kib: int

    @property
    def shared_kib(self) -> int:
        return self.shared_clean_kib + self.shared_dirty_kib

    @property
    def private_kib(self) -> int:
        return self.private_clean_kib + self.private_dirty_kib


def parse_smaps_rollup(text: str) -> SmapsRollup:
    f = parse_kib_fields(text)
    if "Rss" not in f or "Pss" not in f:
        raise ValueError("not a smaps_rollup file: no Rss or Pss line")
    return SmapsRollup(f["Rss"], f["Pss"], f.get("Shared_Clean", 0),
                       f.get("Shared_Dirty", 0), f.get("Private_Clean", 0),
                       f.get("Private_Dirty", 0))


@dataclass(frozen=True)
class Schedstat:
    """``/proc/<pid>/schedstat``: time on a CPU, time waiting on a run
    queue, and how many times the task was run (timeslices)."""

    run_ns: int
    run_delay_ns: int
    pcount: int


def parse_schedstat(text: str) -> Schedstat:
    parts = text.split()
    if len(parts) != 3:
        raise ValueError(f"schedstat has {len(parts)} fields, not 3")
    return Schedstat(*(int(p) for p in parts))


def parse_flat_keyed(text: str) -> Dict[str, int]:
    """``{key: int}`` of a cgroup flat-keyed file (``key value`` lines)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


@dataclass(frozen=True)
class CpuStat:
    """CFS bandwidth counters of a cgroup, v1 and v2 alike."""

    nr_periods: int
    nr_throttled: int
    throttled_ns: int


def parse_cpu_stat(text: str) -> CpuStat:
    """cgroup v1 ``cpu.stat`` (``throttled_time`` in ns) or v2
    (``throttled_usec``)."""
    f = parse_flat_keyed(text)
    if "throttled_time" in f:
        throttled = f["throttled_time"]
    elif "throttled_usec" in f:
        throttled = f["throttled_usec"] * 1000
    else:
        raise ValueError("cpu.stat has no throttling counters (is the "
                         "cpu controller enabled for this cgroup?)")
    return CpuStat(f.get("nr_periods", 0), f.get("nr_throttled", 0),
                   throttled)


def page_cache_bytes(memory_stat: str) -> int:
    """Page cache charged to the cgroup itself: v1 ``cache``, v2
    ``file``."""
    f = parse_flat_keyed(memory_stat)
    for key in ("cache", "file"):
        if key in f:
            return f[key]
    raise ValueError("memory.stat has neither cache (v1) nor file (v2)")


def median(values: List[float]) -> float:
    """The median; what every benchmark figure reports (robust to one
    slow run on a shared machine)."""
    s = sorted(values)
    if not s:
        raise ValueError("median of nothing")
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def percentile(values: List[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100)."""
    s = sorted(values)
    if not s:
        raise ValueError("percentile of nothing")
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]
