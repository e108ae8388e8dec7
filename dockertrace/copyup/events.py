"""Copy-up records as the BPF program sends them (struct dt_cu_event in
bpf/copyup.h), decoded into plain values. No meaning is added here
beyond names for numbers; see assemble.py for that."""

import enum
from dataclasses import asdict, dataclass


class Op(enum.IntEnum):
    """enum dt_cu_op in bpf/copyup.h."""

    OTHER = 0
    OPEN = 1
    TRUNCATE = 2
    CHMOD = 3
    CHOWN = 4
    XATTR = 5
    UTIMES = 6
    RENAME = 7
    LINK = 8
    CREATE = 9
    UNLINK = 10


class Mech(enum.IntEnum):
    """enum dt_cu_mech in bpf/copyup.h."""

    UNKNOWN = 0
    FUNC = 1
    TP = 2


class PathSource(enum.IntEnum):
    """enum dt_cu_path_src in bpf/copyup.h."""

    NONE = 0
    DENTRY = 1
    FILE = 2
    BASE = 3


#: Syscall numbers the BPF program follows, by architecture (for display
#: only: the BPF side already classified each one into an Op).
SYSCALLS = {
    "x86_64": {
        2: "open", 85: "creat", 257: "openat", 437: "openat2",
        76: "truncate", 77: "ftruncate", 90: "chmod", 91: "fchmod",
        268: "fchmodat", 452: "fchmodat2", 92: "chown", 93: "fchown",
        94: "lchown", 260: "fchownat", 188: "setxattr", 189: "lsetxattr",
        190: "fsetxattr", 197: "removexattr", 198: "lremovexattr",
        199: "fremovexattr", 463: "setxattrat", 466: "removexattrat",
        132: "utime", 235: "utimes", 261: "futimesat", 280: "utimensat",
        82: "rename", 264: "renameat", 316: "renameat2", 86: "link",
        265: "linkat", 83: "mkdir", 258: "mkdirat", 133: "mknod",
        259: "mknodat", 88: "symlink", 266: "symlinkat", 87: "unlink",
        263: "unlinkat", 84: "rmdir",
    },
    "aarch64": {
        56: "openat", 437: "openat2", 45: "truncate", 46: "ftruncate",
        52: "fchmod", 53: "fchmodat", 452: "fchmodat2", 54: "fchownat",
        55: "fchown", 5: "setxattr", 6: "lsetxattr", 7: "fsetxattr",
        14: "removexattr", 15: "lremovexattr", 16: "fremovexattr",
        463: "setxattrat", 466: "removexattrat", 88: "utimensat",
        38: "renameat", 276: "renameat2", 37: "linkat", 33: "mknodat",
        34: "mkdirat", 36: "symlinkat", 35: "unlinkat",
    },
}

#: dt_cu_event.nr outside any syscall the program follows.
NO_SYSCALL = 0xFFFFFFFF


def syscall_name(nr, machine=None):
    if nr == NO_SYSCALL:
        return ""
    import platform
    table = SYSCALLS.get(machine or platform.machine(), {})
    return table.get(nr, f"syscall {nr}")


@dataclass(frozen=True)
class RawCopyUp:
    """One record of the BPF program: a syscall's copy-ups, or one
    copy-up outside the syscalls it follows.

    Times are CLOCK_MONOTONIC nanoseconds. ``names`` is the walked path,
    leaf first; ``arg`` the syscall's path argument as the process gave
    it.
    """

    ts_ns: int
    start_ns: int
    copy_start_ns: int
    copy_ns: int
    cgroup_id: int
    size: int
    wd_ino: int
    wd_dev: int
    flags: int
    ret: int
    pid: int
    tgid: int
    mntns: int
    nr: int
    mode: int
    op: Op
    mech: Mech
    ndirs: int
    nother: int
    path_src: PathSource
    names: tuple
    depth_hit: bool
    arg: str
    comm: str
    cgroup: str = ""

    @property
    def walked_path(self):
        """The walked names as an absolute path ("" when none)."""
        if not self.names:
            return ""
        return "/" + "/".join(reversed(self.names))

    def to_dict(self):
        d = asdict(self)
        d["op"] = self.op.name.lower()
        d["mech"] = self.mech.name.lower()
        d["path_src"] = self.path_src.name.lower()
        d["names"] = list(self.names)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["op"] = Op[d["op"].upper()]
        d["mech"] = Mech[d["mech"].upper()]
        d["path_src"] = PathSource[d["path_src"].upper()]
        d["names"] = tuple(d["names"])
        return cls(**d)


_LAYOUTS = {}


def _layout(ffi):
    lay = _LAYOUTS.get(id(ffi))
    if lay is None:
        from dockertrace.engine.records import RecordLayout
        lay = _LAYOUTS[id(ffi)] = RecordLayout(
            ffi, "struct dt_cu_event", raw=("path",))
    return lay


def _text(raw):
    return raw.decode("utf-8", "surrogateescape")


def split_names(raw):
    """NUL-terminated names one after the other into a tuple."""
    parts = raw.split(b"\0")
    while parts and not parts[-1]:
        parts.pop()
    return tuple(_text(p) for p in parts)


def decode(ffi, data):
    """Decode one ring buffer record into a :class:`RawCopyUp`."""
    f = _layout(ffi).unpack(data)
    return RawCopyUp(
        ts_ns=f["ts_ns"], start_ns=f["start_ns"],
        copy_start_ns=f["copy_start_ns"], copy_ns=f["copy_ns"],
        cgroup_id=f["cgroup_id"], size=f["size"], wd_ino=f["wd_ino"],
        wd_dev=f["wd_dev"], flags=f["flags"], ret=f["ret"], pid=f["pid"],
        tgid=f["tgid"], mntns=f["mntns"], nr=f["nr"], mode=f["mode"],
        op=Op(f["op"]), mech=Mech(f["mech"]), ndirs=f["ndirs"],
        nother=f["nother"], path_src=PathSource(f["path_src"]),
        names=split_names(f["path"][:f["path_len"]]),
        depth_hit=bool(f["depth_hit"]), arg=_text(f["arg"]),
        comm=_text(f["comm"]), cgroup=_text(f["cgroup"]))
