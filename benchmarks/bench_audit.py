"""Benchmark of the security audit.

Starts N containers (busybox `sleep`, bridge networking, labelled and
removed afterwards), then times ``dockertrace.audit()`` over exactly those
containers, daemon checks included, ``--runs`` times, and reports the
median and the spread for N = 4 and N = 50.  The first (cold) call, which
imports docker-py and pyroute2, is reported apart; the timed runs reuse
one docker-py client, as a long-running caller would.

Target (from issue 6): under 0.2 s for 4 containers, under 2 s for 50.
Numbers are printed (and written as JSON with --json), never asserted.

    python3 benchmarks/bench_audit.py [--sizes 4,50] [--runs 7] [--json F]
"""

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import time
import uuid

TARGETS_S = {4: 0.2, 50: 2.0}
IMAGE = "dockertrace-busybox:latest"


def _start(client, n, tag):
    from dockertrace import docker_api

    def one(i):
        c = client.containers.create(
            IMAGE, ["sleep", "3600"], detach=True,
            name=f"dt-bench-audit-{tag}-{i}",
            **docker_api.owned({}, "bench-audit"))
        c.start()
        return c

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def _remove(containers):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: c.remove(force=True), containers))


def bench(client, n, runs):
    from dockertrace.audit import audit

    tag = uuid.uuid4().hex[:6]
    containers = _start(client, n, tag)
    try:
        ids = [c.id for c in containers]
        t = time.perf_counter()
        first = audit(ids, client=client)
        cold_s = time.perf_counter() - t
        times, cpu = [], []
        for _ in range(runs):
            t = time.perf_counter()
            c0 = os.times()
            report = audit(ids, client=client)
            times.append(time.perf_counter() - t)
            c1 = os.times()
            # CPU of this process and of the namespace children it waited
            # for: what the audit costs, whatever else loads the machine.
            cpu.append(sum(c1[:4]) - sum(c0[:4]))
        audited = sum(1 for c in report.containers if not c.gone)
        return {
            "containers": n, "audited": audited,
            "findings": len(report.findings),
            "first_call_s": round(cold_s, 4),
            "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4), "max_s": round(max(times), 4),
            "median_cpu_s": round(statistics.median(cpu), 4),
            "load_avg_1m": os.getloadavg()[0],
            "target_s": TARGETS_S.get(n),
            "gone_in_first": sum(1 for c in first.containers if c.gone),
        }
    finally:
        _remove(containers)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4,50")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)

    from dockertrace import docker_api
    client = docker_api.client()
    results = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            r = bench(client, n, args.runs)
            results.append(r)
            met = r["target_s"] and r["median_s"] < r["target_s"]
            target = (f" (target {r['target_s']} s: "
                      f"{'met' if met else 'MISSED'})"
                      if r["target_s"] else "")
            print(f"{n:3d} containers: median {r['median_s']:.3f} s "
                  f"[{r['min_s']:.3f}-{r['max_s']:.3f}] over {args.runs} "
                  f"runs{target}; first call {r['first_call_s']:.3f} s; "
                  f"{r['audited']} audited, {r['findings']} findings; "
                  f"CPU {r['median_cpu_s']:.3f} s; load average "
                  f"{r['load_avg_1m']:.1f}")
    finally:
        client.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
