import pytest

from dockertrace.startup import flags


@pytest.mark.parametrize("word, names", [
    # runc 1.1 unshares these for a default docker container.
    (0x6c020000, ["mnt", "uts", "ipc", "pid", "net"]),
    (0x6c020000 | 0x02000000, ["mnt", "uts", "ipc", "pid", "net",
                               "cgroup"]),
    (0x10000000, ["user"]),
    (0x00000080, ["time"]),
    (0x00000011, []),          # CLONE_VM-ish bits: no namespace
    (0, []),
])
def test_namespaces(word, names):
    assert flags.namespaces(word) == names


@pytest.mark.parametrize("word, text", [
    (0x5000, "bind,rec"),
    (0x84000, "rec,slave"),
    (0x102f, "ro,nosuid,nodev,noexec,remount,bind"),
    (0, ""),
])
def test_mount_flags(word, text):
    assert flags.mount_flags(word) == text


@pytest.mark.parametrize("value, text, installs", [
    (0, "set-mode-strict", False),
    (1, "set-mode-filter", True),
    (2, "get-action-avail", False),
    (258, "prctl-filter", True),
    (257, "prctl-strict", False),
])
def test_seccomp(value, text, installs):
    assert flags.seccomp_op(value) == text
    assert flags.installs_filter(value) is installs
