"""The audit against real containers, each insecure in one way, and one
hardened container that must get none of those findings.

Needs root (other processes' /proc, capget, setns) and a running dockerd
with the local busybox image.  Privileged containers cannot be started on
these machines; their detection is tested on fixtures in
tests/unit/test_audit_fixtures.py.
"""

import os
import socket
import subprocess
import time

import pytest

from dockertrace import NoSuchContainer, docker_api
from dockertrace.audit import Severity, audit, nsexec
from dockertrace.audit import report as report_mod
from dockertrace.audit.collect import collect
from dockertrace.audit import network

pytestmark = [pytest.mark.docker, pytest.mark.root]

SLEEP = ["sleep", "600"]


def _owned(**kw):
    return docker_api.owned(kw, "audit-test")


def _ids(findings):
    return {f.check_id for f in findings}


@pytest.fixture(scope="module")
def shared_dir():
    """A tmpfs made a shared mount, the only way Docker accepts
    rshared propagation for a bind mount of it."""
    path = "/tmp/dt-audit-shared"
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "dt-audit", path], check=True)
    subprocess.run(["mount", "--make-shared", path], check=True)
    yield path
    subprocess.run(["umount", "-l", path], check=False)


@pytest.fixture(scope="module")
def zoo(docker_client, busybox_image, shared_dir):
    """Every test container, started once for the module."""
    image_id = docker_client.images.get(busybox_image).id
    made = {}
    specs = {
        "sock_odd": dict(volumes={"/var/run/docker.sock": {
            "bind": "/opt/odd/not-a-socket.txt", "mode": "rw"}}),
        "sock_dir": dict(volumes={"/run": {"bind": "/hostrun",
                                           "mode": "ro"}}),
        "host_net_pid": dict(network_mode="host", pid_mode="host"),
        "host_ipc_uts": dict(ipc_mode="host", uts_mode="host"),
        "cap_admin": dict(cap_add=["SYS_ADMIN"]),
        "near_priv": dict(cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
                          security_opt=["seccomp=unconfined"]),
        "seccomp_off": dict(security_opt=["seccomp=unconfined"]),
        "etc_rw": dict(volumes={"/etc": {"bind": "/host-etc",
                                         "mode": "rw"}}),
        "ports": dict(ports={"80/tcp": 80}),
        "device": dict(devices=["/dev/kmsg:/dev/kmsg:r"]),
        "propagation": dict(volumes={shared_dir: {"bind": "/shared",
                                                  "mode": "rshared"}}),
        "sysctl": dict(sysctls={"net.ipv4.conf.all.route_localnet": "1"}),
        "restart": dict(restart_policy={"Name": "always"}),
        "sshd": dict(command=["sh", "-c", "ln -s /bin/busybox /tmp/sshd;"
                              " exec -a sleep /tmp/sshd 600"]),
        "hardened": dict(
            image=image_id, cap_drop=["ALL"], read_only=True,
            user="1000:1000", security_opt=["no-new-privileges"],
            mem_limit="64m", nano_cpus=500_000_000, pids_limit=50,
            network_mode="none", cgroupns="private",
            healthcheck={"test": ["CMD", "true"], "interval": 10**9 * 30},
            restart_policy={"Name": "no"}),
    }
    try:
        for name, kw in specs.items():
            kw = dict(kw)
            image = kw.pop("image", busybox_image)
            command = kw.pop("command", SLEEP)
            c = docker_client.containers.create(
                image, command, detach=True,
                name=f"dt-test-audit-{name}-{os.getpid()}",
                **_owned(**kw))
            made[name] = c
            c.start()
        # The sshd container renames itself with exec -a; wait for it.
        time.sleep(0.3)
        for c in made.values():
            c.reload()
            assert c.status == "running", (c.name, c.logs())
        yield {k: c.id for k, c in made.items()}
    finally:
        for c in made.values():
            c.remove(force=True, v=True)


@pytest.fixture(scope="module")
def report(zoo):
    return audit(list(zoo.values()))


def _of(report, zoo, name):
    for c in report.containers:
        if c.subject.id == zoo[name]:
            assert c.status == "audited", c.notes
            return c.findings
    raise AssertionError(f"{name} not in the report")


