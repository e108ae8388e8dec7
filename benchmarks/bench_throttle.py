"""Benchmark of the CPU throttling tracer (needs root; no Docker).

A busy loop runs in a hand-made cgroup limited to 0.2 CPUs, counting its
iterations; runs with the tracer (per-thread time on and off) and without
it are interleaved, so drift in the machine's load hits all alike.

Reports:
  - overhead on the throttled workload: iterations per run traced, as a
    share of untraced (medians);
  - the cost per period: run time of the BPF programs (kernel.bpf_stats)
    and the CPU time of the tracer's process, divided by the periods it
    reported; the period program runs at every hrtimer expiry of the
    machine, so its cost per call is shown too.

Printed (and written as JSON with --json), never asserted.

    sudo python3 benchmarks/bench_throttle.py [--runs 5] [--seconds 3]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import uuid

BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"

_LOOP = ("import time\nn = 0\nend = time.monotonic() + {s}\n"
         "while time.monotonic() < end:\n    n += 1\nprint(n)\n")


def cgroup_dirs():
    from dockertrace.identity import cgroups
    from dockertrace.throttle import cgroupfs

    layout = cgroups.cgroup_layout()
    mount = cgroupfs.cpu_hierarchy(layout)
    name = f"dt-bench-throttle-{uuid.uuid4().hex[:6]}"
    d = os.path.join(mount.mount_point, name)
    os.mkdir(d)
    if mount.version == 2:
        with open(os.path.join(d, "cpu.max"), "w") as f:
            f.write("20000 100000")
    else:
        with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
            f.write("20000")
    return name, d


def busy(cgdir, seconds):
    """Iterations a Python loop made in ``seconds`` inside the cgroup."""
    out = subprocess.run(
        ["sh", "-c", f"echo $$ > {cgdir}/cgroup.procs; exec {sys.executable}"
         f" -c '{_LOOP.format(s=seconds)}'"],
        check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1])


def bpf_run_time(prefix="dt_th_"):
    out = subprocess.run(["bpftool", "-j", "prog", "show"], check=True,
                         capture_output=True, text=True).stdout
    return {p["name"]: (p.get("run_time_ns", 0), p.get("run_cnt", 0))
            for p in json.loads(out) if p.get("name", "").startswith(prefix)}


def traced(name, cgdir, seconds, threads):
    from dockertrace.throttle import ThrottleTracer

    with ThrottleTracer(cgroups=[f"/{name}"], threads=threads) as t:
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        n = busy(cgdir, seconds)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        stats = bpf_run_time()
        res = t.result()
    periods = res.groups[0].summary.periods if res.groups else 0
    user_cpu = (cpu1.ru_utime + cpu1.ru_stime) - \
        (cpu0.ru_utime + cpu0.ru_stime)
    return n, periods, stats, user_cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    with open(BPF_STATS) as f:
        old = f.read().strip()
    with open(BPF_STATS, "w") as f:
        f.write("1")
    name, cgdir = cgroup_dirs()
    base, on, off = [], [], []
    per_period = {"threads": [], "no_threads": []}
    try:
        for i in range(args.runs):
            base.append(busy(cgdir, args.seconds))
            for threads, into, key in ((True, on, "threads"),
                                       (False, off, "no_threads")):
                n, periods, stats, ucpu = traced(name, cgdir, args.seconds,
                                                 threads)
                into.append(n)
                bpf_ns = sum(v[0] for v in stats.values())
                per_period[key].append({
                    "periods": periods,
                    "bpf_ns_per_period": bpf_ns / max(periods, 1),
                    "user_us_per_period": ucpu * 1e6 / max(periods, 1),
                    "programs": {k: {"run_time_ns": v[0], "run_cnt": v[1],
                                     "ns_per_call": v[0] / max(v[1], 1)}
                                 for k, v in stats.items()}})
            print(f"run {i + 1}/{args.runs}: untraced {base[-1]}, traced "
                  f"{on[-1]} (threads) {off[-1]} (no threads)",
                  file=sys.stderr)
    finally:
        os.rmdir(cgdir)
        with open(BPF_STATS, "w") as f:
            f.write(old)

    med = statistics.median
    result = {
        "seconds": args.seconds, "runs": args.runs,
        "untraced_iterations": med(base),
        "traced_ratio_threads": med(on) / med(base),
        "traced_ratio_no_threads": med(off) / med(base),
    }
    for key, rows in per_period.items():
        result[f"bpf_ns_per_period_{key}"] = med(
            r["bpf_ns_per_period"] for r in rows)
        result[f"user_us_per_period_{key}"] = med(
            r["user_us_per_period"] for r in rows)
        for prog in rows[-1]["programs"]:
            result[f"{prog}_ns_per_call_{key}"] = med(
                r["programs"][prog]["ns_per_call"] for r in rows
                if prog in r["programs"])
    for k, v in result.items():
        print(f"{k:<44} {v:.3f}" if isinstance(v, float) else
              f"{k:<44} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
