#!/bin/sh
# Checks that an emulated guest survives live kernel code patching:
# `scripts/kernel_matrix.py --patch-stress SECONDS` boots each kernel with
# the matrix's qemu options and runs this inside.
#
# Enabling or disabling a tracepoint flips a static key, which rewrites the
# instructions at every call site (int3 first, then the new bytes) while
# other CPUs may be running them. Every BPF attach the tests make does
# this. Here it is done as fast as possible on sched_stat_runtime, whose
# call site runs on every scheduler tick, while threads start, spin and
# exit on all vCPUs. If the emulator lets a vCPU run stale code, the guest
# kernel oopses on an int3 or stalls; if not, this prints "survived".
set -u
seconds=${1:-60}

mountpoint -q /sys/kernel/tracing ||
    timeout 30 mount -t tracefs tracefs /sys/kernel/tracing
echo "patch_stress: kernel $(uname -r), $(nproc) cpus, ${seconds}s"

# Short-lived threads keep every vCPU inside the scheduler's accounting.
python3 -c '
import sys, threading, time
end = time.monotonic() + float(sys.argv[1])
def spin():
    stop = time.monotonic() + 0.002
    while time.monotonic() < stop:
        pass
while time.monotonic() < end:
    threads = [threading.Thread(target=spin) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
' "$((seconds + 5))" &
load=$!

enable=/sys/kernel/tracing/events/sched/sched_stat_runtime/enable
flips=0
t0=$(date +%s)
while [ $(($(date +%s) - t0)) -lt "$seconds" ]; do
    if ! { echo 1 >"$enable" && echo 0 >"$enable"; }; then
        echo "patch_stress: cannot switch $enable (no tracefs, or no" \
             "sched_stat_runtime in this kernel)" >&2
        kill "$load"
        exit 1
    fi
    flips=$((flips + 1))
done
wait "$load"
echo "patch_stress: survived, $flips enable/disable pairs"
