"""RecordLayout decodes a record exactly as cffi reads it."""

import pytest

from dockertrace._cext import ffi
from dockertrace.engine.records import RecordLayout
from dockertrace.startup.events import Kind, decode


def test_layout_matches_cffi_for_the_startup_event():
    lay = RecordLayout(ffi, "struct dt_su_event", raw=("args",))
    assert lay.size == ffi.sizeof("struct dt_su_event")
    ev = ffi.new("struct dt_su_event *")
    ev.ts_ns, ev.start_ns, ev.cgroup_id = 2**64 - 1, 7, 1234
    ev.ret, ev.pid, ev.tgid, ev.ppid, ev.mntns = -14, 11, 12, 13, 4026531841
    ev.kind, ev.args_len, ev.tracked = 7, 11, 1
    ev.comm, ev.old_comm, ev.path = b"runc:[2:INIT]", b"exe", b"/proc/x"
    ffi.memmove(ev.args, b"src\0overlay", 11)
    got = lay.unpack(bytes(ffi.buffer(ev)))
    for name in lay.names:
        if name == "args":
            assert got[name] == bytes(ffi.buffer(ev.args))
        elif name in ("comm", "old_comm", "path"):
            assert got[name] == ffi.string(getattr(ev, name))
        else:
            assert got[name] == getattr(ev, name), name


def test_decode_mount_event():
    ev = ffi.new("struct dt_su_event *")
    ev.kind, ev.ret, ev.tracked = int(Kind.MOUNT), -22, 0
    ev.path = b"/var/lib/docker/overlay2/abc/merged"
    # The BPF side leaves stale bytes after the second string.
    raw = b"overlay\0overlay\0stale"
    ffi.memmove(ev.args, raw, len(raw))
    ev.args_len = len(raw)
    e = decode(ffi, bytes(ffi.buffer(ev)))
    assert e.kind is Kind.MOUNT and e.args == ("overlay", "overlay")
    assert e.ret == -22 and e.tracked is False
    assert e.describe().endswith("= EINVAL")


def test_unsupported_field_type_is_refused():
    with pytest.raises(TypeError):
        RecordLayout(ffi, "struct dt_su_event *")
