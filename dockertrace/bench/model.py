"""Typed results of the analysis suite, shared by the benchmarks that fill
them and the report that renders them.

Every number carries its unit in its name or in ``unit``; every section
says how to rerun it, and which kernel events explain its figures.
"""

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Figure:
    """One measured value, e.g. the median warm start of a bridge
    container."""

    key: str                 # stable id, e.g. "startup.warm.bridge.total"
    label: str               # human words
    value: float
    unit: str                # "ms", "MiB/s", "%", "MiB", ...
    spread: Optional[tuple] = None   # (min, max) or (p5, p95) in unit
    detail: str = ""         # e.g. "median of 5 runs"


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple           # header strings
    rows: tuple              # tuples of cells (str or numbers)
    note: str = ""


@dataclass(frozen=True)
class Series:
    """Data for one plot. ``kind`` tells the report how to draw it:

    - "waterfall": x = phase names, y = {group: [start_ms...]},
      y2 = {group: [duration_ms...]}  (one bar row per group)
    - "bars": x = category names, y = {group: [values...]}
    - "line": x = numbers, y = {group: [values...]}
    - "timeline": x = times in s, y = {group: [values...]}
    """

    key: str
    title: str
    kind: str
    x: tuple
    y: dict
    y2: dict = field(default_factory=dict)
    x_label: str = ""
    y_label: str = ""
    log_x: bool = False


@dataclass(frozen=True)
class Section:
    name: str                # "startup", "io", "network", "memory", "cpu"
    title: str
    figures: tuple = ()
    tables: tuple = ()
    series: tuple = ()
    # What the kernel showed that explains the figures, in sentences.
    explanation: tuple = ()
    rerun: str = ""          # the command that reproduces this section
    mechanisms: dict = field(default_factory=dict)
    dropped_events: int = 0
    error: str = ""          # set when the section could not run

    def figure(self, key):
        for f in self.figures:
            if f.key == key:
                return f
        return None


@dataclass(frozen=True)
class Environment:
    kernel: str
    os: str
    docker_version: str
    api_version: str
    containerd_version: str
    runc_version: str
    storage_driver: str
    cgroup_driver: str
    cgroup_version: str
    cpu_model: str
    cpus: int
    memory_bytes: int
    python: str
    dockertrace_version: str
    features: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteResult:
    environment: Environment
    sections: tuple
    started_at: str           # ISO 8601, UTC
    duration_s: float
    command: str              # the command line that ran the suite

    def section(self, name):
        for s in self.sections:
            if s.name == name:
                return s
        return None
