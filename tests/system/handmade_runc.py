"""A hand-made container runtime for tests/system/test_startup_unshare.py.

The test runs it through an executable named ``runc`` (a symlink to the
Python interpreter, run with ``-I -S``), because the startup tracer
follows processes of that name:

    runc -I -S handmade_runc.py create CONTAINER_ID ROOTFS CGROUP BUSYBOX

It makes the kernel calls runc makes to start a container, in runc's
order, and nothing else: mkdir of the container's cgroup, one unshare(2)
of the mount, UTS, IPC, pid and network namespaces (runc's 0x6c020000),
a fork into the new pid namespace, four mounts (/ made private, a tmpfs
root, a bind of a static busybox, proc), pivot_root, no_new_privs, and
the exec of ``busybox true`` under runc's init name ``runc:[2:INIT]``.
Only the standard library: ``-S`` leaves site-packages out.
"""

import ctypes
import os
import sys
import traceback

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACES = (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID
              | CLONE_NEWNET)

MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 2
PR_SET_NAME = 15
PR_SET_NO_NEW_PRIVS = 38
# glibc has no pivot_root wrapper.
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}[os.uname().machine]

INIT_NAME = b"runc:[2:INIT]"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret, call):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")


def _c(text):
    return None if text is None else os.fsencode(text)


def mount(source, target, fstype, flags, data=None):
    _check(_libc.mount(_c(source), _c(target), _c(fstype),
                       ctypes.c_ulong(flags), _c(data)),
           f"mount {target}")


def init(rootfs, busybox):
    """The container's init: runs in the new namespaces as pid 1."""
    # Nothing mounted below may reach the host's mount namespace.
    mount("none", "/", "none", MS_REC | MS_PRIVATE)
    mount("tmpfs", rootfs, "tmpfs", 0, "size=8m,mode=755")
    for d in ("bin", "proc", "old"):
        os.mkdir(os.path.join(rootfs, d))
    target = os.path.join(rootfs, "bin", "busybox")
    open(target, "w").close()
    mount(busybox, target, "bind", MS_BIND)
    mount("proc", os.path.join(rootfs, "proc"), "proc", 0)

    _check(_libc.syscall(SYS_PIVOT_ROOT, _c(rootfs),
                         _c(os.path.join(rootfs, "old"))), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/old", MNT_DETACH), "umount2 /old")

    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(_libc.prctl(PR_SET_NAME, INIT_NAME, 0, 0, 0), "set name")
    os.execv("/bin/busybox", ["true"])


def main(argv):
    command, _container_id, rootfs, cgroup, busybox = argv
    if command != "create":
        sys.exit(f"handmade runc: unknown command {command}")
    os.mkdir(cgroup)
    _check(_libc.unshare(NAMESPACES), "unshare")

    # A new pid namespace takes effect for children only.
    pid = os.fork()
    if pid == 0:
        try:
            init(rootfs, busybox)
        except BaseException:
            traceback.print_exc()
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
