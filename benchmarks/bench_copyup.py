"""Benchmark of the copy-up tracer.

Reports, from one run on this machine:
  - copy-up latency and throughput by file size (1 KiB to 256 MiB), as
    the tracer measures them, on a hand-made overlay whose upper layer
    is on ext4 (the same kernel path as a container's rootfs), each
    size copied up ``--reps`` times from fresh upper layers;
  - the overhead of tracing on two write-heavy workloads (see
    WORKLOADS: one bound by cheap syscalls, one streaming 64 KiB
    writes): the ratio of the median CPU time (user + system) of traced
    runs to untraced runs, and the median ratio of adjacent pairs, the
    two kinds interleaved so that drift in the machine's load hits both
    alike. A workload runs in its own mount namespace (as a container's
    processes do, so the tracer follows its syscalls).

Target (from the copy-up issue): overhead under 3 %. On the tracepoint
path the syscalls that can copy up are joined through raw
sys_enter/sys_exit programs, which run on every syscall of the machine;
their cost is per syscall, so it is largest where syscalls are cheapest.
Numbers are printed (and written as JSON with --json), never asserted.

    python3 benchmarks/bench_copyup.py [--reps 3] [--runs 11] [--json F]
"""

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import bpfstats

OVERHEAD_TARGET = 0.03
SIZES = [1 << 10, 16 << 10, 256 << 10, 1 << 20, 16 << 20, 64 << 20,
         256 << 20]


def _overlay_script(base, lower, upper, work, merged, body):
    return (f"mount -t overlay overlay -o lowerdir={lower},"
            f"upperdir={upper},workdir={work} {merged} && cd {merged} && "
            f"{body}")


def _in_namespace(script):
    subprocess.run(["unshare", "--mount", "--propagation", "private",
                    "sh", "-c", script], check=True, capture_output=True)


def _fresh(base, name):
    d = base / name
    if d.exists():
        shutil.rmtree(d)
    for sub in ("upper", "work", "merged"):
        (d / sub).mkdir(parents=True)
    return d


def bench_sizes(base, reps):
    from dockertrace.copyup import CopyupTracer

    lower = base / "lower"
    lower.mkdir()
    chunk = b"dockertrace copy-up benchmark\n" * 4096
    for size in SIZES:
        with open(lower / f"f{size}", "wb") as f:
            left = size
            while left:
                f.write(chunk[:left])
                left -= min(left, len(chunk))
    subprocess.run(["sync"])
    rows = []
    with CopyupTracer() as t:
        # The first copy-up of a run pays for cold caches: not measured.
        d = _fresh(base, "run")
        _in_namespace(_overlay_script(base, lower, d / "upper", d / "work",
                                      d / "merged", f": >> f{SIZES[0]}"))
        for size in SIZES:
            lats = []
            for _ in range(reps):
                d = _fresh(base, "run")
                before = len(t.seen())
                _in_namespace(_overlay_script(
                    base, lower, d / "upper", d / "work", d / "merged",
                    f": >> f{size}; sleep 0.5"))
                t.settle(quiet_s=0.2)
                evs = [e for e in t.seen()[before:]
                       if e.path == f"/f{size}"]
                if len(evs) == 1 and evs[0].size_bytes == size:
                    lats.append(evs[0].latency_ns)
            med = statistics.median(lats) if lats else None
            rows.append({"size_bytes": size, "events": len(lats),
                         "median_latency_ns": med,
                         "mib_per_s": (size / (1 << 20)) / (med / 1e9)
                         if med else None})
        mechanism = t.mechanism
    return mechanism, rows


# Two write-heavy workloads, both in the page cache so that the disk is
# out of it and the syscalls (which the tracer hooks) are what is timed:
#  - syscall-bound: 4 KiB writes, a thousand small files created and
#    appended to by shell builtins, and 200 copy-ups of small image
#    files (the worst case: the cost is per syscall, and the syscalls
#    are as cheap as they get);
#  - streaming: 64 KiB writes rewriting a 128 MiB file, and 4 copy-ups
#    of 16 MiB image files.
WORKLOADS = {
    "syscall-bound": (
        "for r in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do "
        "dd if=/dev/zero of=big bs=4k count=1000 conv=notrunc 2>/dev/null; "
        "done; mkdir own; i=0; while [ $i -lt 1000 ]; do echo x > own/$i; "
        "echo y >> own/$i; i=$((i+1)); done; "
        "for f in small/*; do : >> $f; done"),
    "streaming": (
        "for r in 1 2 3; do "
        "dd if=/dev/zero of=stream bs=64k count=2048 conv=notrunc "
        "2>/dev/null; done; for f in large/*; do : >> $f; done"),
}


