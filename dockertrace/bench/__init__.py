"""The analysis suite: benchmarks tied to kernel phases (see model.py for
the results they produce).

>>> from dockertrace.bench import run_suite
>>> result = run_suite(suites=("startup", "network"), runs=3)
>>> result.section("startup").figure("startup.warm.bridge.total_ms")

Sections: startup, io, network, memory, cpu (one module each).
"""

from dockertrace.bench.common import Containers, Progress  # noqa: F401
from dockertrace.bench.suite import SECTIONS, as_dict, run_suite  # noqa: F401
