"""Shared fixtures and the rules for the ``root`` and ``docker`` markers.

Tests marked ``kernel`` depend on the running kernel and need no dockerd
(or are also marked ``docker`` and then left out there): the kernel matrix
(scripts/kernel_matrix.py) runs them inside each of its other kernels.
Such a test reports the mechanism its tracer chose with the
``record_mechanism`` fixture.

On a developer machine a test that needs root or a running dockerd is
skipped, with the reason, when it cannot run. Under CI (the ``CI``
environment variable is set) the same situation is a failure: CI runs as
root after ``scripts/setup.sh`` started dockerd, so a missing prerequisite
there is a broken setup, and skipping would let the system tests vanish
without anyone noticing.

This file deliberately does not import dockertrace: a broken library must
show up as failing tests, not as a conftest that cannot load.
"""

import os
import signal
import socket
import uuid

import pytest

BUSYBOX_IMAGE = "dockertrace-busybox:latest"
BIGFILES_IMAGE = "dockertrace-bigfiles:latest"
#: Every container the fixtures start is named with this prefix, so leftovers
#: of a killed test run are easy to find (`docker ps -a -f name=dt-test-`).
CONTAINER_PREFIX = "dt-test-"

_IN_CI = bool(os.environ.get("CI"))


def _unmet(reason):
    """Skip, or under CI fail, the current test because of ``reason``."""
    if _IN_CI:
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)",
                    pytrace=False)
    pytest.skip(reason)


def _docker_socket():
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://"):]
    if host:
        return None     # tcp:// and friends: let docker-py decide
    return "/var/run/docker.sock"


_docker_state = {}


def _docker_problem():
    """None when dockerd answers /_ping, else why not. Asked once per run."""
    if "problem" not in _docker_state:
        _docker_state["problem"] = _ping_docker()
    return _docker_state["problem"]


def _ping_docker():
    path = _docker_socket()
    if path is None:
        try:
            import docker
            docker.from_env(timeout=5).ping()
            return None
        except Exception as err:    # noqa: BLE001 - any failure means "no"
            return f"dockerd at {os.environ['DOCKER_HOST']} does not answer: {err}"
    # A raw request instead of docker-py: cheap, no import cost for runs
    # that only have unit tests, and a clear reason when it fails.
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = sock.recv(64).split(b"\r\n")[0]
    except OSError as err:
        return f"dockerd does not answer on {path}: {err} (run scripts/setup.sh)"
    if status.split()[1:2] != [b"200"]:
        return f"dockerd on {path} answered {status!r} to /_ping"
    return None


def _marker_problems(item):
    if item.get_closest_marker("root") and os.geteuid() != 0:
        yield "needs root (BPF programs, other processes' /proc entries)"
    if item.get_closest_marker("docker"):
        problem = _docker_problem()
        if problem:
            yield problem


def pytest_configure(config):
    # A shell without job control starts `cmd &` with SIGINT ignored, and a
    # CI runner may do the same; an ignored signal stays ignored across
    # exec, so every process a test starts would shrug off the Ctrl-C that
    # the interrupt tests send. Python installs its own SIGINT handler only
    # when the signal was not ignored at start, so put it back here: a
    # handler (unlike SIG_IGN) is reset to the default on exec.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    # Skip markers added here are reported at the test's own location.
    if _IN_CI:
        return
    for item in items:
        for problem in _marker_problems(item):
            item.add_marker(pytest.mark.skip(reason=problem))


def pytest_runtest_setup(item):
    if _IN_CI:
        for problem in _marker_problems(item):
            _unmet(problem)


@pytest.fixture(scope="session")
def docker_client():
    """A docker-py client for the local daemon, shared by the session."""
    problem = _docker_problem()
    if problem:
        _unmet(problem)
    import docker
    client = docker.from_env(version="auto", timeout=60)
    yield client
    client.close()


def _local_image(client, name):
    import docker
    try:
        client.images.get(name)
        return name
    except docker.errors.ImageNotFound:
        pass
    # Never pulled: no registry is reachable, the images are built locally
    # by scripts/images.sh.
    pytest.fail(f"image {name} is missing: run scripts/setup.sh", pytrace=False)


@pytest.fixture(scope="session")
def busybox_image(docker_client):
    """Name of the local busybox image (PATH=/bin, CMD sh)."""
    return _local_image(docker_client, BUSYBOX_IMAGE)


@pytest.fixture(scope="session")
def bigfiles_image(docker_client):
    """Name of the busybox image with /data/f4k, /data/f1m, /data/f64m
    (a fixed non-zero pattern, checksums in /data/SHA256SUMS)."""
    return _local_image(docker_client, BIGFILES_IMAGE)


@pytest.fixture
def container_factory(docker_client, busybox_image):
    """Create and start containers; all of them are force-removed afterwards.

    ``container_factory(command=None, image=busybox_image, start=True,
    **create_kwargs)`` returns a docker-py ``Container`` (reloaded after
    start). Extra keyword arguments go to ``containers.create`` (for
    example ``network_mode="none"``, ``cpu_quota=...``). A ``name`` is
    used as a suffix after a unique ``dt-test-`` prefix. With
    ``start=False`` the container is only created.

    ``containers.create`` + ``start`` rather than ``containers.run``: run
    would try to pull a missing image, which hangs on a registry that
    cannot be reached instead of failing at once.
    """
    created = []

    def factory(command=None, image=None, start=True, **kwargs):
        suffix = kwargs.pop("name", None) or uuid.uuid4().hex[:12]
        kwargs["name"] = f"{CONTAINER_PREFIX}{uuid.uuid4().hex[:6]}-{suffix}"
        container = docker_client.containers.create(
            image or busybox_image, command, detach=True, **kwargs)
        # Recorded before start, so a container that fails to start is
        # still removed.
        created.append(container)
        if start:
            container.start()
            container.reload()
        return container

    yield factory

    errors = []
    for container in reversed(created):
        try:
            container.remove(force=True, v=True)
        except Exception as err:    # noqa: BLE001
            import docker
            if not isinstance(err, docker.errors.NotFound):
                errors.append(f"{container.name}: {err}")
    if errors:
        # A leak would slow down and confuse every later test; say so.
        pytest.fail("could not remove containers: " + "; ".join(errors),
                    pytrace=False)


@pytest.fixture
def record_mechanism(request):
    """``record_mechanism(tracer, mechanisms, forced=False)``: note which
    mechanism each probe point of ``tracer`` used in this test.

    ``mechanisms`` is a tracer's or BpfObject's ``mechanisms`` mapping
    (point -> mechanism). ``forced`` says the test chose the mechanisms
    itself (``allow=``) instead of taking the engine's choice. The record
    rides on the test's report (``user_properties``), where the kernel
    matrix's plugin (tests/matrix/matrix_plugin.py) collects it for its
    kernel x tracer x mechanism table; elsewhere it is unused.
    """
    def record(tracer, mechanisms, forced=False):
        request.node.user_properties.append((
            "dockertrace.mechanisms",
            {"tracer": tracer, "forced": bool(forced),
             "mechanisms": {str(k): v for k, v in dict(mechanisms).items()}},
        ))
    return record
