"""Engine API side of identity: inspect JSON to ContainerInfo, the
Resolver's cache and its view of removed containers, and the translation
of an unreachable daemon into DockerUnavailable.

No root and no daemon needed.  The Resolver talks to a stand-in for
docker-py's low-level client that answers from a dict, as the daemon
would; what is under test is the Resolver's caching and translation.
"""

import datetime
import os

import pytest
from docker.errors import NotFound

from dockertrace import DockerUnavailable, NoSuchContainer, docker_api
from dockertrace.identity import CgroupTree, ContainerInfo, Resolver
from dockertrace.identity.docker import _parse_time

ID1 = "ddf60eb667c2e4b340763a3e6eff054a0de2725f4f1e7b2cd076b7865354c2eb"
ID2 = "fedcba9876543210" * 4
IMAGE_ID = ("sha256:75930238ae39758d09f0e17972b644f5"
            "b54c1dbad2835fa336a26d8813d6299d")
LAYER = "/var/lib/docker/overlay2/41479a711787425b2a83d703ece90121"

# Trimmed from `docker inspect` of a running container on dockerd 20.10.
INSPECT = {
    "Id": ID1,
    "Name": "/idtest",
    "Image": IMAGE_ID,
    "Created": "2026-12-03T19:23:32.977945518Z",
    "State": {"Status": "running", "Running": True, "Pid": 5812,
              "StartedAt": "2026-12-03T19:23:33.404904861Z",
              "FinishedAt": "0001-01-01T00:00:00Z"},
    "Config": {"Image": "dt-busybox", "Labels": {"team": "kernel"}},
    "HostConfig": {"NetworkMode": "default", "CgroupParent": ""},
    "GraphDriver": {
        "Name": "overlay2",
        "Data": {
            "LowerDir": (f"{LAYER}-init/diff:"
                         "/var/lib/docker/overlay2/3e05/diff"),
            "MergedDir": f"{LAYER}/merged",
            "UpperDir": f"{LAYER}/diff",
            "WorkDir": f"{LAYER}/work",
        },
    },
}


def test_from_inspect():
    info = ContainerInfo.from_inspect(INSPECT, "dt-busybox@sha256:abc")
    assert info.id == ID1
    assert info.name == "idtest"
    assert info.image == "dt-busybox"
    assert info.image_id == IMAGE_ID
    assert info.image_digest == "dt-busybox@sha256:abc"
    assert dict(info.labels) == {"team": "kernel"}
    assert info.init_pid == 5812
    assert info.created_at == datetime.datetime(
        2026, 12, 3, 19, 23, 32, 977945, datetime.timezone.utc)
    assert info.started_at == datetime.datetime(
        2026, 12, 3, 19, 23, 33, 404904, datetime.timezone.utc)
    assert info.cgroup_parent == ""
    assert info.graph_driver == "overlay2"
    assert info.merged_dir == f"{LAYER}/merged"
    assert info.upper_dir == f"{LAYER}/diff"
    assert info.work_dir == f"{LAYER}/work"
    assert info.lower_dirs == (f"{LAYER}-init/diff",
                               "/var/lib/docker/overlay2/3e05/diff")
    assert info.network_mode == "default"
    assert info.status == "running"
    assert not info.gone


def test_from_inspect_exited_and_created():
    exited = dict(INSPECT, State={"Status": "exited", "Pid": 0,
                                  "StartedAt": "2026-12-03T19:23:33Z"})
    info = ContainerInfo.from_inspect(exited)
    assert info.gone and info.init_pid is None and info.image_digest is None

    created = dict(INSPECT, State={"Status": "created", "Pid": 0,
                                   "StartedAt": "0001-01-01T00:00:00Z"})
    info = ContainerInfo.from_inspect(created)
    assert not info.gone and info.started_at is None


def test_labels_are_read_only():
    info = ContainerInfo.from_inspect(INSPECT)
    with pytest.raises(TypeError):
        info.labels["team"] = "other"


@pytest.mark.parametrize("text,expected", [
    ("2026-12-03T19:23:32.977945518Z",
     datetime.datetime(2026, 12, 3, 19, 23, 32, 977945,
                       datetime.timezone.utc)),
    ("2026-12-03T19:23:32Z",
     datetime.datetime(2026, 12, 3, 19, 23, 32, 0, datetime.timezone.utc)),
    ("2026-12-03T21:23:32.5+02:00",
     datetime.datetime(2026, 12, 3, 19, 23, 32, 500000,
                       datetime.timezone.utc)),
    ("0001-01-01T00:00:00Z", None),
    ("", None),
    (None, None),
    ("yesterday", None),
])
def test_parse_time(text, expected):
    assert _parse_time(text) == expected


# --- Resolver

class FakeAPI:
    """Answers inspect calls from dicts, as dockerd would."""

    def __init__(self):
        self.containers = {}
        self.images = {}
        self.calls = 0

    def inspect_container(self, ref):
        self.calls += 1
        for data in self.containers.values():
            if ref in (data["Id"], data["Name"].lstrip("/")) or (
                    len(ref) >= 4 and data["Id"].startswith(ref)):
                return data
        raise NotFound(f"No such container: {ref}")

    def inspect_image(self, image_id):
        if image_id not in self.images:
            raise NotFound(f"No such image: {image_id}")
        return self.images[image_id]


