"""The run time the kernel charges to BPF programs (kernel.bpf_stats).

With statistics on, the kernel adds each program run's duration to the
program's ``run_time_ns``. Summing that over a tracer's programs around a
workload gives the CPU time the tracer's kernel side cost it: a figure
that, unlike a ratio of wall times, noise on a shared machine barely
moves. Statistics cost a little themselves, so they are on only inside
the ``with`` block.
"""

import contextlib
import json
import subprocess

BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"


@contextlib.contextmanager
def enabled():
    with open(BPF_STATS) as f:
        before = f.read().strip()
    with open(BPF_STATS, "w") as f:
        f.write("1\n")
    try:
        yield
    finally:
        with open(BPF_STATS, "w") as f:
            f.write(before + "\n")


def run_time_ns(prefix):
    """Total run time of the loaded BPF programs named ``prefix...``."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], check=True,
                         capture_output=True, text=True).stdout
    return sum(p.get("run_time_ns", 0) for p in json.loads(out)
               if p.get("name", "").startswith(prefix))
