"""pytest plugin of the kernel matrix: one JSON file of results per run.

scripts/kernel_matrix.py loads it (``-p matrix_plugin`` with this
directory on ``PYTHONPATH``) on the host and inside every guest kernel,
with ``DOCKERTRACE_MATRIX_OUT`` naming a directory. At the end of the
session it writes ``results.json`` there:

    {"kernel": "6.1.0-57-amd64", "exitstatus": 0,
     "features": {"fentry": {"outcome": "supported", "detail": "..."}, ...},
     "tests": {"tests/system/test_x.py::test_y": {
         "outcome": "passed", "duration_s": 1.2, "longrepr": "",
         "mechanisms": [{"tracer": "copyup", "forced": false,
                         "mechanisms": {"dt_cu_copy": "fentry"}}]}}}

``outcome`` is passed, failed, error (a fixture failed) or skipped (with
the reason in ``longrepr``). ``mechanisms`` are what the test reported
through the ``record_mechanism`` fixture (tests/conftest.py).
"""

import json
import os
import sys

OUT_ENV = "DOCKERTRACE_MATRIX_OUT"
# A failure's report is cut to this many characters (its tail) in the file;
# the guest's full output is kept next to it.
LONGREPR_CHARS = 4000

_tests = {}


def _entry(nodeid):
    return _tests.setdefault(nodeid, {
        "outcome": "passed", "duration_s": 0.0, "longrepr": "",
        "mechanisms": []})


def pytest_runtest_logreport(report):
    entry = _entry(report.nodeid)
    entry["duration_s"] += report.duration
    if report.when == "call" or report.failed:
        entry["mechanisms"] = [value for name, value in report.user_properties
                               if name == "dockertrace.mechanisms"]
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        entry["longrepr"] = str(report.longrepr)[-LONGREPR_CHARS:]
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        reason = report.longrepr
        if isinstance(reason, tuple):   # (file, line, "Skipped: why")
            reason = reason[2]
        entry["longrepr"] = str(reason)


def _features():
    """The feature probes, if the tests loaded the engine (never imported
    here: a session that did not need it should not pay for it)."""
    mod = sys.modules.get("dockertrace.engine.features")
    if mod is None:
        return {}
    try:
        return {name: {"outcome": p.outcome.value, "detail": p.detail}
                for name, p in mod.probe_all().items()}
    except Exception as err:    # noqa: BLE001 - reported, not raised
        return {"error": {"outcome": "unknown", "detail": repr(err)}}


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get(OUT_ENV)
    if not out:
        return
    result = {
        "kernel": os.uname().release,
        "exitstatus": int(exitstatus),
        "features": _features(),
        "tests": _tests,
    }
    path = os.path.join(out, "results.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)
