"""Parsed docker run arguments, created for real through docker-py.

Each case creates a container from parse_run_args() and checks, with
`docker inspect`'s fields, that dockerd stored what `docker run` would
have made it store.  Where the docker CLI is on PATH it is used as the
oracle too: the same arguments go to `docker create` and the two
containers must agree field by field.  No registry: images are local.
"""

import shutil
import subprocess
import uuid

import pytest

from dockertrace.runargs import parse_run_args

pytestmark = [pytest.mark.docker, pytest.mark.root]

IMAGES = ("dockertrace-busybox:latest", "dt-busybox:latest")


@pytest.fixture(scope="module")
def image(docker_client):
    import docker
    for name in IMAGES:
        try:
            docker_client.images.get(name)
            return name
        except docker.errors.ImageNotFound:
            continue
    # Never pulled: no registry is reachable.
    pytest.fail("none of the local test images exists ("
                + ", ".join(IMAGES) + "): run scripts/setup.sh",
                pytrace=False)


def unique_name():
    # The conftest's prefix, so a killed run's leftovers are easy to find.
    return f"dt-test-runargs-{uuid.uuid4().hex[:10]}"


def create(docker_client, argv, image, command=("true",)):
    spec = parse_run_args(["--name", unique_name(), *argv, image,
                           *command])
    return docker_client.containers.create(spec.image, spec.command,
                                           **spec.create_kwargs)


def inspect(container):
    container.reload()
    return container.attrs["HostConfig"], container.attrs["Config"]


# Representative arg lists and what dockerd must hold for each.
CASES = [
    (["--network", "host"],
     lambda h, c: h["NetworkMode"] == "host"),
    (["-e", "A=1", "-e", "B=two words", "-e", "DT_UNSET_VAR"],
     lambda h, c: {"A=1", "B=two words", "DT_UNSET_VAR"} <= set(c["Env"])),
    (["-m", "64m"],
     lambda h, c: h["Memory"] == 64 * 1024 * 1024),
    (["--cpus", "0.5"],
     lambda h, c: h["NanoCpus"] == 500_000_000),
    (["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
     lambda h, c: (h["CapDrop"] == ["ALL"]
                   and h["CapAdd"] == ["CAP_NET_BIND_SERVICE"])),
    (["--read-only"],
     lambda h, c: h["ReadonlyRootfs"] is True),
    (["--tmpfs", "/run:size=1m", "--tmpfs", "/scratch"],
     lambda h, c: h["Tmpfs"] == {"/run": "size=1m", "/scratch": ""}),
    (["-l", "app=web", "-l", "tier"],
     # The image's own labels are merged in.
     lambda h, c: {"app": "web", "tier": ""}.items() <= c["Labels"].items()),
    (["-u", "1000"],
     lambda h, c: c["User"] == "1000"),
]


@pytest.mark.parametrize("argv, check", CASES,
                         ids=[" ".join(a) for a, _ in CASES])
def test_create_matches_docker_run(docker_client, image, argv, check):
    container = create(docker_client, argv, image)
    try:
        host, config = inspect(container)
        assert check(host, config), (host, config)
    finally:
        container.remove(force=True, v=True)


# Enough options at once to catch a kwarg docker-py would reject or
# silently drop.
KITCHEN_SINK = [
    "-p", "127.0.0.1:18080:80", "-p", "90/udp",
    "--ulimit", "nofile=100:200", "--restart", "on-failure:2",
    "--add-host", "db:10.0.0.2", "--device", "/dev/null:/dev/n:r",
    "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m",
    "-v", "/tmp:/host-tmp:ro", "--entrypoint", "",
    "--health-cmd", "true", "--health-interval", "30s",
    "-w", "/tmp", "-h", "box", "--pids-limit", "50", "-c", "512",
    "--shm-size", "32m", "--security-opt", "no-new-privileges",
    "--sysctl", "net.ipv4.ip_forward=1", "--dns", "1.1.1.1",
    "--stop-signal", "SIGINT", "--init", "--cpu-period", "100000",
    "--cpu-quota", "20000", "--memory", "32m", "--memory-swap", "-1",
]


def test_kitchen_sink(docker_client, image):
    container = create(docker_client, KITCHEN_SINK, image)
    try:
        host, config = inspect(container)
        assert host["PortBindings"] == {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}],
            "90/udp": [{"HostIp": "", "HostPort": ""}]}
        assert host["Ulimits"] == [{"Name": "nofile", "Soft": 100,
                                    "Hard": 200}]
        assert host["RestartPolicy"] == {"Name": "on-failure",
                                         "MaximumRetryCount": 2}
        assert host["ExtraHosts"] == ["db:10.0.0.2"]
        assert host["Devices"] == [{"PathOnHost": "/dev/null",
                                    "PathInContainer": "/dev/n",
                                    "CgroupPermissions": "r"}]
        assert host["Mounts"][0]["Type"] == "tmpfs"
        assert host["Mounts"][0]["TmpfsOptions"] == {"SizeBytes": 1 << 20}
        assert host["Binds"] == ["/tmp:/host-tmp:ro"]
        assert host["PidsLimit"] == 50
        assert host["CpuShares"] == 512
        assert (host["CpuPeriod"], host["CpuQuota"]) == (100000, 20000)
        assert host["ShmSize"] == 32 << 20
        assert (host["Memory"], host["MemorySwap"]) == (32 << 20, -1)
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["Sysctls"] == {"net.ipv4.ip_forward": "1"}
        assert host["Dns"] == ["1.1.1.1"]
        assert host["Init"] is True
        # --entrypoint "" clears the image's entrypoint.
        assert config["Entrypoint"] is None
        assert config["Cmd"] == ["true"]
        assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"],
                                         "Interval": 30_000_000_000}
        assert (config["WorkingDir"], config["Hostname"]) == ("/tmp", "box")
        assert config["StopSignal"] == "SIGINT"
        assert set(config["ExposedPorts"]) == {"80/tcp", "90/udp"}
    finally:
        container.remove(force=True, v=True)


