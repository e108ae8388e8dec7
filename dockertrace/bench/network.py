"""network: container-to-container round trips and throughput, on a
user-defined bridge against host networking.

Per mode, a server container runs a persistent ``nc`` sink and a client
container pings it and then pushes ``dd`` output through ``nc`` to it,
timed between two clock marks. On the bridge both sit on a network of
their own (``dockertrace-bench-<session>-net``); with ``--network host``
both use the host's loopback.
"""

import logging
import random

from dockertrace.bench.common import (Containers, Reporter, WorkloadFailed,
                                      figure_of, rerun)
from dockertrace.bench.model import Section, Series, Table
from dockertrace.bench.parse import (MARK_FUNCTION, mark_delta_s, median,
                                     parse_marks, parse_ping, percentile,
                                     segments)

log = logging.getLogger(__name__)

MODES = ("bridge", "host")
#: MiB pushed per throughput run. busybox nc copies through a small
#: buffer, which holds it to about 150 MiB/s on loopback and 30 MiB/s
#: over the bridge here; 32 MiB keeps a bridge run near a second while
#: the few hundred KiB still in socket buffers when the client's nc
#: exits stay around 1 % of it.
SEND_MIB = 32
PING_INTERVAL_S = 0.2


def ping_count(runs):
    return max(5, 5 * runs)


def server_script(port):
    # -ll with -e keeps listening and forks a sink per connection, so the
    # client's runs (and its readiness probe) never race a restart.
    return ("printf '#!/bin/sh\\ncat > /dev/null\\n' > /sink && "
            f"chmod +x /sink && exec nc -ll -p {port} -e /sink")


def client_script(target, port, runs, count, mib=SEND_MIB):
    return "\n".join([
        MARK_FUNCTION,
        "set -e",
        # Wait until the server listens (it starts a moment before).
        "i=0",
        f"until nc {target} {port} < /dev/null 2>/dev/null; do",
        "  i=$((i+1)); [ $i -lt 100 ] || exit 3; sleep 0.1",
        "done",
        "m ping",
        f"ping -c {count} -i {PING_INTERVAL_S} {target} 2>&1",
        *[line for r in range(1, runs + 1) for line in (
            f"m tp.{r}.a",
            f"dd if=/dev/zero bs=1M count={mib} 2>/dev/null "
            f"| nc {target} {port}",
            f"m tp.{r}.b")],
    ])


def parse_client(text, runs, mib=SEND_MIB):
    """``(PingResult, [MiB/s per run])`` of one client's output."""
    ping = parse_ping(segments(text).get("ping", ""))
    if ping is None or not ping.rtts_ms:
        raise WorkloadFailed(f"no ping replies in: {text[-300:]!r}")
    marks = parse_marks(text)
    rates = []
    for r in range(1, runs + 1):
        secs = mark_delta_s(marks, f"tp.{r}.a", f"tp.{r}.b")
        if not secs:
            raise WorkloadFailed(f"no timing for throughput run {r}")
        rates.append(round(mib / secs, 1))
    return ping, rates


def run(*, runs=3, image, progress=None, modes=MODES):
    rep = Reporter("network", 2 * len(modes), progress)
    results = {}
    with Containers() as box:
        for mode in modes:
            rep.step(f"{mode}: server and client containers")
            port = random.randint(20000, 60000)
            if mode == "bridge":
                net = box.network("net")
                kw = {"network": net.name}
            else:
                kw = {"network_mode": "host"}
            server = box.start(image, ["sh", "-c", server_script(port)],
                               hint=f"{mode}-server", **kw)
            if mode == "bridge":
                target = (server.attrs["NetworkSettings"]["Networks"]
                          [net.name]["IPAddress"])
            else:
                target = "127.0.0.1"
            rep.step(f"{mode}: ping x{ping_count(runs)}, {runs} x "
                     f"{SEND_MIB} MiB")
            out = box.run(image, ["sh", "-c", client_script(
                target, port, runs, ping_count(runs))],
                hint=f"{mode}-client", **kw)
            results[mode] = parse_client(out, runs)
            box.remove(server)
    rep.finish()
    return build_section(results, runs=runs, image=image)


def build_section(results, *, runs, image):
    figures, rows = [], []
    for mode, (ping, rates) in results.items():
        rtts = list(ping.rtts_ms)
        figures += [
            figure_of(f"network.{mode}.rtt_ms",
                      f"round trip, --network {mode}", rtts, "ms",
                      f"median of {len(rtts)} pings (min, max)"),
            figure_of(f"network.{mode}.throughput_mib_s",
                      f"TCP throughput, --network {mode}", rates, "MiB/s",
                      f"median of {len(rates)} transfers of {SEND_MIB} "
                      "MiB (min, max)", digits=1)]
        rows.append((mode, round(median(rtts), 3),
                     round(percentile(rtts, 95), 3),
                     f"{ping.received}/{ping.transmitted}",
                     round(median(rates), 1)))
    modes = tuple(results)
    series = (
        Series(key="network.latency.by_mode",
               title="Latency by network mode", kind="bars", x=modes,
               y={"median": [round(median(results[m][0].rtts_ms), 3)
                             for m in modes],
                  "p95": [round(percentile(results[m][0].rtts_ms, 95), 3)
                          for m in modes]},
               x_label="network mode", y_label="round trip (ms)"),
        Series(key="network.throughput.by_mode",
               title="Throughput by network mode", kind="bars", x=modes,
               y={"median": [round(median(results[m][1]), 1)
                             for m in modes]},
               x_label="network mode", y_label="MiB/s"))
    table = Table(
        title="Container to container",
        columns=("mode", "rtt ms", "p95 ms", "replies", "MiB/s"),
        rows=tuple(rows),
        note=f"ping -i {PING_INTERVAL_S}; throughput: dd | nc into an nc "
             "sink, timed in the client")
    return Section(
        name="network", title="Network: bridge against host",
        figures=tuple(figures), tables=(table,), series=series,
        explanation=tuple(explain(results)),
        rerun=rerun("network", runs, image))


def explain(results):
    out = []
    if "bridge" in results and "host" in results:
        b = median(results["bridge"][0].rtts_ms)
        h = median(results["host"][0].rtts_ms)
        bt = median(results["bridge"][1])
        ht = median(results["host"][1])
        out.append(
            f"A round trip took {b:.3f} ms over the bridge and {h:.3f} ms "
            f"over the host's loopback ({b / h:.1f}x); throughput was "
            f"{bt:.0f} against {ht:.0f} MiB/s.")
        out.append(
            "On the bridge each packet leaves the sender's network "
            "namespace through its veth pair, is forwarded by the bridge "
            "and enters the receiver's namespace through another veth "
            "pair; with host networking both containers share the host's "
            "namespace and the packet only crosses loopback.")
    out.append("busybox nc moves data in small reads and writes, so the "
               "throughput figures are bound by the cost per write and "
               "per packet on each path rather than by bandwidth.")
    out.append("No tracer is attached in this section; the figures are "
               "measured from inside the containers.")
    return out
