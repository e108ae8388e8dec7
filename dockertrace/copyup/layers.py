"""OverlayFS mounts as the kernel's mount table shows them.

Everything here reads files: ``/proc/<pid>/mountinfo`` for the mounts
and their options, ``/sys/module/overlay/parameters`` for the defaults
that the mount table leaves out, and the layer directories themselves
for sizes and for finding a file in the layers. The roots are module
values so tests can point them at a fixture tree.
"""

import dataclasses
import os
import stat
from typing import Dict, Iterator, Optional, Tuple

PROC_ROOT = "/proc"
OVERLAY_PARAMS = "/sys/module/overlay/parameters"

#: Options that decide how much a write copies, with what each means.
COPY_OPTIONS = {
    "metacopy": "on: chmod/chown/utimes copy only metadata; off: the "
                "whole file",
    "redirect_dir": "on: renaming a lower directory is a redirect; off: "
                    "EXDEV (tools fall back to copying)",
    "index": "on: hard links to a lower file are copied up once",
    "volatile": "copied-up data is not synced to disk",
    "xino": "inode numbers made unique across layers",
}

#: Name of the directory overlay makes inside the mount's workdir= and
#: creates every copy-up's temporary file in.
WORK_SUBDIR = "work"


@dataclasses.dataclass(frozen=True)
class OverlayMount:
    """One overlay mount from a mountinfo table."""

    mount_id: int
    #: Where it is mounted, in the namespace whose table it came from.
    mount_point: str
    #: Kernel dev_t of the overlay superblock ("0:52" as major, minor).
    dev: Tuple[int, int]
    #: Lower layers, top first, as given at mount time (Docker passes
    #: short symlinks such as /var/lib/docker/overlay2/l/ABC).
    lower_dirs: Tuple[str, ...]
    upper_dir: Optional[str]
    work_dir: Optional[str]
    #: Every superblock option, in order (flags map to "").
    options: Tuple[Tuple[str, str], ...]

    @property
    def option_map(self) -> Dict[str, str]:
        return dict(self.options)

    def option(self, name, params_root=None) -> str:
        """An option's value: from the mount, else the module default."""
        opts = self.option_map
        if name in opts:
            return opts[name] or "on"
        if name == "volatile":
            return "off"
        return module_default(name, params_root)

    def layers(self):
        """``[(role, path)]``: upper first, then the lowers, top first."""
        out = []
        if self.upper_dir:
            out.append(("upper", self.upper_dir))
        out.extend(("lower", d) for d in self.lower_dirs)
        return out


def _unescape(text):
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit() and \
                len(text[i + 1:i + 4]) == 3:
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _split_options(text):
    """Superblock options as ``(key, value)``. The kernel escapes commas,
    spaces and backslashes inside values as octal (\\054 and so on), so
    the raw text splits on commas first, then each piece is unescaped."""
    pairs = []
    for opt in text.split(","):
        if not opt:
            continue
        key, _, value = opt.partition("=")
        pairs.append((_unescape(key), _unescape(value)))
    return pairs


