"""The benchmark suite against a real dockerd: each section with one run,
figures present and plausible (no timing thresholds), and nothing left
behind, also when interrupted."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from dockertrace.bench import Containers, suite
from dockertrace.bench.common import SESSION_ENV, SESSION_LABEL

CLI = [sys.executable, "-m", "dockertrace"]
OWNER = "dockertrace.owner=bench"

pytestmark = [pytest.mark.root, pytest.mark.docker]


def _leftovers(client, session):
    # Others on this machine may run the suite at the same time (the
    # report runs it too): look only at this test's session.
    flt = {"label": [OWNER, f"{SESSION_LABEL}={session}"]}
    # sparse: no inspect per container, which fails for one the suite
    # removes between the listing and the inspect.
    return (client.containers.list(all=True, sparse=True, filters=flt)
            + client.networks.list(filters=flt)
            + client.volumes.list(filters=flt))


@pytest.fixture
def session(monkeypatch):
    """A session id of this test's own; the suite, in this process and in
    the CLI's, labels everything with it."""
    sid = "t" + uuid.uuid4().hex[:7]
    monkeypatch.setenv(SESSION_ENV, sid)
    return sid


@pytest.fixture
def clean(docker_client, busybox_image, bigfiles_image, session):
    yield busybox_image
    assert not _leftovers(docker_client, session)


def _section(name, image):
    result = suite.run_suite(suites=(name,), runs=1, image=image)
    (s,) = result.sections
    assert s.name == name
    assert not s.error, s.error
    assert s.rerun == (f"dockertrace bench --suite {name} --runs 1 "
                       f"--image {image}")
    assert s.explanation
    return s


def test_startup(clean):
    s = _section("startup", clean)
    for mode in ("bridge", "host", "none"):
        for kind in ("warm", "cold"):
            assert s.figure(f"startup.{kind}.{mode}.total_ms").value > 0
    # Only bridge and none run the network prestart hook.
    assert s.figure("startup.warm.bridge.network_ms").value > 0
    assert s.figure("startup.warm.host.network_ms") is None
    falls = [x for x in s.series if x.kind == "waterfall"]
    assert {x.key for x in falls} == {f"startup.waterfall.{m}"
                                      for m in ("bridge", "host", "none")}
    for x in falls:
        assert len(x.y["warm"]) == len(x.y2["warm"]) == len(x.x)
    assert s.mechanisms and s.dropped_events == 0


def test_io(clean):
    s = _section("io", clean)
    for target in ("layer", "volume", "tmpfs"):
        assert s.figure(f"io.write.{target}.mib_s").value > 0
    for f in ("f4k", "f1m", "f64m"):
        assert s.figure(f"io.copyup.{f}.first_ms").value > 0
        assert s.figure(f"io.copyup.{f}.second_ms").value > 0
    line = next(x for x in s.series if x.kind == "line")
    assert line.log_x and line.x == (4096, 1 << 20, 64 << 20)
    traced = s.figure("io.copyup.traced_count")
    if traced is not None:
        # One copy-up per file's first write, none on the second.
        assert traced.value == 3
    else:
        assert any("Not traced" in e for e in s.explanation)


def test_network(clean):
    s = _section("network", clean)
    for mode in ("bridge", "host"):
        assert s.figure(f"network.{mode}.rtt_ms").value > 0
        assert s.figure(f"network.{mode}.throughput_mib_s").value > 0
    bars = next(x for x in s.series if x.key == "network.latency.by_mode")
    assert bars.kind == "bars" and bars.x == ("bridge", "host")


def test_memory(clean):
    s = _section("memory", clean)
    rss = s.figure("memory.sleep.rss_kib").value
    pss = s.figure("memory.sleep.pss_kib").value
    assert 0 < pss < rss
    assert s.figure("memory.sleep.shared_kib").value > 0
    # The first reader is charged for the whole file, the others for
    # (nearly) none of it.
    assert s.figure("memory.f64m.first_charge_mib").value >= 60
    assert s.figure("memory.f64m.other_charge_mib").value < 8


def test_cpu(clean):
    s = _section("cpu", clean)
    for key in ("limit_0_25", "limit_0_5", "limit_1"):
        assert s.figure(f"cpu.{key}.used_cpus").value > 0
        assert 0 <= s.figure(f"cpu.{key}.throttled_pct").value <= 100
    # A busy loop at a quarter of a CPU is throttled, however loaded the
    # host is: it always has more to run than 25 ms per 100 ms period.
    assert s.figure("cpu.limit_0_25.throttled_pct").value > 0
    tl = [x for x in s.series if x.kind == "timeline"]
    assert len(tl) == 3 and all(len(x.x) > 0 for x in tl)


def test_containers_removed_on_keyboard_interrupt(docker_client, clean,
                                                  session):
    with pytest.raises(KeyboardInterrupt):
        with Containers() as box:
            box.network("net")
            box.volume("vol")
            box.start(clean, ["sleep", "60"], hint="a")
            assert len(_leftovers(docker_client, session)) == 3
            raise KeyboardInterrupt


def test_json_output(clean):
    r = subprocess.run([*CLI, "bench", "--suite", "memory", "--runs", "1",
                        "--json"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    (sec,) = d["sections"]
    assert sec["name"] == "memory" and sec["figures"]
    assert d["environment"]["cpus"] >= 1 and d["duration_s"] > 0


def test_unknown_section_is_a_usage_error():
    r = subprocess.run([*CLI, "bench", "--suite", "disk"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "disk" in r.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130),
                                       (signal.SIGTERM, 143)])
@pytest.mark.parametrize("section", ["network", "memory"])
def test_signal_removes_everything(sig, code, section, docker_client,
                                   clean, session):
    p = subprocess.Popen([*CLI, "bench", "--suite", section, "--runs",
                          "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ))
    try:
        # Interrupt once the first container of this run exists.
        deadline = time.monotonic() + 120
        flt = {"label": [OWNER, f"{SESSION_LABEL}={session}"]}
        while not docker_client.containers.list(all=True, sparse=True,
                                                filters=flt):
            # communicate() only once the suite has ended: it waits.
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no container in 120 s"
            time.sleep(0.05)
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
    finally:
        # A failure above must not leave the suite running into the
        # next test.
        if p.poll() is None:
            p.terminate()
            p.communicate(timeout=120)
    assert p.returncode == code, err
    assert not _leftovers(docker_client, session)
