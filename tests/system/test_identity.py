"""Identity against a real dockerd: cgroup ids read from /proc resolve to
the right container, also for containers started before the Resolver.

Needs root (to read every process's cgroup) and a running dockerd with the
local busybox test image.  Every container started here is force-removed.
"""

import logging
import os
import time
import uuid

import pytest

from dockertrace import DockerUnavailable, NoSuchContainer, docker_api
from dockertrace.identity import (CgroupTree, Resolver, cgroup_dir,
                                  cgroup_id_of_pid, cgroup_layout,
                                  container_of_pid)

pytestmark = [pytest.mark.docker, pytest.mark.root]

log = logging.getLogger(__name__)

#: The test image goes by its new name once renamed; until then by the old.
IMAGES = ("dockertrace-busybox:latest", "dt-busybox:latest")


def _local_image():
    try:
        cli = docker_api.client()
    except Exception:
        # No daemon: the markers skip these tests; any name will do.
        return IMAGES[0]
    try:
        for name in IMAGES:
            if cli.api.images(name=name, quiet=True):
                return name
        return IMAGES[0]
    finally:
        cli.close()


IMAGE = _local_image()


@pytest.fixture
def docker_client():
    cli = docker_api.client()
    yield cli
    cli.close()


@pytest.fixture
def run(docker_client):
    """Start a container in the background; force-removed after the
    test."""
    started = []

    def start(*cmd, **kwargs):
        # Without a network the tests neither wait for nor depend on the
        # bridge, which other tests on this daemon may be reshaping.
        kwargs.setdefault("network_mode", "none")
        name = f"dt-identity-{uuid.uuid4().hex[:10]}"
        # Created and started apart, so a failed start still leaves a
        # container the cleanup knows about.
        ctr = docker_client.containers.create(IMAGE, list(cmd), name=name,
                                              **kwargs)
        started.append(ctr)
        ctr.start()
        ctr.reload()
        return ctr

    yield start
    for ctr in started:
        try:
            ctr.remove(force=True)
        except Exception as err:    # already gone is fine
            log.debug("cleanup of %s: %s", ctr.name, err)


def _wait_for_status(ctr, status, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ctr.reload()
        if ctr.status == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{ctr.name} still {ctr.status}, not {status}")


def test_container_started_before_resolver(run):
    ctr = run("sleep", "60", labels={"dockertrace.test": "identity"})
    pid = ctr.attrs["State"]["Pid"]
    assert pid > 0

    # The id BPF would report is the inode of the container's v2 cgroup.
    cgid = cgroup_id_of_pid(pid)
    assert cgid == os.stat(cgroup_dir(f"/docker/{ctr.id}")).st_ino
    assert container_of_pid(pid).container_id == ctr.id
    assert container_of_pid(pid).runtime == "docker"

    # Made after the container started: it must find it by walking.
    with Resolver() as res:
        info = res.resolve_cgroup_id(cgid)
        assert info is not None
        assert info.id == ctr.id
        assert info.name == ctr.name
        assert info.image == IMAGE
        assert info.image_id == ctr.image.id
        assert info.init_pid == pid
        assert info.labels["dockertrace.test"] == "identity"
        assert info.status == "running" and not info.gone
        assert info.started_at >= info.created_at
        assert info.graph_driver == "overlay2"
        assert os.path.isdir(info.merged_dir)
        assert os.path.isdir(info.upper_dir)
        assert info.lower_dirs and all(
            os.path.isdir(d) for d in info.lower_dirs)
        assert info.network_mode == "none"

        # The same container by name and by short id.
        assert res.lookup(ctr.name).id == ctr.id
        assert res.lookup(ctr.id[:12]).id == ctr.id


def test_host_cgroup_is_not_a_container():
    with Resolver() as res:
        assert res.resolve_cgroup_id(cgroup_id_of_pid(1)) is None
        assert res.resolve_cgroup_id(
            os.stat(cgroup_layout().unified.mount_point).st_ino) is None


def test_container_started_after_first_walk(run):
    tree = CgroupTree(refresh_interval_s=0)
    with Resolver(tree=tree) as res:
        tree.refresh()
        ctr = run("sleep", "60")
        cgid = cgroup_id_of_pid(ctr.attrs["State"]["Pid"])
        assert res.resolve_cgroup_id(cgid).id == ctr.id


def test_exited_then_removed_container_is_gone(run):
    ctr = run("sleep", "60")
    cgid = cgroup_id_of_pid(ctr.attrs["State"]["Pid"])
    with Resolver(ttl_s=0) as res:
        assert not res.resolve_cgroup_id(cgid).gone

        ctr.kill()
        _wait_for_status(ctr, "exited")
        info = res.resolve_cgroup_id(cgid)
        assert info.gone and info.status == "exited"
        assert info.init_pid is None

        # Its cgroup is gone too, but what was learned stays.
        ctr.remove(force=True)
        info = res.resolve_cgroup_id(cgid)
        assert info.gone and info.status == "removed"
        assert info.id == ctr.id and info.name == ctr.name


def test_unknown_name_raises():
    with Resolver() as res:
        with pytest.raises(NoSuchContainer) as exc:
            res.lookup("dt-identity-no-such-container")
    assert exc.value.ref == "dt-identity-no-such-container"
    assert "no such container: dt-identity-no-such-container" in str(
        exc.value)


def test_bogus_docker_host(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    with pytest.raises(DockerUnavailable) as exc:
        Resolver().lookup("anything")
    assert exc.value.url == "unix:///nonexistent.sock"
    assert str(exc.value) == (
        "cannot reach the Docker daemon at unix:///nonexistent.sock: "
        "No such file or directory; start dockerd (or set DOCKER_HOST "
        "to where it listens)")