# (container, check that must fire, severity at least)
EXPECTED = [
    ("sock_odd", "socket.mounted", Severity.CRITICAL),
    ("sock_dir", "socket.mounted", Severity.CRITICAL),
    ("sock_dir", "mounts.sensitive", Severity.MEDIUM),
    ("host_net_pid", "ns.net", Severity.HIGH),
    ("host_net_pid", "ns.pid", Severity.HIGH),
    ("host_ipc_uts", "ns.ipc", Severity.MEDIUM),
    ("host_ipc_uts", "ns.uts", Severity.MEDIUM),
    ("cap_admin", "caps.dangerous", Severity.CRITICAL),
    ("near_priv", "caps.dangerous", Severity.CRITICAL),
    ("near_priv", "seccomp.disabled", Severity.HIGH),
    ("seccomp_off", "seccomp.disabled", Severity.HIGH),
    ("etc_rw", "mounts.sensitive", Severity.HIGH),
    ("ports", "ports.all_interfaces", Severity.LOW),
    ("ports", "ports.privileged", Severity.LOW),
    ("device", "devices.host", Severity.HIGH),
    ("propagation", "mounts.propagation", Severity.MEDIUM),
    ("sysctl", "sysctls.unsafe", Severity.MEDIUM),
    ("restart", "restart.policy", Severity.LOW),
    ("sshd", "proc.sshd", Severity.MEDIUM),
    # A default container: no limits, root, writable rootfs, ...
    ("seccomp_off", "limits.memory", Severity.MEDIUM),
    ("seccomp_off", "limits.pids", Severity.MEDIUM),
    ("seccomp_off", "limits.cpu", Severity.LOW),
    ("seccomp_off", "nnp.off", Severity.MEDIUM),
    ("seccomp_off", "user.root", Severity.MEDIUM),
    ("seccomp_off", "rootfs.writable", Severity.LOW),
    ("seccomp_off", "caps.defaults", Severity.LOW),
    ("seccomp_off", "health.none", Severity.LOW),
    ("seccomp_off", "net.default_bridge", Severity.LOW),
]


@pytest.mark.parametrize("name,check,severity", EXPECTED)
def test_insecure_container_gets_its_finding(report, zoo, name, check,
                                             severity):
    hits = [f for f in _of(report, zoo, name) if f.check_id == check]
    got = sorted(_ids(_of(report, zoo, name)))
    assert hits, f"{name}: no {check} in {got}"
    assert max(f.severity for f in hits) >= severity
    f = hits[0]
    assert f.container.id == zoo[name]
    assert f.remedy and f.evidence is not None


def test_hardened_container_gets_no_finding(report, zoo):
    findings = _of(report, zoo, "hardened")
    assert findings == (), [(f.check_id, f.title) for f in findings]


def test_no_false_positives_across_the_zoo(report, zoo):
    # Each special check fires only where its insecurity was built in.
    where = {}
    for c in report.containers:
        for f in c.findings:
            where.setdefault(f.check_id, set()).add(c.subject.id)
    owners = {}
    for name, check, _ in EXPECTED:
        owners.setdefault(check, set()).add(zoo[name])
    exclusive = ("socket.mounted", "ns.net", "ns.pid", "ns.ipc", "ns.uts",
                 "caps.dangerous", "seccomp.disabled", "mounts.sensitive",
                 "ports.all_interfaces", "devices.host",
                 "mounts.propagation", "sysctls.unsafe", "restart.policy",
                 "proc.sshd", "privileged", "caps.mismatch",
                 "limits.mismatch", "ns.mnt", "socket.tcp")
    ours = set(zoo.values())
    for check in exclusive:
        got = where.get(check, set()) & ours
        assert got <= owners.get(check, set()), (check, got)


def test_socket_found_by_inode_under_an_odd_name(report, zoo):
    f = next(f for f in _of(report, zoo, "sock_odd")
             if f.check_id == "socket.mounted")
    st = os.stat("/var/run/docker.sock")
    assert f.effective[0]["path"] == "/opt/odd/not-a-socket.txt"
    assert f.effective[0]["inode"] == st.st_ino
    g = next(f for f in _of(report, zoo, "sock_dir")
             if f.check_id == "socket.mounted")
    assert g.effective[0]["path"] == "/hostrun/docker.sock"


def test_capabilities_match_capget_and_status(report, zoo):
    got = collect([zoo["cap_admin"]])
    (facts,) = got.facts
    init = facts.procs[0]
    eff, prm, _inh = facts.capget
    assert (eff, prm) == (init.cap_eff, init.cap_prm)
    assert init.cap_bnd == 0xa80425fb | 1 << 21


def test_engine_api_over_tcp_reachable_from_netns(zoo):
    # The daemon here listens on no TCP port (and its configuration is
    # not ours to change): a listener on the host's wildcard address
    # stands in for it, probed from the container's namespace.
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    try:
        got = collect([zoo["seccomp_off"]], inside=False)
        (facts,) = got.facts
        req = nsexec.Request(pid=facts.pid, join_mnt=False,
                             tcp_targets=[("*", port)])
        fds = {"net": os.open(f"/proc/{facts.pid}/ns/net", os.O_RDONLY)}
        try:
            child = nsexec.start([req], [fds])
        finally:
            os.close(fds["net"])
        (answer,) = nsexec.gather([child])
    finally:
        srv.close()
    assert "error" not in answer, answer
    assert answer["interfaces"] == ["eth0", "lo"]
    assert {"address": "172.17.0.1", "port": port} in answer["engine_tcp"]
    facts.inside = answer
    got.host.engine_tcp = [("*", port)]
    found = [f for f in network.check(facts, got.host)
             if f.check_id == "socket.tcp"]
    assert found and found[0].severity == Severity.CRITICAL


