"""The analysis suite: run benchmark sections, collect a SuiteResult.

>>> from dockertrace.bench.suite import run_suite
>>> result = run_suite(suites=("network",), runs=1)
>>> result.section("network").figure("network.bridge.rtt_ms").value

A section that fails is recorded with its ``error`` and the others still
run; an interrupt (Ctrl-C, SIGTERM) stops the suite after the running
section has removed its containers.
"""

import dataclasses
import datetime
import importlib
import logging
import shlex
import sys
import time

from dockertrace.bench.common import DEFAULT_IMAGE, environment, rerun
from dockertrace.bench.model import Section, SuiteResult

log = logging.getLogger(__name__)

#: Section names in the order they run (and the report shows them).
SECTIONS = ("startup", "io", "network", "memory", "cpu")
_TITLES = {"startup": "Container start", "io": "Storage",
           "network": "Network", "memory": "Memory", "cpu": "CPU"}
DEFAULT_RUNS = 3


def run_suite(suites=None, runs=DEFAULT_RUNS, image=DEFAULT_IMAGE,
              progress=None, command=None):
    """Run the sections named in ``suites`` (default: all, in the order
    of :data:`SECTIONS`) and return a :class:`SuiteResult`.

    ``progress(p)`` is called with a
    :class:`~dockertrace.bench.common.Progress` as each step begins.
    Library errors (:class:`dockertrace.Error`) and failed workloads end
    only their section, which then carries ``error``; a dockerd that
    cannot be reached ends the suite, since no section could run.
    """
    from dockertrace.docker_api import client as docker_client
    from dockertrace.errors import DockerUnavailable, Error

    names = _names(suites)
    if runs < 1:
        raise ValueError("runs must be at least 1")
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    client = docker_client()
    env = environment(client)
    sections = []
    for name in names:
        mod = importlib.import_module(f"dockertrace.bench.{name}")
        s0 = time.monotonic()
        try:
            section = mod.run(runs=runs, image=image, progress=progress)
        except DockerUnavailable:
            raise
        except (Error, RuntimeError, OSError, ValueError) as err:
            # Includes docker-py's APIError (an OSError) and a workload
            # that failed; the rest of the suite is still worth running.
            log.warning("section %s failed: %s", name, err,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            section = Section(name=name, title=_TITLES[name],
                              error=f"{type(err).__name__}: {err}",
                              rerun=rerun(name, runs, image))
        log.info("section %s took %.1f s", name, time.monotonic() - s0)
        sections.append(section)
    return SuiteResult(
        environment=env, sections=tuple(sections),
        started_at=started.isoformat(timespec="seconds"),
        duration_s=round(time.monotonic() - t0, 1),
        command=command or _command(names, runs, image))


def _names(suites):
    if suites is None:
        return SECTIONS
    if isinstance(suites, str):
        suites = suites.split(",")
    wanted = [s.strip() for s in suites if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(SECTIONS)}")
    # The canonical order, whatever order they were named in.
    return tuple(s for s in SECTIONS if s in wanted)


def _command(names, runs, image):
    if sys.argv and sys.argv[0].endswith("dockertrace"):
        return shlex.join(["dockertrace", *sys.argv[1:]])
    return (f"dockertrace bench --suite {','.join(names)} --runs {runs} "
            f"--image {image}")


def as_dict(result):
    """The JSON-ready form of a SuiteResult (``dataclasses.asdict``),
    which ``dockertrace.report`` reads back."""
    return dataclasses.asdict(result)
