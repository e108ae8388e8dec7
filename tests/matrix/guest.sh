#!/bin/sh
# Runs inside one guest kernel of the kernel matrix; scripts/kernel_matrix.py
# boots the guest with `vng ... --rwdir OUT --exec "sh guest.sh OUT"`.
#
# OUT (writable from the guest, the rest of the host's tree is read-only)
# holds guest.env (ROOT, PYTHON, TIMEOUT_S, CI) and pytest.args (one pytest
# argument a line). This mounts what the tests need, runs pytest with the
# matrix plugin (which writes OUT/results.json) and writes its exit code
# to OUT/pytest.rc. Every step has a timeout: an emulated guest that hangs
# must not hold the run.
set -u
out=$1
. "$out/guest.env"

# Prints the elapsed guest time and a message.
t0=$(date +%s)
say() { echo "guest[$(($(date +%s) - t0))s]: $*"; }

say "kernel $(uname -r), $(nproc) cpus"
mountpoint -q /sys/kernel/tracing ||
    timeout 30 mount -t tracefs tracefs /sys/kernel/tracing
mountpoint -q /sys/fs/bpf || timeout 30 mount -t bpf bpf /sys/fs/bpf
grep -q ' cgroup2\? ' /proc/self/mounts ||
    timeout 30 mount -t cgroup2 cgroup2 /sys/fs/cgroup

# The guest's /tmp is an overlay (over the host's), and overlayfs refuses
# another overlay as upper layer: temporary files go to a tmpfs instead.
mkdir -p /run/dockertrace-tmp
mountpoint -q /run/dockertrace-tmp ||
    timeout 30 mount -t tmpfs -o size=512m tmpfs /run/dockertrace-tmp
export TMPDIR=/run/dockertrace-tmp

cd "$ROOT" || exit 1
# The host's tree is read-only here: no bytecode, no pytest cache. Plugins
# installed on the host (hypothesis, ...) would only cost import time.
export PYTHONDONTWRITEBYTECODE=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
export PYTHONPATH="$ROOT/tests/matrix" DOCKERTRACE_MATRIX_OUT="$out"
# Timing bounds of the tests hold on real CPUs, not under emulation.
export DOCKERTRACE_NO_TIMING=1
if [ -n "$CI" ]; then export CI; else unset CI; fi

say "pytest (limit ${TIMEOUT_S}s)"
# Plugins are named here, not in the @file: pytest loads them before it
# reads that.
timeout -k 10 "$TIMEOUT_S" "$PYTHON" -m pytest -p no:cacheprovider \
    -p matrix_plugin "@$out/pytest.args"
rc=$?
say "pytest exit code $rc"
echo "$rc" >"$out/pytest.rc"
exit "$rc"
