"""Container ids and runtime guesses from cgroup paths, table-driven."""

import pytest

from dockertrace.identity import RUNTIMES, ContainerRef, parse_cgroup_path

ID1 = "0123456789abcdef" * 4
ID2 = "fedcba9876543210" * 4
ID3 = "a" * 64
POD = "5c3f1a0e-7d2b-4f1e-9a3b-1c2d3e4f5a6b"
POD_SYSTEMD = POD.replace("-", "_")


PATHS = [
    # (cgroup path, container id, runtime, outer ids)
    # docker, cgroupfs driver (v1 controllers and v2 alike)
    (f"/docker/{ID1}", ID1, "docker", ()),
    # docker on cgroup v2 with a nested init leaf (dind, systemd inside)
    (f"/docker/{ID1}/init", ID1, "docker", ()),
    # docker, systemd driver
    (f"/system.slice/docker-{ID1}.scope", ID1, "docker", ()),
    (f"/system.slice/docker-{ID1}.scope/init", ID1, "docker", ()),
    # rootless docker, systemd driver, under the user's manager
    (f"/user.slice/user-1000.slice/user@1000.service/user.slice/"
     f"docker-{ID1}.scope", ID1, "docker", ()),
    # rootless docker, cgroupfs driver inside the user's docker.service
    (f"/user.slice/user-1000.slice/user@1000.service/app.slice/"
     f"docker.service/docker/{ID1}", ID1, "docker", ()),
    # docker in docker: the inner one first, the outer one kept
    (f"/docker/{ID1}/docker/{ID2}", ID2, "docker", (ID1,)),
    (f"/system.slice/docker-{ID1}.scope/docker/{ID2}/init", ID2, "docker",
     (ID1,)),
    # kubernetes, cgroupfs driver
    (f"/kubepods/besteffort/pod{POD}/{ID1}", ID1, "cri", ()),
    (f"/kubepods/pod{POD}/{ID1}", ID1, "cri", ()),
    # kubernetes, systemd driver
    (f"/kubepods.slice/kubepods-besteffort.slice/"
     f"kubepods-besteffort-pod{POD_SYSTEMD}.slice/"
     f"cri-containerd-{ID1}.scope", ID1, "cri", ()),
    (f"/kubepods.slice/kubepods-burstable.slice/"
     f"kubepods-burstable-pod{POD_SYSTEMD}.slice/crio-{ID1}.scope",
     ID1, "cri", ()),
    # kubelet with the systemd driver over containerd with cgroupfs: the
    # systemd-style name becomes a literal directory name
    (f"/system.slice/containerd.service/"
     f"kubepods-besteffort-pod{POD_SYSTEMD}.slice:cri-containerd:{ID1}",
     ID1, "cri", ()),
    # containerd namespaces: default, k8s.io (CRI), moby (docker)
    (f"/default/{ID1}", ID1, "containerd", ()),
    (f"/k8s.io/{ID1}", ID1, "cri", ()),
    (f"/moby/{ID1}", ID1, "docker", ()),
    (f"/system.slice/containerd.service/{ID1}", ID1, "containerd", ()),
    (f"/system.slice/nerdctl-{ID1}.scope", ID1, "containerd", ()),
    # podman: systemd driver, cgroupfs driver, inside a pod
    (f"/machine.slice/libpod-{ID1}.scope", ID1, "podman", ()),
    (f"/machine.slice/libpod-{ID1}.scope/container", ID1, "podman", ()),
    (f"/libpod_parent/libpod-{ID1}", ID1, "podman", ()),
    (f"/machine.slice/machine-libpod_pod_{ID2}.slice/libpod-{ID1}.scope",
     ID1, "podman", ()),
    (f"/user.slice/user-1000.slice/user@1000.service/user.slice/"
     f"libpod-{ID1}.scope", ID1, "podman", ()),
    # plain runc under a parent nobody else uses
    (f"/mycontainers/{ID3}", ID3, "runc", ()),
    (f"/{ID3}", ID3, "runc", ()),
]


@pytest.mark.parametrize("path,cid,runtime,outer", PATHS)
def test_parse_cgroup_path(path, cid, runtime, outer):
    assert parse_cgroup_path(path) == ContainerRef(cid, runtime, path, outer)


@pytest.mark.parametrize("path", [
    "/",
    "",
    "/init.scope",
    "/system.slice/docker.service",
    "/system.slice/containerd.service",
    "/user.slice/user-1000.slice/session-3.scope",
    "/kubepods/besteffort/pod" + POD,
    "/machine.slice/machine-libpod_pod_" + ID2 + ".slice",
    # conmon watches a podman container from outside it
    "/machine.slice/libpod-conmon-" + ID1 + ".scope",
    # 63 and 65 hex digits, upper case: not container ids
    "/docker/" + ID1[:63],
    "/docker/" + ID1 + "0",
    "/docker/" + ID1.upper(),
    "/docker/x" + ID1,
])
def test_parse_cgroup_path_no_container(path):
    assert parse_cgroup_path(path) is None


def test_runtimes_listed():
    for _path, _cid, runtime, _outer in PATHS:
        assert runtime in RUNTIMES
