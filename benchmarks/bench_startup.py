"""Benchmark of the startup tracer.

Reports, from one run on this machine:
  - time from command start to all BPF programs attached (wall),
  - peak memory (RSS) of a process that traced container starts,
  - overhead of tracing on container start latency, as the ratio of the
    median traced start to the median untraced start, measured in the
    same session with the two kinds interleaved so that drift in the
    machine's load hits both alike;
  - the CPU time the tracer spends per start, which is what that wall
    overhead is made of and, unlike it, is not drowned in the noise of a
    shared machine: the BPF programs' own run time (kernel.bpf_stats)
    and the CPU time of the thread that reads and decodes the events,
    each as a share of the median start.

Targets (from the project's plan): attached within 0.25 s, under 40 MiB,
overhead under 1 %. This is a benchmark, not a test: the numbers are
printed (and written as JSON with --json), never asserted.

    python3 benchmarks/bench_startup.py [--runs 20] [--json FILE]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import bpfstats

ATTACH_TARGET_S = 0.25
MEMORY_TARGET_MIB = 40
OVERHEAD_TARGET = 0.01

IMAGE = "dockertrace-busybox:latest"

# Runs in a fresh interpreter, as `dockertrace startup` would: the clock
# starts before the interpreter does (the parent's time), and stops when
# every program is attached.
_ATTACH_CHILD = r"""
import resource, sys, time
from dockertrace.startup import StartupTracer
t = StartupTracer()
attached = time.time()
mech = t.mechanisms
import dockertrace.startup as su
res = su.trace_startup(runs=int(sys.argv[1]), tracer=t)
t.close()
rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(attached, rss_kib, len(mech), res.dropped_events)
"""


def measure_attach(starts):
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", _ATTACH_CHILD, str(starts)],
                         check=True, capture_output=True, text=True).stdout
    attached, rss_kib, programs, dropped = out.split()
    return (float(attached) - t0, int(rss_kib) / 1024, int(programs),
            int(dropped))


def _start_once(client):
    t0 = time.monotonic_ns()
    c = client.containers.create(IMAGE, ["true"])
    try:
        c.start()
        return time.monotonic_ns() - t0
    finally:
        c.remove(force=True)


def _thread_cpu_ns(thread):
    return time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))


def measure_overhead(runs):
    """Start latency untraced and traced (interleaved in pairs), and the
    tracer's CPU time over the traced starts."""
    from dockertrace.docker_api import client as docker_client
    from dockertrace.startup import StartupTracer

    client = docker_client()
    for _ in range(3):          # warm the page cache and the daemon
        _start_once(client)
    plain, traced = [], []
    bpf_ns = reader_ns = 0
    with bpfstats.enabled():
        for i in range(runs):
            # Alternate which kind goes first so neither always follows
            # the other's cleanup.
            order = (False, True) if i % 2 == 0 else (True, False)
            for with_trace in order:
                if not with_trace:
                    plain.append(_start_once(client))
                    continue
                with StartupTracer() as tracer:
                    b0 = bpfstats.run_time_ns("dt_su_")
                    r0 = _thread_cpu_ns(tracer._thread)
                    traced.append(_start_once(client))
                    # Let the reader drain what the start produced.
                    time.sleep(0.2)
                    reader_ns += _thread_cpu_ns(tracer._thread) - r0
                    bpf_ns += bpfstats.run_time_ns("dt_su_") - b0
    return plain, traced, bpf_ns / runs, reader_ns / runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20,
                    help="pairs of traced/untraced starts (default 20)")
    ap.add_argument("--json", metavar="FILE",
                    help="also write the results as JSON to FILE")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_startup: needs root (BPF and the Docker socket)")

    attach_s, rss_mib, programs, dropped = measure_attach(starts=3)
    plain, traced, bpf_ns, reader_ns = measure_overhead(a.runs)
    p, t = statistics.median(plain), statistics.median(traced)
    overhead = t / p - 1
    res = {
        "attach_s": round(attach_s, 4), "attach_target_s": ATTACH_TARGET_S,
        "points": programs, "peak_rss_mib": round(rss_mib, 1),
        "rss_target_mib": MEMORY_TARGET_MIB, "dropped_events": dropped,
        "runs": a.runs, "untraced_median_ms": round(p / 1e6, 2),
        "traced_median_ms": round(t / 1e6, 2),
        "overhead_ratio": round(overhead, 4),
        "overhead_target": OVERHEAD_TARGET,
        "bpf_cpu_per_start_us": round(bpf_ns / 1e3, 1),
        "bpf_cpu_ratio": round(bpf_ns / p, 5),
        "reader_cpu_per_start_us": round(reader_ns / 1e3, 1),
        "reader_cpu_ratio": round(reader_ns / p, 5),
    }
    print(f"attach (command start -> attached): {attach_s * 1000:7.1f} ms"
          f"   target {ATTACH_TARGET_S * 1000:.0f} ms")
    print(f"peak RSS after tracing 3 starts:     {rss_mib:7.1f} MiB"
          f"  target {MEMORY_TARGET_MIB} MiB")
    print(f"docker start, untraced median:       {p / 1e6:7.1f} ms")
    print(f"docker start, traced median:         {t / 1e6:7.1f} ms")
    print(f"overhead (traced/untraced - 1):      {overhead * 100:7.2f} %"
          f"    target {OVERHEAD_TARGET * 100:.0f} %  ({a.runs} pairs)")
    print(f"BPF programs' CPU per start:         {bpf_ns / 1e3:7.1f} us"
          f"   {bpf_ns / p * 100:.3f} % of a start")
    print(f"event reader's CPU per start:        {reader_ns / 1e3:7.1f} us"
          f"   {reader_ns / p * 100:.3f} % of a start")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
