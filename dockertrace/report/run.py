"""Running what a report needs: the benchmark suite and the audit.

The audit is optional for a report: when it cannot run (not built on this
version, no root, dockerd gone), the report says why in its security
section instead of failing as a whole, since the benchmarks are still
worth reading.
"""

import logging

from dockertrace.errors import Error
from dockertrace.report.data import audit_unavailable, summarize_audit

log = logging.getLogger(__name__)


class SuiteUnavailable(Error):
    """The benchmark suite cannot run from this version of dockertrace."""

    def __init__(self, reason):
        self.reason = reason
        super().__init__(f"the benchmark suite is not available: {reason}")


def run_suite(suites=None, runs=None, progress=None):
    """The :class:`~dockertrace.bench.model.SuiteResult` of a fresh run;
    ``progress`` is passed on to the suite (one call per step)."""
    try:
        from dockertrace.bench.suite import run_suite as _run
    except ImportError as err:
        raise SuiteUnavailable(str(err)) from err
    kwargs = {}
    if suites:
        kwargs["suites"] = tuple(suites)
    if runs is not None:
        kwargs["runs"] = runs
    if progress is not None:
        kwargs["progress"] = progress
    return _run(**kwargs)


def run_audit():
    """An :class:`~dockertrace.report.data.AuditSummary`; never raises for
    an audit that cannot run, it says why instead."""
    try:
        import dockertrace.audit as audit_pkg
        fn = getattr(audit_pkg, "audit", None)
    except ImportError as err:
        return audit_unavailable(f"dockertrace.audit does not import: "
                                 f"{err}")
    if not callable(fn):
        return audit_unavailable(
            "this version of dockertrace has no dockertrace.audit()")
    try:
        result = fn()
    except Error as err:
        log.debug("audit failed", exc_info=True)
        return audit_unavailable(str(err))
    return summarize_audit(result)
