"""Benchmark sections built from workload output captured as text: the
figures, series and sentences, without containers."""

import pytest

from dockertrace.bench import cpu, io, memory, network, suite
from dockertrace.bench.parse import CpuStat, Schedstat, SmapsRollup

# Captured from busybox in a container (test modules cannot import each
# other under --import-mode=importlib, so test_bench_parse's copies are
# not reused).
BUSYBOX_PING = """\
PING 172.18.0.2 (172.18.0.2): 56 data bytes
64 bytes from 172.18.0.2: seq=0 ttl=64 time=0.834 ms
64 bytes from 172.18.0.2: seq=1 ttl=64 time=0.075 ms
64 bytes from 172.18.0.2: seq=2 ttl=64 time=0.072 ms

--- 172.18.0.2 ping statistics ---
3 packets transmitted, 3 packets received, 0% packet loss
round-trip min/avg/max = 0.072/0.327/0.834 ms
"""


def mark(name, sec, usec):
    """What ``m NAME`` prints: the name, then adjtimex's clock lines."""
    return (f"@mark {name}\n    precision:    1 us\n"
            f"    time.tv_sec:  {sec}\n    time.tv_usec: {usec}\n"
            "    return value: 5 (clock not synchronized)\n")


def _io_text(runs, secs):
    """The throughput script's output when every dd takes ``secs``."""
    out, t = [], 0
    for r in range(1, runs + 1):
        for name, _ in io.TARGETS:
            out.append(mark(f"{name}.{r}.a", 100, t))
            out.append(f"{io.WRITE_MIB}+0 records in\n"
                       f"{io.WRITE_MIB}+0 records out\n")
            t += int(secs * 1e6)
            out.append(mark(f"{name}.{r}.b", 100, t))
    return "".join(out)


def test_throughput_from_marks():
    rates = io.parse_throughput(_io_text(2, 0.25), 2)
    assert rates == {"layer": [256.0, 256.0], "volume": [256.0, 256.0],
                     "tmpfs": [256.0, 256.0]}


def test_short_dd_is_an_error():
    text = _io_text(1, 0.1).replace(f"{io.WRITE_MIB}+0 records out",
                                    "3+0 records out", 1)
    with pytest.raises(io.WorkloadFailed, match="3\\+0"):
        io.parse_throughput(text, 1)


def test_scripts_name_their_marks():
    s = io.throughput_script(2)
    assert "m layer.2.b" in s and "conv=fsync" in s
    c = io.copyup_script()
    assert c.count("echo x >> /data/f64m") == 2


def _copyup_text(first_ms, second_ms):
    out = []
    t = 0
    for f, size in zip(io.COPYUP_FILES, (4096, 1 << 20, 64 << 20)):
        out.append(f"@size {f} {size}\n")
        out.append(mark(f"{f}.1", 10, t))
        t += int(first_ms[f] * 1000)
        out.append(mark(f"{f}.2", 10, t))
        t += int(second_ms * 1000)
        out.append(mark(f"{f}.3", 10, t))
    return "".join(out)


def test_copyup_section_without_tracer():
    firsts = {"f4k": 3.0, "f1m": 5.0, "f64m": 200.0}
    runs = [io.parse_copyup(_copyup_text(firsts, 1.0)) for _ in range(3)]
    assert runs[0]["f64m"] == (64 << 20, 200.0, 1.0)
    rates = {"layer": [900.0], "volume": [1000.0], "tmpfs": [1500.0]}
    s = io.build_section(rates, runs, runs=3, image="img",
                         why_not="no tracer here")
    assert s.figure("io.copyup.f64m.cost_ms").value == 199.0
    assert s.figure("io.write.tmpfs.mib_s").value == 1500.0
    line = next(x for x in s.series if x.kind == "line")
    assert line.x == (4096, 1 << 20, 64 << 20) and line.log_x
    assert line.y["first write"] == [3.0, 5.0, 200.0]
    assert any("Not traced: no tracer here" in e for e in s.explanation)
    assert s.rerun == "dockertrace bench --suite io --runs 3 --image img"
    assert s.mechanisms == {} and s.dropped_events == 0


