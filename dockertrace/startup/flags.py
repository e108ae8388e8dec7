"""Decoding of the flag words that the startup tracer reports."""

# CLONE_NEW* bits (include/uapi/linux/sched.h), in the order a container
# runtime usually creates them, with the names `lsns` uses.
NAMESPACE_FLAGS = (
    (0x00020000, "mnt"),
    (0x04000000, "uts"),
    (0x08000000, "ipc"),
    (0x20000000, "pid"),
    (0x40000000, "net"),
    (0x02000000, "cgroup"),
    (0x10000000, "user"),
    (0x00000080, "time"),
)

# MS_* bits of mount(2) (include/uapi/linux/mount.h) worth showing.
MOUNT_FLAGS = (
    (0x1, "ro"), (0x2, "nosuid"), (0x4, "nodev"), (0x8, "noexec"),
    (0x20, "remount"), (0x1000, "bind"), (0x2000, "move"),
    (0x4000, "rec"), (0x8000, "silent"), (0x20000, "unbindable"),
    (0x40000, "private"), (0x80000, "slave"), (0x100000, "shared"),
    (0x200000, "relatime"), (0x1000000, "strictatime"),
)

_SECCOMP_OPS = {0: "set-mode-strict", 1: "set-mode-filter",
                2: "get-action-avail", 3: "get-notif-sizes"}
# prctl(PR_SET_SECCOMP, mode) is reported as 256 + mode.
_PRCTL_MODES = {1: "prctl-strict", 2: "prctl-filter"}


def namespaces(flags):
    """Names of the namespaces that a clone/unshare flag word creates."""
    return [name for bit, name in NAMESPACE_FLAGS if flags & bit]


def mount_flags(flags):
    """Comma-separated MS_* names set in ``flags`` ("" when none)."""
    return ",".join(name for bit, name in MOUNT_FLAGS if flags & bit)


def seccomp_op(value):
    if value >= 256:
        return _PRCTL_MODES.get(value - 256, f"prctl-mode-{value - 256}")
    return _SECCOMP_OPS.get(value, f"op-{value}")


def installs_filter(value):
    """Whether a reported seccomp call installs a filter (not a probe)."""
    return value in (1, 258)
