"""The effective side, read from the host's /proc and cgroupfs.

Only kernel-generated files are read here: ``/proc/<pid>/*`` entries
(status, ns links, mountinfo, attr, uid_map, cgroup) and the container's
cgroup directories, whose paths come from ``/proc/<pid>/cgroup``.  Nothing
under the container's root filesystem is opened from the host side, so a
symlink planted in the container cannot redirect a read; what needs the
container's view is done by :mod:`dockertrace.audit.nsexec` from inside
its namespaces.

Every path is taken below :attr:`HostView.root`, which tests point at a
fixture tree (tests/unit/fixtures/audit/).
"""

from __future__ import annotations

import errno
import os
import re
from typing import Dict, List, Optional, Tuple

from dockertrace.audit.model import Mount, ProcStatus
from dockertrace.identity.cgroups import (CgroupLayout, cgroup_dir,
                                          parse_mountinfo)

#: Namespace types compared with the host's, as named under /proc/pid/ns.
NAMESPACES = ("pid", "net", "ipc", "uts", "user", "cgroup", "mnt")

# Capability numbers, from include/uapi/linux/capability.h.
CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID",
    "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
    "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
    "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE",
    "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
CAP_BITS = {name: i for i, name in enumerate(CAP_NAMES)}


def cap_names(mask: int) -> List[str]:
    """Names of the capabilities set in ``mask``, by number."""
    return [CAP_NAMES[i] if i < len(CAP_NAMES) else f"CAP_{i}"
            for i in range(64) if mask >> i & 1]


def cap_mask(names) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAP_BITS[name]
    return mask


class Gone(Exception):
    """The process vanished while it was being read."""


class HostView:
    """Paths of the host's /proc and cgroupfs, below ``root``.

    ``root`` is ``/`` on a real host and a fixture directory in unit
    tests; the proc tree is ``<root>/proc``.
    """

    def __init__(self, root: str = "/") -> None:
        self.root = root
        self.live = root == "/"
        self._layout: Optional[CgroupLayout] = None

    def path(self, abspath: str) -> str:
        return os.path.join(self.root, abspath.lstrip("/"))

    def proc(self, *parts: object) -> str:
        return os.path.join(self.root, "proc", *(str(p) for p in parts))

    def read(self, abspath: str) -> str:
        with open(self.path(abspath), encoding="utf-8",
                  errors="surrogateescape") as f:
            return f.read()

    def read_proc(self, pid: int, name: str) -> str:
        try:
            with open(self.proc(pid, name), encoding="utf-8",
                      errors="surrogateescape") as f:
                return f.read()
        except (FileNotFoundError, ProcessLookupError) as err:
            raise Gone(f"process {pid} is gone ({name})") from err
        except OSError as err:
            # ESRCH comes from files of a process that exited between the
            # open and the read.
            if err.errno == errno.ESRCH:
                raise Gone(f"process {pid} is gone ({name})") from err
            raise

    @property
    def layout(self) -> CgroupLayout:
        # The auditor's own view of the cgroup mounts; the container's
        # cgroup paths are looked up in it.
        if self._layout is None:
            if self.live:
                # Read once per process, shared with the tracers.
                from dockertrace.identity.cgroups import cgroup_layout
                self._layout = cgroup_layout()
            else:
                self._layout = parse_mountinfo(
                    self.read("/proc/self/mountinfo"))
        return self._layout

    def cap_last_cap(self) -> int:
        try:
            return int(self.read("/proc/sys/kernel/cap_last_cap"))
        except (OSError, ValueError):
            return len(CAP_NAMES) - 1


def parse_status(pid: int, text: str) -> ProcStatus:
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()

    def hexcap(key: str) -> int:
        return int(fields.get(key, "0"), 16)

    def opt_int(key: str) -> Optional[int]:
        return int(fields[key]) if key in fields else None

    return ProcStatus(
        pid=pid,
        comm=fields.get("Name", ""),
        uids=tuple(int(u) for u in fields.get("Uid", "").split()),
        cap_inh=hexcap("CapInh"), cap_prm=hexcap("CapPrm"),
        cap_eff=hexcap("CapEff"), cap_bnd=hexcap("CapBnd"),
        cap_amb=hexcap("CapAmb"),
        no_new_privs=opt_int("NoNewPrivs"),
        seccomp=opt_int("Seccomp"),
    )