def _split_dirs(value):
    """A lowerdir list: colon-separated, with \\: for a literal colon."""
    dirs, cur, i = [], [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            cur.append(value[i + 1])
            i += 2
            continue
        if c == ":":
            dirs.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    dirs.append("".join(cur))
    return [d for d in dirs if d]


def parse_mountinfo(text) -> Iterator[OverlayMount]:
    """The overlay mounts in a mountinfo table."""
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        f = left.split()
        r = right.split()
        if len(f) < 5 or len(r) < 3 or r[0] != "overlay":
            continue
        major, _, minor = f[2].partition(":")
        opts = _split_options(r[2])
        lower, upper, work = [], None, None
        for key, value in opts:
            if key == "lowerdir":
                lower.extend(_split_dirs(value))
            elif key in ("lowerdir+", "datadir+"):
                # Linux 6.8 and later may list one layer per option.
                lower.append(value)
            elif key == "upperdir":
                upper = value
            elif key == "workdir":
                work = value
        yield OverlayMount(
            mount_id=int(f[0]), mount_point=_unescape(f[4]),
            dev=(int(major), int(minor)), lower_dirs=tuple(lower),
            upper_dir=upper, work_dir=work, options=tuple(opts))


def mounts(pid="self") -> list:
    """Overlay mounts in the mount namespace of ``pid``."""
    path = os.path.join(PROC_ROOT, str(pid), "mountinfo")
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return list(parse_mountinfo(f.read()))


def module_default(name, params_root=None) -> str:
    """The overlay module's default for an option ("on"/"off"/value)."""
    path = os.path.join(params_root or OVERLAY_PARAMS, name)
    if name == "xino":
        path = os.path.join(params_root or OVERLAY_PARAMS, "xino_auto")
    try:
        with open(path) as f:
            value = f.read().strip()
    except OSError:
        return "unknown"
    if name == "xino":
        return "auto" if value == "Y" else "off"
    return {"Y": "on", "N": "off"}.get(value, value)


def kernel_dev(st_dev):
    """A stat() st_dev as the kernel's internal dev_t (MKDEV)."""
    return (os.major(st_dev) << 20) | os.minor(st_dev)


def work_key(mount):
    """``(kernel dev, inode)`` of the directory copy-ups start in, or None
    when it cannot be stat'ed (gone, or another mount namespace)."""
    if not mount.work_dir:
        return None
    try:
        st = os.stat(os.path.join(mount.work_dir, WORK_SUBDIR))
    except OSError:
        return None
    return kernel_dev(st.st_dev), st.st_ino


def dir_size(path) -> Tuple[int, int]:
    """``(bytes, files)`` under ``path``, not following symlinks; bytes
    are apparent sizes of regular files (what a copy-up would copy)."""
    total = files = 0
    stack = [path]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_file(follow_symlinks=False):
                        total += e.stat(follow_symlinks=False).st_size
                        files += 1
                except OSError:
                    continue
    return total, files


def _is_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def find_in_layers(dirs, path, *, follow=True, _hops=0):
    """Where ``path`` (as the container sees it) lives in the layers.

    ``dirs`` are layer directories, top first. Returns ``(layer_index,
    host_path, stat_result)`` of the top layer that has it, following
    symlinks through the merged view when ``follow`` (the way the kernel
    does for a syscall that follows them), or None if no layer has it or
    a whiteout hides it. A fourth item is the path with symlinks
    resolved, as the container sees it.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    resolved = []
    i = 0
    while i < len(parts):
        name = parts[i]
        if name == "..":
            if resolved:
                resolved.pop()
            i += 1
            continue
        cand = "/".join(resolved + [name])
        hit = _lookup(dirs, cand)
        if hit is None:
            return None
        last = i == len(parts) - 1
        if stat.S_ISLNK(hit[2].st_mode) and (follow or not last):
            if _hops > 40:
                return None
            target = os.readlink(hit[1])
            base = [] if target.startswith("/") else list(resolved)
            rest = parts[i + 1:]
            new = "/".join(base + [target] + rest)
            return find_in_layers(dirs, "/" + new, follow=follow,
                                  _hops=_hops + 1)
        resolved.append(name)
        if last:
            return hit + ("/" + cand,)
        i += 1
    if not parts:
        hit = _lookup(dirs, ".")
        return hit + ("/",) if hit else None
    return None


def _lookup(dirs, rel):
    """The top layer's entry for ``rel`` (no symlinks followed)."""
    for idx, d in enumerate(dirs):
        p = os.path.join(d, rel)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if _is_whiteout(st):
            return None
        return idx, p, st
    return None


class OverlayIndex:
    """Overlay mounts by the work directory their copy-ups start in.

    The tracepoint mechanism reports the work dir as ``(dev, inode)``;
    this maps it back to the mount, and so to the layers. A miss rereads
    the mount tables: this process's, the writing task's, and if that
    task is gone, another task's in the same mount namespace (a mount
    made in a private namespace is only listed there).
    """

    def __init__(self):
        self._by_work = {}
        self._by_root = {}

    def _read(self, pid):
        try:
            found = mounts(pid)
        except OSError:
            return []
        for m in found:
            key = work_key(m)
            if key is not None:
                self._by_work[key] = m
        return found

    def lookup(self, dev, ino, pid=None, mntns=None):
        """The overlay mount whose work dir is ``(dev, ino)``, or None."""
        key = (dev, ino)
        if key in self._by_work:
            return self._by_work[key]
        self._read("self")
        if key not in self._by_work and pid:
            self._read(pid)
        if key not in self._by_work and mntns:
            other = pid_in_mntns(mntns)
            if other:
                self._read(other)
        return self._by_work.get(key)

    def root_of(self, pid, mntns):
        """The overlay mounted at "/" in ``pid``'s mount namespace (a
        container's rootfs), cached by namespace, or None."""
        if mntns in self._by_root:
            return self._by_root[mntns]
        found = self._read(pid) or self._read(pid_in_mntns(mntns) or 0)
        root = next((m for m in found if m.mount_point == "/"), None)
        if root is not None:
            self._by_root[mntns] = root
        return root


def mntns_of(pid):
    try:
        return os.stat(os.path.join(PROC_ROOT, str(pid), "ns",
                                    "mnt")).st_ino
    except OSError:
        return None


def pid_in_mntns(mntns):
    """Some process in mount namespace ``mntns`` (an inode), or None."""
    try:
        names = os.listdir(PROC_ROOT)
    except OSError:
        return None
    for name in names:
        if name.isdigit() and mntns_of(name) == mntns:
            return int(name)
    return None