def test_network_client_output():
    text = (mark("ping", 5, 0) + BUSYBOX_PING
            + mark("tp.1.a", 5, 100) + mark("tp.1.b", 6, 100))
    ping, rates = network.parse_client(text, 1, mib=32)
    assert ping.rtts_ms == (0.834, 0.075, 0.072)
    assert rates == [32.0]
    bridge = (ping, rates)
    host = (type(ping)(3, 3, (0.05, 0.04, 0.06)), [128.0])
    s = network.build_section({"bridge": bridge, "host": host}, runs=1,
                              image="img")
    assert s.figure("network.bridge.rtt_ms").value == 0.075
    assert s.figure("network.host.throughput_mib_s").value == 128.0
    bars = s.series[0]
    assert bars.kind == "bars" and bars.x == ("bridge", "host")


def test_network_without_replies_is_an_error():
    text = mark("ping", 5, 0) + (
        "3 packets transmitted, 0 packets received, 100% packet loss\n")
    with pytest.raises(network.WorkloadFailed):
        network.parse_client(text, 0)


def _samples(throttled_ms_per_period, delay_ms_per_tick, n=10):
    out = []
    for i in range(n + 1):
        out.append(cpu.Sample(
            t=i * 0.1,
            cpu=CpuStat(i, i, int(i * throttled_ms_per_period * 1e6)),
            periodic=Schedstat(i * 100_000, int(i * 9 * delay_ms_per_tick
                                                * 1e6), i * 9),
            busy=Schedstat(i * 25_000_000, 0, i)))
    return out


def test_cpu_summary_from_samples():
    s = cpu.summarize(_samples(70.0, 4.0))
    assert s["periods"] == 10 and s["throttled_pct"] == 100.0
    assert s["throttled_ms_per_period"] == pytest.approx(70.0)
    assert s["delay_ms"] == pytest.approx(4.0)
    assert s["wakeups_per_s"] == pytest.approx(90.0)
    assert s["used_cpus"] == pytest.approx(0.251)


def test_cpu_section_falls_back_to_cpu_stat_timeline():
    results = {0.25: (_samples(70.0, 4.0), None),
               1.0: (_samples(0.0, 0.5), None)}
    s = cpu.build_section(results, runs=1, image="img",
                          tracer_info={"why_not": "not here"})
    assert s.figure("cpu.limit_0_25.throttled_pct").value == 100.0
    assert s.figure("cpu.limit_1.tick_delay_ms").value == 0.5
    tl = s.series[0]
    assert tl.kind == "timeline" and len(tl.x) == 10
    assert tl.y["throttled ms per period"][0] == 70.0
    assert any("8x larger" in e for e in s.explanation)
    assert any("Not traced: not here" in e for e in s.explanation)


def test_memory_charges_only_the_first_reader():
    smaps = [SmapsRollup(1444, 513, 1392, 0, 0, 52)] * 3
    mib = 1 << 20
    before = [0, 0, 0]
    after = [[64 * mib, 0, 0], [64 * mib, 0, 0], [64 * mib, 4096, 0]]
    s = memory.build_section(smaps, before, after, [0.35, 0.15, 0.16],
                             runs=1, image="img")
    assert s.figure("memory.f64m.first_charge_mib").value == 64.0
    assert s.figure("memory.f64m.other_charge_mib").value == 0.0
    assert s.figure("memory.sleep.pss_kib").value < \
        s.figure("memory.sleep.rss_kib").value
    assert s.tables[0].rows[0][-1] == 64.0


def test_suite_names():
    assert suite._names(None) == suite.SECTIONS
    assert suite._names("cpu,startup") == ("startup", "cpu")
    with pytest.raises(ValueError, match="disk"):
        suite._names("disk")