def test_auditor_never_moves(zoo):
    before = {ns: os.readlink(f"/proc/self/ns/{ns}")
              for ns in ("net", "mnt")}
    audit([zoo["sock_odd"]])
    assert before == {ns: os.readlink(f"/proc/self/ns/{ns}")
                      for ns in before}


def test_all_running_containers_when_none_named(zoo):
    report = audit()
    ids = {c.subject.id for c in report.containers}
    assert set(zoo.values()) <= ids


def test_named_unknown_container_raises():
    with pytest.raises(NoSuchContainer):
        audit(["dt-test-audit-does-not-exist"])


class _KillingAPI:
    """The daemon's API, except that inspecting the victim stops it right
    after the answer: the container exits during the audit."""

    def __init__(self, api, victim):
        self._api = api
        self._victim = victim

    def inspect_container(self, ref):
        data = self._api.inspect_container(ref)
        if data["Id"] == self._victim:
            self._api.kill(ref)
            # kill returns before the process is reaped.
            for _ in range(100):
                if not self._api.inspect_container(ref)["State"]["Running"]:
                    break
                time.sleep(0.02)
        return data

    def __getattr__(self, name):
        return getattr(self._api, name)


class _Client:
    def __init__(self, api):
        self.api = api

    def close(self):
        pass


def test_container_exiting_during_audit_is_gone(docker_client,
                                                busybox_image, zoo):
    victim = docker_client.containers.run(
        busybox_image, SLEEP, detach=True,
        name=f"dt-test-audit-victim-{os.getpid()}",
        **_owned())
    try:
        api = _KillingAPI(docker_client.api, victim.id)
        report = audit([victim.id, zoo["cap_admin"]],
                       client=_Client(api))
    finally:
        victim.remove(force=True)
    by_id = {c.subject.id: c for c in report.containers}
    assert by_id[victim.id].status == "gone"
    assert by_id[victim.id].findings == ()
    assert by_id[zoo["cap_admin"]].status == "audited"
    assert "caps.dangerous" in _ids(by_id[zoo["cap_admin"]].findings)


def test_reports_render(report):
    table = report_mod.to_table(report, verbose=True)
    assert all(len(line) <= 79 for line in table.splitlines()), \
        max(table.splitlines(), key=len)
    import json
    sarif = json.loads(report_mod.to_sarif(report))
    results = sarif["runs"][0]["results"]
    assert len(results) == len(report.findings)
    assert json.loads(report_mod.to_json(report))["counts"]


def test_cli_exit_codes(zoo):
    cmd = ["python3", "-m", "dockertrace", "audit", zoo["cap_admin"]]
    ok = subprocess.run(cmd + ["--fail-on", "critical", "--no-daemon",
                               "--json"], capture_output=True, text=True)
    assert ok.returncode == 9, ok.stderr
    clean = subprocess.run(["python3", "-m", "dockertrace", "audit",
                            zoo["hardened"], "--fail-on", "info",
                            "--no-daemon"], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    missing = subprocess.run(["python3", "-m", "dockertrace", "audit",
                              "dt-test-audit-nope"], capture_output=True,
                             text=True)
    assert missing.returncode == 6


def test_each_container_seen_from_its_own_namespaces(report, zoo):
    # One child visits several containers in turn; each must be seen
    # from its own network namespace, not from the previous one's.
    got = collect(list(zoo.values()))
    by_id = {f.subject.id: f for f in got.facts}
    for name, cid in zoo.items():
        inside = by_id[cid].inside
        assert inside is not None, (name, by_id[cid].notes)
        if name == "hardened":
            assert inside["interfaces"] == ["lo"]
        elif name != "host_net_pid":
            assert inside["interfaces"] == ["eth0", "lo"], name
            # Set in one container only: a stale namespace would show.
            assert inside["sysctls"][
                "net.ipv4.conf.all.route_localnet"] == (
                "1" if name == "sysctl" else "0"), name
    # The host-network container sees the host's sockets.
    host_ports = {int(line.split()[1].split(":")[1], 16)
                  for line in open("/proc/self/net/tcp").read()
                  .splitlines()[1:] if line.split()[3] == "0A"}
    seen = {s["port"] for s in by_id[zoo["host_net_pid"]].inside[
        "listening"] if s["family"] == 4}
    assert seen == host_ports
