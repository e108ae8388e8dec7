"""The startup tracer against a real dockerd, real containers, real BPF."""

import statistics
import threading
import time

import pytest

from dockertrace.startup import (PHASE_NAMES, StartupTracer, trace_startup,
                                 watch_startups)
from dockertrace.startup.assemble import runc_subcommand
from dockertrace.startup.events import Kind

pytestmark = [pytest.mark.root, pytest.mark.docker]


@pytest.fixture(scope="module")
def tracer():
    with StartupTracer() as t:
        yield t


def _assert_tiles(s):
    """Phases are in order, back to back, and add up to the total."""
    for a, b in zip(s.phases, s.phases[1:]):
        assert a.end_ns == b.start_ns
    assert all(p.duration_ns >= 0 for p in s.phases)
    assert sum(p.duration_ns for p in s.phases) == s.total_ns


def test_every_phase_in_order(tracer, busybox_image, docker_client):
    res = trace_startup([busybox_image, "true"], tracer=tracer)
    s = res.runs[0]

    assert [p.name for p in s.phases] == list(PHASE_NAMES), s.missing
    assert s.missing == ()
    _assert_tiles(s)
    # The outer boundaries are the client's own clock readings (unless the
    # command was exec'd after the start call returned: then the start
    # ends with the exec).
    assert s.total_ns == s.client_ns + s.late_exec_ns
    assert s.namespaces[:5] == ("mnt", "uts", "ipc", "pid", "net")
    assert s.mount_count > 5
    assert s.cgroup_dirs >= 1
    assert s.phase("exec").detail == "true"
    assert res.dropped_events == 0
    # The container the tracer started is gone again.
    after = {c.id for c in docker_client.containers.list(all=True,
                                                         sparse=True)}
    assert s.container_id not in after


def test_events_belong_to_the_container(tracer, busybox_image):
    s = trace_startup([busybox_image, "true"], tracer=tracer).runs[0]
    events = [e for p in s.phases for e in p.events]
    cid = s.container_id
    mkdirs = [e for e in events if e.kind is Kind.CGROUP_MKDIR]
    assert mkdirs and all(cid in e.path for e in mkdirs)
    creates = [e for e in events if e.kind is Kind.EXEC
               and runc_subcommand(e) == "create"]
    assert len(creates) == 1 and cid in " ".join(creates[0].args)
    # The daemon's overlay mounts were matched to this container's rootfs.
    rootfs = s.phase("rootfs").events
    assert any(e.kind is Kind.MOUNT and e.args[1] == "overlay"
               for e in rootfs)


def _median_phase(tracer, args, phase, runs=3):
    res = trace_startup(args, runs=runs, tracer=tracer)
    # A phase that did not happen took no time.
    return statistics.median(r.phase(phase).duration_ns if r.phase(phase)
                             else 0 for r in res.runs)


def test_network_mode_difference_is_in_the_network_phase(tracer,
                                                         busybox_image):
    bridge = _median_phase(tracer, [busybox_image, "true"], "network")
    host = _median_phase(tracer, ["--network", "host", busybox_image,
                                  "true"], "network")
    # Bridge networking sets up a veth pair and the container's netns in
    # the prestart hook; host networking runs no such hook at all.
    assert host == 0
    assert bridge > 20_000_000, bridge


def test_two_concurrent_starts_are_told_apart(tracer, busybox_image):
    results = {}

    def run(tag):
        results[tag] = trace_startup(
            ["--label", f"dt-test={tag}", busybox_image, "sh", "-c",
             f"exit 0 # {tag}"], tracer=tracer).runs[0]

    threads = [threading.Thread(target=run, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = results["a"], results["b"]
    assert a.container_id != b.container_id
    for s, tag in ((a, "a"), (b, "b")):
        assert s.missing == (), s.missing
        _assert_tiles(s)
        assert s.phase("exec").detail.endswith(f"# {tag}")
        other = b if s is a else a
        for e in (e for p in s.phases for e in p.events):
            assert other.container_id not in e.path
            assert other.container_id not in " ".join(e.args)


def test_container_started_before_the_tracer_is_named(container_factory,
                                                      docker_client):
    c = container_factory(["sleep", "30"], name="before")
    stop = threading.Event()
    seen = []

    def watch():
        for s in watch_startups(duration_s=20, stop=stop):
            seen.append(s)
            if s.container_id == c.id:
                stop.set()

    th = threading.Thread(target=watch)
    th.start()
    time.sleep(1.0)         # let the watcher attach
    c.restart(timeout=0)
    th.join(timeout=25)
    stop.set()
    mine = [s for s in seen if s.container_id == c.id]
    assert mine, [s.container_id for s in seen]
    assert mine[0].name == c.name
    # The cgroup id the kernel reported is the container's cgroup, as the
    # identity layer resolves it for a container started before the tracer.
    from dockertrace.identity import Resolver
    with Resolver() as r:
        assert r.resolve_cgroup_id(mine[0].cgroup_id).id == c.id
    assert mine[0].phase("exec").detail == "sleep 30"


def test_cold_and_warm_runs(tracer, busybox_image):
    res = trace_startup([busybox_image, "true"], runs=2, cold=True,
                        tracer=tracer)
    assert [r.cold for r in res.runs] == [True, False, True, False]
    assert res.cold.runs == 2 and res.warm.runs == 2
    for summary in (res.cold, res.warm):
        assert [p.name for p in summary.phases] == list(PHASE_NAMES)
        for p in summary.phases:
            assert p.min_ns <= p.median_ns <= p.max_ns
