"""Phase assembly, replayed from kernel event sequences recorded on real
container starts (tests/unit/fixtures/startup/record.py made them)."""

import json
import os
import random

import pytest

from dockertrace.startup.assemble import (PHASE_NAMES, Attribution,
                                          assemble, rootfs_path, select)
from dockertrace.startup.events import KernelEvent, Kind

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "startup")


def load(name):
    with open(os.path.join(FIXTURES, f"{name}.json")) as f:
        data = json.load(f)
    events = [KernelEvent.from_dict(e) for e in data["events"]]
    return events, data["starts"]


def build(events, start, **kw):
    return assemble(events, start["container_id"],
                    client_start_ns=start["client_start_ns"],
                    client_end_ns=start["client_end_ns"], **kw)


def assert_tiles(s):
    for a, b in zip(s.phases, s.phases[1:]):
        assert a.end_ns == b.start_ns
    assert all(p.duration_ns >= 0 for p in s.phases)
    assert sum(p.duration_ns for p in s.phases) == s.total_ns


def test_bridge_start_has_every_phase_in_order():
    events, (start,) = load("bridge")
    s = build(events, start)
    assert [p.name for p in s.phases] == list(PHASE_NAMES)
    assert s.missing == ()
    assert_tiles(s)
    assert s.phases[0].start_ns == start["client_start_ns"]
    assert s.total_ns == s.client_ns + s.late_exec_ns
    assert s.namespaces == ("mnt", "uts", "ipc", "pid", "net")
    # runc 1.1: 33 mounts while building the rootfs, 22 after pivot_root
    # (masked and read-only paths).
    assert s.mount_count == 55
    assert s.phase("mounts").detail.startswith("33 mounts")
    assert s.phase("pivot_root").detail.startswith("22 mounts")
    # Nine cgroup v1 hierarchies and the v2 tree.
    assert s.cgroup_dirs == 10
    assert s.phase("network").detail == "hook libnetwork-setkey"
    assert s.phase("security").detail == "seccomp filter, capset"
    assert s.phase("exec").detail == "true"


def test_host_network_start_has_no_network_phase():
    events, (start,) = load("host")
    s = build(events, start)
    assert s.missing == ("network",)
    assert "network" not in [p.name for p in s.phases]
    assert s.namespaces == ("mnt", "uts", "ipc", "pid")
    assert_tiles(s)


def test_events_of_each_phase_lie_inside_it():
    events, (start,) = load("bridge")
    s = build(events, start)
    for p in s.phases:
        for e in p.events:
            assert p.start_ns <= e.start_ns < p.end_ns
    kinds = {e.kind for e in s.phase("cgroups").events}
    assert Kind.CGROUP_MKDIR in kinds


def test_concurrent_starts_are_told_apart():
    events, starts = load("concurrent")
    a, b = (build(events, st) for st in starts)
    assert a.container_id != b.container_id
    for s, st, other in ((a, starts[0], b), (b, starts[1], a)):
        assert s.missing == ()
        assert_tiles(s)
        assert s.phase("exec").detail == " ".join(st["args"][1:])
        for e in (e for p in s.phases for e in p.events):
            assert other.container_id not in e.path
            assert other.container_id not in " ".join(e.args)
    # Each start has its own rootfs and its own daemon overlay mounts.
    ra = rootfs_path(select(events, a.container_id))
    rb = rootfs_path(select(events, b.container_id))
    assert ra and rb and ra != rb


def test_without_client_times_the_start_runs_from_rootfs_to_exec():
    events, (start,) = load("bridge")
    s = assemble(events, start["container_id"])
    names = [p.name for p in s.phases]
    assert names[0] == "rootfs" and names[-1] == "exec"
    assert s.client_ns is None
    assert s.missing == ()
    assert_tiles(s)


def test_arrival_order_does_not_matter():
    events, (start,) = load("bridge")
    shuffled = list(events)
    random.Random(7).shuffle(shuffled)
    assert build(shuffled, start) == build(events, start)


def test_a_missing_milestone_merges_into_the_previous_phase():
    events, (start,) = load("bridge")
    no_pivot = [e for e in events if e.kind is not Kind.PIVOT_ROOT]
    full = build(events, start)
    s = build(no_pivot, start)
    assert "pivot_root" in s.missing
    assert_tiles(s)
    assert s.total_ns == full.total_ns
    # The network phase now runs on to the security milestone.
    assert (s.phase("network").duration_ns ==
            full.phase("network").duration_ns
            + full.phase("pivot_root").duration_ns)


def test_unknown_container_has_no_events():
    events, _ = load("bridge")
    with pytest.raises(ValueError, match="no kernel events"):
        assemble(events, "f" * 64)


def _ev(kind, t, tgid, **kw):
    return KernelEvent(kind=kind, ts_ns=t, start_ns=t, pid=tgid, tgid=tgid,
                       ppid=1, comm=kw.pop("comm", "runc"), **kw)


def test_attribution_follows_forks_and_forgets_reused_pids():
    cid = "ab" * 32
    attr = Attribution()
    seq = [
        _ev(Kind.EXEC, 1, 10, args=("runc", "--log", f"/x/{cid}/log.json",
                                    "create", cid)),
        _ev(Kind.FORK, 2, 10, aux=11),
        _ev(Kind.FORK, 3, 11, aux=12),
        # pid 11 is reused by an unrelated process forked by pid 99.
        _ev(Kind.FORK, 4, 99, aux=11),
    ]
    owners = [attr.feed(e) for e in seq]
    assert owners[:3] == [cid, cid, cid]
    assert attr.owner.get(12) == cid
    assert 11 not in attr.owner


def test_an_exec_without_a_runtime_is_not_attributed():
    cid = "cd" * 32
    attr = Attribution()
    # Some tool that merely names a container id on its command line.
    ev = _ev(Kind.EXEC, 1, 20, comm="grep", args=("grep", cid))
    assert attr.feed(ev) is None