# Fields both ways of creating must agree on.  Config.Volumes is left
# out: docker-py lists bind targets there, the CLI does not, and dockerd
# ignores it for binds.
HOST_FIELDS = (
    "NetworkMode", "Memory", "MemorySwap", "NanoCpus", "CpuShares",
    "CpuPeriod", "CpuQuota", "PidsLimit", "CapAdd", "CapDrop",
    "ReadonlyRootfs", "Tmpfs", "PortBindings", "Ulimits", "RestartPolicy",
    "ExtraHosts", "Devices", "Binds", "Mounts", "ShmSize", "SecurityOpt",
    "Sysctls", "Dns", "Init", "Privileged",
)
CONFIG_FIELDS = (
    "Env", "Labels", "User", "Entrypoint", "Cmd", "WorkingDir",
    "Healthcheck", "StopSignal", "ExposedPorts", "Tty", "OpenStdin",
)


def unset(fields, name):
    # The CLI sends {} or [] where docker-py sends nothing, and restart
    # policy "no" where docker-py sends none; dockerd treats them alike.
    value = fields.get(name)
    if name == "RestartPolicy" and value and value["Name"] == "":
        value = dict(value, Name="no")
    if name == "Env" and value:
        # docker 28's CLI sends -e values in no fixed order.
        value = sorted(value)
    return None if value in ({}, [], "") else value


@pytest.mark.skipif(shutil.which("docker") is None,
                    reason="no docker CLI to compare with")
@pytest.mark.parametrize("argv", [a for a, _ in CASES] + [
    KITCHEN_SINK, ["-dit", "--rm", "--pull", "never"]],
    ids=[" ".join(a) for a, _ in CASES] + ["kitchen sink", "ignored"])
def test_same_as_docker_cli(docker_client, image, argv):
    ours = create(docker_client, argv, image)
    theirs = None
    try:
        # --rm would make the CLI's container vanish; -t and -i are the
        # ones dockertrace leaves out on purpose (see IGNORED_OPTIONS).
        cli_argv = [a for a in argv if a not in ("--rm", "-dit")]
        out = subprocess.run(["docker", "create", "--name", unique_name(),
                              *cli_argv, image, "true"],
                             check=True, capture_output=True, text=True)
        theirs = docker_client.containers.get(out.stdout.strip())
        our_host, our_config = inspect(ours)
        their_host, their_config = inspect(theirs)
        for field in HOST_FIELDS:
            assert unset(our_host, field) == unset(their_host, field), field
        for field in CONFIG_FIELDS:
            assert (unset(our_config, field)
                    == unset(their_config, field)), field
    finally:
        ours.remove(force=True, v=True)
        if theirs is not None:
            theirs.remove(force=True, v=True)


# Started, the options must have their effect inside the container.
RUNS = [
    (["-u", "1000"], ["id", "-u"], "1000\n"),
    (["-e", "A=from-env"], ["sh", "-c", "echo $A"], "from-env\n"),
    (["--read-only", "--tmpfs", "/scratch"],
     ["sh", "-c", "touch /x 2>/dev/null || touch /scratch/x && echo ok"],
     "ok\n"),
    # CAP_NET_BIND_SERVICE is bit 10: 0x400 and nothing else.
    (["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
     ["sh", "-c", "grep CapEff /proc/self/status"],
     "CapEff:\t0000000000000400\n"),
    (["--network", "none"],
     ["sh", "-c", "ls /sys/class/net | tr '\\n' ' '"], "lo "),
]


@pytest.mark.parametrize("argv, command, output", RUNS,
                         ids=[" ".join(a) for a, _, _ in RUNS])
def test_runs(docker_client, image, argv, command, output):
    container = create(docker_client, argv, image, command)
    try:
        container.start()
        status = container.wait(timeout=30)
        logs = container.logs().decode()
        assert status["StatusCode"] == 0, logs
        assert logs == output
    finally:
        container.remove(force=True, v=True)
