#!/usr/bin/env bash
# Runs the test suite on a machine made ready by setup.sh, then the kernel
# matrix (scripts/kernel_matrix.py: the kernel-dependent tests again on the
# host and inside Debian's 6.1 and 6.12 kernels under qemu):
#
#   sudo scripts/test.sh [--no-matrix] [pytest args...]
#
# Setup runs first without its demo (dockerd, images, build and install are
# checked and only redone when needed), so this works on a fresh clone too.
# The matrix runs even when the host's tests failed. Exit code is pytest's,
# or 1 if the matrix failed; "no tests collected" (5) is a failure too: a
# suite that silently stopped collecting must not pass CI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}

matrix=1
if [[ ${1:-} == --no-matrix ]]; then
    matrix=0
    shift
fi

"$ROOT/scripts/setup.sh" --no-demo

echo "==> running tests"
# Same interpreter setup.sh resolved (a pyenv shim would also work, this
# just keeps setup and tests on one Python even if PATH differs).
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')
rc=0
# importlib mode: tests/unit and tests/system are not packages and may hold
# files of the same name (test_runargs.py in both), which the default
# "prepend" mode refuses to collect.
"$PYTHON" -m pytest --import-mode=importlib tests/unit tests/system -v -rs "$@" || rc=$?
if ((rc == 5)); then
    echo "==> test.sh FAILED: pytest collected no tests" >&2
    rc=1
elif ((rc != 0)); then
    echo "==> test.sh FAILED: pytest exit code $rc" >&2
fi

if ((matrix)); then
    echo "==> running the kernel matrix"
    mrc=0
    "$PYTHON" "$ROOT/scripts/kernel_matrix.py" || mrc=$?
    if ((mrc != 0)); then
        echo "==> test.sh FAILED: kernel matrix exit code $mrc" >&2
        ((rc != 0)) || rc=1
    fi
fi
exit "$rc"
