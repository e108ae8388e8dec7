"""Kernel events of a container start, as the startup BPF program sends
them (struct dt_su_event in bpf/startup.h), decoded into plain values."""

import enum
import errno
import re
from dataclasses import asdict, dataclass


class Kind(enum.IntEnum):
    """enum dt_su_kind in bpf/startup.h."""

    EXEC = 1
    FORK = 2
    CGROUP_MKDIR = 3
    UNSHARE = 4
    CLONE = 5
    SETNS = 6
    MOUNT = 7
    PIVOT_ROOT = 8
    CAPSET = 9
    SECCOMP = 10
    NO_NEW_PRIVS = 11
    NEWMOUNT = 12


_HEX_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


@dataclass(frozen=True)
class KernelEvent:
    """One thing the kernel did for a container start.

    Times are CLOCK_MONOTONIC nanoseconds, the clock of
    ``time.monotonic_ns()``. For a syscall, ``start_ns`` is its entry and
    ``ts_ns`` its exit; for anything else the two are equal.
    """

    kind: Kind
    ts_ns: int
    start_ns: int
    pid: int
    tgid: int
    ppid: int
    comm: str
    old_comm: str = ""
    cgroup_id: int = 0
    mntns: int = 0
    arg: int = 0
    aux: int = 0
    ret: int = 0
    path: str = ""
    args: tuple = ()
    tracked: bool = True

    @property
    def duration_ns(self):
        return self.ts_ns - self.start_ns

    def container_ids(self):
        """64-hex ids named in the arguments or the path."""
        ids = []
        for text in (self.path, *self.args):
            ids.extend(_HEX_ID.findall(text))
        return ids

    def to_dict(self):
        d = asdict(self)
        d["kind"] = self.kind.name.lower()
        d["args"] = list(self.args)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["kind"] = Kind[d["kind"].upper()]
        d["args"] = tuple(d.get("args", ()))
        return cls(**d)

    def describe(self):
        """A short human line for this event (the --verbose view)."""
        text = self._describe()
        if self.ret < 0 and self.kind not in (Kind.EXEC, Kind.FORK,
                                              Kind.CGROUP_MKDIR):
            name = errno.errorcode.get(-self.ret, str(-self.ret))
            text = f"{text} = {name}"
        return text

    def _describe(self):
        from dockertrace.startup import flags

        k = self.kind
        if k is Kind.EXEC:
            return f"exec {' '.join(self.args)[:60]}"
        if k is Kind.FORK:
            return f"fork -> {self.aux}"
        if k is Kind.CGROUP_MKDIR:
            return f"mkdir cgroup {self.path} (hierarchy {self.arg})"
        if k in (Kind.UNSHARE, Kind.CLONE):
            names = ",".join(flags.namespaces(self.arg)) or "-"
            return f"{k.name.lower()} {names}"
        if k is Kind.SETNS:
            return f"setns {','.join(flags.namespaces(self.arg)) or 'any'}"
        if k is Kind.MOUNT:
            src, fstype = (self.args + ("", ""))[:2]
            what = fstype or flags.mount_flags(self.arg)
            return f"mount {what} {src} -> {self.path}"[:72]
        if k is Kind.PIVOT_ROOT:
            return f"pivot_root {self.path}"
        if k is Kind.SECCOMP:
            return f"seccomp {flags.seccomp_op(self.arg)}"
        return k.name.lower()


def split_args(raw):
    """NUL-separated strings (a process's argv) into a tuple."""
    parts = raw.split(b"\0")
    while parts and not parts[-1]:
        parts.pop()
    return tuple(p.decode("utf-8", "replace") for p in parts)


_LAYOUTS = {}


def _layout(ffi):
    lay = _LAYOUTS.get(id(ffi))
    if lay is None:
        from dockertrace.engine.records import RecordLayout
        lay = _LAYOUTS[id(ffi)] = RecordLayout(
            ffi, "struct dt_su_event", raw=("args",))
    return lay


def _text(raw):
    return raw.decode("utf-8", "replace")


def decode(ffi, data):
    """Decode one ring buffer record into a :class:`KernelEvent`."""
    f = _layout(ffi).unpack(data)
    kind = Kind(f["kind"])
    raw_args = f["args"][:f["args_len"]]
    if kind is Kind.MOUNT:
        # Source and fstype, one after the other; the bytes past the
        # second string are not cleared by the BPF side.
        parts = raw_args.split(b"\0")
        args = tuple(_text(p) for p in (parts + [b"", b""])[:2])
    else:
        args = split_args(raw_args)
    return KernelEvent(
        kind=kind, ts_ns=f["ts_ns"], start_ns=f["start_ns"], pid=f["pid"],
        tgid=f["tgid"], ppid=f["ppid"], comm=_text(f["comm"]),
        old_comm=_text(f["old_comm"]), cgroup_id=f["cgroup_id"],
        mntns=f["mntns"], arg=f["arg"], aux=f["aux"], ret=f["ret"],
        path=_text(f["path"]), args=args, tracked=bool(f["tracked"]))