def _workload_once(base, lower, body):
    d = _fresh(base, "wl")
    script = _overlay_script(base, lower, d / "upper", d / "work",
                             d / "merged", body)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    _in_namespace(script)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time of the workload (user + system): the BPF programs run in
    # its syscalls and are charged to it, and unlike wall time it does
    # not include waiting for a disk shared with other work.
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _workload_lower(base):
    lower = base / "wl-lower"
    if not lower.exists():
        (lower / "small").mkdir(parents=True)
        for i in range(200):
            (lower / "small" / f"s{i}").write_bytes(b"s" * 4096)
        (lower / "large").mkdir()
        for i in range(4):
            (lower / "large" / f"l{i}").write_bytes(b"l" * (16 << 20))
    return lower


def bench_overhead(base, runs, name):
    from dockertrace.copyup import CopyupTracer

    body = WORKLOADS[name]
    lower = _workload_lower(base)
    _workload_once(base, lower, body)     # warm the page cache
    plain, traced = [], []
    events = 0
    bpf_ns = 0
    for i in range(runs):
        # Which kind goes first alternates: writeback of the run before
        # slows whichever comes next.
        for kind in (("plain", "traced") if i % 2 else ("traced",
                                                          "plain")):
            if kind == "plain":
                plain.append(_workload_once(base, lower, body))
                continue
            with CopyupTracer() as t, bpfstats.enabled():
                b0 = bpfstats.run_time_ns("dt_cu_")
                traced.append(_workload_once(base, lower, body))
                # The programs run in every task's syscalls, not only
                # the workload's: this is the whole machine's cost.
                bpf_ns += bpfstats.run_time_ns("dt_cu_") - b0
                t.settle(quiet_s=0.2)
                events += len(t.seen())
    ratio = statistics.median(traced) / statistics.median(plain)
    # Each traced run against the untraced run beside it: drift in the
    # machine's load between pairs cancels out.
    pairs = statistics.median(tr / pl for tr, pl in zip(traced, plain))
    return {"workload": name, "runs": runs,
            "metric": "workload CPU time (user+sys)",
            "untraced_s": plain, "traced_s": traced,
            "untraced_median_s": statistics.median(plain),
            "traced_median_s": statistics.median(traced),
            "ratio": ratio, "overhead": ratio - 1,
            "pair_ratio_median": pairs,
            "target": OVERHEAD_TARGET,
            "copyups_per_traced_run": events / runs,
            "bpf_cpu_per_run_s": bpf_ns / runs / 1e9,
            "bpf_cpu_ratio": bpf_ns / runs / 1e9 / statistics.median(plain)}


def _ext4_base():
    for d in ("/var/tmp", "/tmp", "/root"):
        out = subprocess.run(["stat", "-f", "-c", "%T", d],
                             capture_output=True, text=True).stdout
        if out.startswith("ext2/ext3"):
            return d
    sys.exit("bench_copyup: needs a directory on ext4")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="dt-bench-copyup-",
                                 dir=_ext4_base()))
    try:
        mechanism, rows = bench_sizes(base, args.reps)
        overs = [bench_overhead(base, args.runs, name) for name in WORKLOADS]
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print(f"mechanism: {mechanism}")
    print(f"{'size':>10} {'events':>6} {'latency':>10} {'MiB/s':>8}")
    for r in rows:
        lat = r["median_latency_ns"]
        print(f"{r['size_bytes']:>10} {r['events']:>6} "
              f"{lat / 1e6 if lat else float('nan'):>8.2f}ms "
              f"{r['mib_per_s'] or float('nan'):>8.0f}")
    for over in overs:
        print(f"{over['workload']} workload, CPU time: untraced "
              f"{over['untraced_median_s']:.3f} s, traced "
              f"{over['traced_median_s']:.3f} s, ratio "
              f"{over['ratio']:.3f}, median of pair ratios "
              f"{over['pair_ratio_median']:.3f} (target < "
              f"{1 + OVERHEAD_TARGET:.2f}), "
              f"{over['copyups_per_traced_run']:.0f} copy-ups per run")
        print(f"  BPF programs' CPU per run: {over['bpf_cpu_per_run_s']:.4f}"
              f" s = {over['bpf_cpu_ratio'] * 100:.2f} % of the untraced "
              f"workload's CPU time (machine-wide, all tasks' syscalls)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mechanism": mechanism, "sizes": rows,
                       "overhead": overs}, f, indent=2)


if __name__ == "__main__":
    main()
