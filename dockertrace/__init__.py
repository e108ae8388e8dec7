"""dockertrace: what Docker does inside the Linux kernel, traced with eBPF.

The public API lives here; everything else is an implementation module.
"""

from dockertrace.errors import (  # noqa: F401
    AccessDenied,
    ContainerFailed,
    DockerUnavailable,
    Error,
    FeatureNotSupported,
    NoSuchContainer,
    TraceError,
)

__version__ = "0.1.0"


def audit(*args, **kwargs):
    """Audit running containers, declared against enforced security;
    see :func:`dockertrace.audit.audit`.  Importing the package of the
    same name replaces this attribute with the package, which is callable
    in the same way."""
    from dockertrace.audit import audit as _audit
    return _audit(*args, **kwargs)


def trace_startup(*args, **kwargs):
    """Break container starts into kernel phases; see
    :func:`dockertrace.startup.trace_startup`."""
    from dockertrace.startup import trace_startup as _trace
    return _trace(*args, **kwargs)


def report(*args, **kwargs):
    """Run the suite and the audit and write one report; see
    :func:`dockertrace.report.report`."""
    from dockertrace.report import report as _report
    return _report(*args, **kwargs)


def run_suite(*args, **kwargs):
    """Run the analysis suite's benchmarks; see
    :func:`dockertrace.bench.suite.run_suite`."""
    from dockertrace.bench.suite import run_suite as _run
    return _run(*args, **kwargs)


def trace_copyups(*args, **kwargs):
    """Yield OverlayFS copy-ups as they happen; see
    :func:`dockertrace.copyup.trace_copyups`."""
    from dockertrace.copyup import trace_copyups as _trace
    return _trace(*args, **kwargs)


def trace_throttle(*args, **kwargs):
    """CPU throttling per container and per period; see
    :func:`dockertrace.throttle.trace_throttle`."""
    from dockertrace.throttle import trace_throttle as _trace
    return _trace(*args, **kwargs)


def container_limits(*args, **kwargs):
    """A container's limits, enforced and declared; see
    :func:`dockertrace.throttle.limits.container_limits`."""
    from dockertrace.throttle.limits import container_limits as _limits
    return _limits(*args, **kwargs)