class FakeClient:
    def __init__(self):
        self.api = FakeAPI()
        self.closed = False

    def close(self):
        self.closed = True


class FakeClock:
    def __init__(self):
        self.now_s = 100.0

    def __call__(self):
        return self.now_s


@pytest.fixture
def daemon():
    client = FakeClient()
    client.api.containers[ID1] = INSPECT
    client.api.images[IMAGE_ID] = {"RepoDigests": [
        "dt-busybox@sha256:" + "1" * 64, "other@sha256:" + "2" * 64]}
    return client


def test_resolve_id_caches_for_ttl(daemon):
    clock = FakeClock()
    res = Resolver(daemon, ttl_s=5.0, clock=clock)
    info = res.resolve_id(ID1)
    assert info.name == "idtest"
    assert info.image_digest == "dt-busybox@sha256:" + "1" * 64
    assert res.resolve_id(ID1) is info
    assert daemon.api.calls == 1

    clock.now_s += 5.0
    assert res.resolve_id(ID1) == info
    assert daemon.api.calls == 2


def test_removed_container_resolves_as_gone(daemon):
    clock = FakeClock()
    res = Resolver(daemon, ttl_s=1.0, clock=clock)
    assert not res.resolve_id(ID1).gone

    del daemon.api.containers[ID1]          # docker rm
    clock.now_s += 2
    info = res.resolve_id(ID1)
    assert info.gone and info.status == "removed"
    assert info.name == "idtest" and info.init_pid is None

    clock.now_s += 2                        # stays known, still gone
    assert res.resolve_id(ID1).status == "removed"


def test_unknown_id_is_none_and_cached(daemon):
    clock = FakeClock()
    res = Resolver(daemon, clock=clock)
    assert res.resolve_id(ID2) is None
    assert res.resolve_id(ID2) is None
    assert daemon.api.calls == 1


def test_lookup(daemon):
    res = Resolver(daemon, clock=FakeClock())
    assert res.lookup("idtest").id == ID1
    assert res.lookup("/idtest").id == ID1
    assert res.lookup(ID1[:12]).name == "idtest"
    assert res.lookup(ID1).name == "idtest"
    with pytest.raises(NoSuchContainer) as exc:
        res.lookup("no-such-thing")
    assert exc.value.ref == "no-such-thing"
    assert isinstance(exc.value.__cause__, NotFound)


def test_deleted_image_gives_no_digest(daemon):
    daemon.api.images.clear()
    assert Resolver(daemon).resolve_id(ID1).image_digest is None


def test_resolve_cgroup_id(daemon, tmp_path):
    for rel in (f"docker/{ID1}", f"docker/{ID2}", "system.slice"):
        os.makedirs(tmp_path / rel)
    res = Resolver(daemon, tree=CgroupTree(str(tmp_path)))
    ino = os.stat(tmp_path / "docker" / ID1).st_ino
    assert res.resolve_cgroup_id(ino).name == "idtest"
    # a container cgroup the daemon does not know, and a non-container one
    assert res.resolve_cgroup_id(
        os.stat(tmp_path / "docker" / ID2).st_ino) is None
    assert res.resolve_cgroup_id(
        os.stat(tmp_path / "system.slice").st_ino) is None


def test_resolve_cgroup_id_nested_daemon(daemon, tmp_path):
    # Inside container ID1 runs its own dockerd; its container ID2 is not
    # known to the host's daemon, so the answer is the enclosing one.
    inner = tmp_path / "docker" / ID1 / "docker" / ID2
    os.makedirs(inner)
    res = Resolver(daemon, tree=CgroupTree(str(tmp_path)))
    assert res.resolve_cgroup_id(os.stat(inner).st_ino).id == ID1


def test_close_leaves_callers_client_open(daemon):
    with Resolver(daemon) as res:
        res.resolve_id(ID1)
    assert not daemon.closed


# --- unreachable daemon

@pytest.mark.parametrize("url,reason", [
    ("unix:///nonexistent.sock", "No such file or directory"),
    ("tcp://127.0.0.1:1", "Connection refused"),
])
def test_client_unreachable(monkeypatch, url, reason):
    monkeypatch.setenv("DOCKER_HOST", url)
    with pytest.raises(DockerUnavailable) as exc:
        docker_api.client(timeout_s=2)
    err = exc.value
    assert err.url == url
    assert err.reason == reason
    assert str(err) == (
        f"cannot reach the Docker daemon at {url}: {reason}; start "
        "dockerd (or set DOCKER_HOST to where it listens)")
    assert err.__cause__ is not None


def test_client_explicit_url_beats_environment(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    with pytest.raises(DockerUnavailable) as exc:
        docker_api.client("unix:///nonexistent.sock", timeout_s=2)
    assert exc.value.url == "unix:///nonexistent.sock"


def test_resolver_reports_unreachable_daemon(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    res = Resolver()            # contacts nothing yet
    with pytest.raises(DockerUnavailable):
        res.lookup("anything")


def test_translated_passes_api_answers_through():
    with pytest.raises(NotFound):
        with docker_api.translated("unix:///x"):
            raise NotFound("No such container: x")


def test_docker_url(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert docker_api.docker_url() == "unix:///var/run/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
    assert docker_api.docker_url() == "tcp://10.0.0.1:2375"
