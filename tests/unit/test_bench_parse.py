"""Parsers of the benchmark suite, on text captured from busybox and
from this project's kernel (6.18, cgroup v1 controllers)."""

import pytest

from dockertrace.bench import parse

ADJTIMEX = """\
    mode:         0
-o  offset:       0 us
-f  freq.adjust:  0 (65536 = 1ppm)
    maxerror:     16000000
    esterror:     16000000
    status:       64 (UNSYNC)
-p  timeconstant: 2
    precision:    1 us
    tolerance:    32768000
-t  tick:         10000 us
    time.tv_sec:  {sec}
    time.tv_usec: {usec}
    return value: 5 (clock not synchronized)
"""


def mark(name, sec, usec):
    return f"@mark {name}\n" + ADJTIMEX.format(sec=sec, usec=usec)


BUSYBOX_DD = "64+0 records in\n64+0 records out\n"
GNU_DD = ("16+0 records in\n16+0 records out\n16777216 bytes (17 MB, "
          "16 MiB) copied, 0.0421 s, 399 MB/s\n")
BUSYBOX_DD_STATUS = ("16+0 records in\n16+0 records out\n16777216 bytes "
                     "(16.0MB) copied, 0.105929 seconds, 151.0MB/s\n")

BUSYBOX_PING = """\
PING 172.18.0.2 (172.18.0.2): 56 data bytes
64 bytes from 172.18.0.2: seq=0 ttl=64 time=0.834 ms
64 bytes from 172.18.0.2: seq=1 ttl=64 time=0.075 ms
64 bytes from 172.18.0.2: seq=2 ttl=64 time=0.072 ms

--- 172.18.0.2 ping statistics ---
3 packets transmitted, 3 packets received, 0% packet loss
round-trip min/avg/max = 0.072/0.327/0.834 ms
"""

IPUTILS_PING = """\
PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.
64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms
64 bytes from 10.0.0.1: icmp_seq=2 ttl=64 time=0.051 ms

--- 10.0.0.1 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 2030ms
rtt min/avg/max/mdev = 0.045/0.048/0.051/0.003 ms
"""

SMAPS_ROLLUP = """\
00400000-7fff5d31f000 ---p 00000000 00:00 0                  [rollup]
Rss:                1444 kB
Pss:                 764 kB
Pss_Dirty:            56 kB
Pss_Anon:             56 kB
Pss_File:            708 kB
Pss_Shmem:             0 kB
Shared_Clean:       1352 kB
Shared_Dirty:          0 kB
Private_Clean:        36 kB
Private_Dirty:        56 kB
Referenced:         1444 kB
Anonymous:            56 kB
Swap:                  0 kB
"""

CPU_STAT_V1 = """\
nr_periods 30
nr_throttled 27
throttled_time 2040000000
nr_bursts 0
burst_time 0
"""

CPU_STAT_V2 = """\
usage_usec 1000000
user_usec 900000
system_usec 100000
nr_periods 30
nr_throttled 12
throttled_usec 480000
"""

MEMORY_STAT_V1 = """\
cache 67108864
rss 57344
rss_huge 0
shmem 0
mapped_file 0
total_cache 67108864
total_rss 57344
"""

MEMORY_STAT_V2 = "anon 57344\nfile 4096\nkernel 8192\n"


def test_marks_and_segments():
    text = (mark("a", 1796327581, 432540) + BUSYBOX_DD
            + mark("b", 1796327581, 444395) + mark("c", 1796327582, 1))
    marks = parse.parse_marks(text)
    assert marks == {"a": 1796327581432540, "b": 1796327581444395,
                     "c": 1796327582000001}
    assert parse.mark_delta_s(marks, "a", "b") == pytest.approx(0.011855)
    assert parse.mark_delta_s(marks, "a", "zz") is None
    segs = parse.segments(text)
    assert segs["a"] == BUSYBOX_DD
    assert segs["b"] == "" and segs["c"] == ""


def test_mark_function_is_one_line_of_shell():
    # The scripts put it first; a newline inside would not matter, but
    # it must print the mark before the clock.
    assert parse.MARK_FUNCTION.startswith("m() {")
    assert parse.MARK_FUNCTION.index("@mark") < \
        parse.MARK_FUNCTION.index("adjtimex")


def test_dd_busybox_prints_only_records():
    dd = parse.parse_dd(BUSYBOX_DD)
    assert dd.records_in == dd.records_out == "64+0"
    assert dd.full_blocks_out == 64
    assert dd.bytes is None and dd.seconds is None


@pytest.mark.parametrize("text, secs", [(GNU_DD, 0.0421),
                                        (BUSYBOX_DD_STATUS, 0.105929)])
def test_dd_with_a_status_line(text, secs):
    dd = parse.parse_dd(text)
    assert dd.bytes == 16777216
    assert dd.seconds == secs
    assert dd.full_blocks_out == 16


def test_dd_partial_and_missing():
    dd = parse.parse_dd("3+1 records in\n3+1 records out\n")
    assert dd.full_blocks_out == 3
    assert parse.parse_dd("dd: can't open '/x': Read-only file system\n") \
        is None


def test_ping_busybox():
    p = parse.parse_ping(BUSYBOX_PING)
    assert (p.transmitted, p.received) == (3, 3)
    assert p.rtts_ms == (0.834, 0.075, 0.072)


def test_ping_iputils_with_loss():
    p = parse.parse_ping(IPUTILS_PING)
    assert (p.transmitted, p.received) == (3, 2)
    assert p.rtts_ms == (0.045, 0.051)


def test_ping_without_statistics():
    assert parse.parse_ping("ping: bad address 'nohost'\n") is None


def test_smaps_rollup():
    s = parse.parse_smaps_rollup(SMAPS_ROLLUP)
    assert (s.rss_kib, s.pss_kib) == (1444, 764)
    assert s.shared_kib == 1352
    assert s.private_kib == 92
    assert s.shared_kib + s.private_kib == s.rss_kib


def test_smaps_rollup_rejects_other_files():
    with pytest.raises(ValueError):
        parse.parse_smaps_rollup("Name:\tsleep\nVmRSS:\t1444 kB\n")


def test_schedstat():
    s = parse.parse_schedstat("30235737 6104615 138\n")
    assert s == parse.Schedstat(30235737, 6104615, 138)
    with pytest.raises(ValueError):
        parse.parse_schedstat("1 2\n")


def test_cpu_stat_v1_and_v2():
    v1 = parse.parse_cpu_stat(CPU_STAT_V1)
    assert v1 == parse.CpuStat(30, 27, 2_040_000_000)
    v2 = parse.parse_cpu_stat(CPU_STAT_V2)
    assert v2 == parse.CpuStat(30, 12, 480_000_000)


def test_cpu_stat_without_bandwidth_counters():
    # The v2 tree here has no cpu controller: only usage lines.
    with pytest.raises(ValueError, match="throttling"):
        parse.parse_cpu_stat("usage_usec 10\nuser_usec 5\n")


def test_page_cache_v1_and_v2():
    assert parse.page_cache_bytes(MEMORY_STAT_V1) == 64 << 20
    assert parse.page_cache_bytes(MEMORY_STAT_V2) == 4096
    with pytest.raises(ValueError):
        parse.page_cache_bytes("rss 1\n")


def test_median_and_percentile():
    assert parse.median([3, 1, 2]) == 2
    assert parse.median([4, 1, 2, 3]) == 2.5
    assert parse.percentile(list(range(1, 101)), 95) == 95
    assert parse.percentile([5.0], 95) == 5.0
    with pytest.raises(ValueError):
        parse.median([])