def _unescape(text: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mounts(text: str) -> List[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        tail = fields[sep + 1:] + ["", "", ""]
        mounts.append(Mount(
            mount_id=int(fields[0]), parent_id=int(fields[1]),
            dev=fields[2], root=_unescape(fields[3]),
            mount_point=_unescape(fields[4]),
            options=tuple(fields[5].split(",")),
            tags=tuple(fields[6:sep]),
            fstype=tail[0], source=_unescape(tail[1]),
            super_options=tuple(tail[2].split(",")) if tail[2] else (),
        ))
    return mounts


def ns_inodes(host: HostView, pid: int) -> Dict[str, int]:
    """Namespace type -> inode for ``pid``; types the kernel lacks or
    that cannot be read are left out."""
    out = {}
    for ns in NAMESPACES:
        try:
            # The link text is "net:[4026531833]"; readlink works on the
            # kernel's magic links and on a fixture's plain symlinks.
            link = os.readlink(host.proc(pid, "ns", ns))
        except FileNotFoundError as err:
            if not os.path.exists(host.proc(pid)):
                raise Gone(f"process {pid} is gone (ns)") from err
            continue
        except OSError:
            continue
        m = re.search(r"\[(\d+)\]", link)
        if m:
            out[ns] = int(m.group(1))
    return out


def container_pids(host: HostView, pid: int) -> List[int]:
    """Every process in the cgroup of ``pid``, ``pid`` first.

    The list comes from the cgroup, not from walking /proc: a process
    that a container forks stays in its cgroup.
    """
    pids = [pid]
    for path in _cgroup_dirs(host, pid, ("pids", "memory", "cpu")):
        try:
            text = host.read(os.path.join(path, "cgroup.procs"))
        except OSError:
            continue
        for word in text.split():
            if word.isdigit() and int(word) != pid:
                pids.append(int(word))
        break
    return pids


def _proc_cgroups(host: HostView, pid: int) -> Dict[str, str]:
    """Controller (``""`` for v2) -> cgroup path of ``pid``."""
    out = {}
    for line in host.read_proc(pid, "cgroup").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for ctrl in parts[1].split(",") if parts[1] else [""]:
            out[ctrl] = parts[2]
    return out


def _cgroup_dirs(host: HostView, pid: int, controllers) -> List[str]:
    """Directories (absolute, host view) of ``pid``'s cgroup for the
    first of ``controllers`` mounted as v1, then the v2 one."""
    paths = _proc_cgroups(host, pid)
    layout = host.layout
    dirs = []
    for ctrl in controllers:
        mount = layout.v1_mount(ctrl)
        if mount is not None and ctrl in paths:
            dirs.append(cgroup_dir(paths[ctrl], mount))
    if layout.unified is not None and "" in paths:
        dirs.append(cgroup_dir(paths[""], layout.unified))
    return dirs


# (key, v1 controller, v1 file, v2 file)
_LIMIT_FILES = (
    ("memory", "memory", "memory.limit_in_bytes", "memory.max"),
    ("cpu.quota", "cpu", "cpu.cfs_quota_us", "cpu.max"),
    ("cpu.period", "cpu", "cpu.cfs_period_us", None),
    ("cpu.shares", "cpu", "cpu.shares", "cpu.weight"),
    ("pids", "pids", "pids.max", "pids.max"),
    ("devices", "devices", "devices.list", None),
)


def cgroup_limits(host: HostView, pid: int) -> Dict[str, Tuple[str, str]]:
    """Limit name -> (file, raw value) from the container's cgroups.

    A controller mounted as cgroup v1 wins over the v2 file: on a hybrid
    host Docker's cgroupfs driver sets limits in v1 and the v2 tree has
    no controllers.
    """
    paths = _proc_cgroups(host, pid)
    layout = host.layout
    out: Dict[str, Tuple[str, str]] = {}
    for key, ctrl, v1_file, v2_file in _LIMIT_FILES:
        candidates = []
        mount = layout.v1_mount(ctrl)
        if mount is not None and ctrl in paths:
            candidates.append(os.path.join(
                cgroup_dir(paths[ctrl], mount), v1_file))
        elif v2_file and layout.unified is not None and "" in paths:
            candidates.append(os.path.join(
                cgroup_dir(paths[""], layout.unified), v2_file))
        for path in candidates:
            try:
                out[key] = (path, host.read(path).strip())
                break
            except OSError:
                continue
    return out


def lsm_label(host: HostView, pid: int) -> Optional[str]:
    """The AppArmor or SELinux label of ``pid``; None when no LSM that
    labels processes is active (the kernel answers EINVAL)."""
    for name in ("attr/apparmor/current", "attr/current"):
        # Missing (no such LSM) and EINVAL (none active) both mean "no
        # label here"; a process that is gone is caught by the caller's
        # pidfd check.
        try:
            with open(host.proc(pid, name), encoding="utf-8",
                      errors="surrogateescape") as f:
                text = f.read().strip("\0\n ")
        except OSError:
            continue
        if text:
            return text
    return None


def active_lsms(host: HostView) -> List[str]:
    """Labelling LSMs active on the host: ``apparmor``, ``selinux``."""
    found = []
    try:
        lsm = host.read("/sys/kernel/security/lsm").strip().split(",")
    except OSError:
        lsm = []
    try:
        if host.read("/sys/module/apparmor/parameters/enabled").startswith(
                "Y"):
            lsm.append("apparmor")
    except OSError:
        pass
    if os.path.exists(host.path("/sys/fs/selinux/enforce")):
        lsm.append("selinux")
    for name in ("apparmor", "selinux"):
        if name in lsm and name not in found:
            found.append(name)
    return found
