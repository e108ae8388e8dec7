"""The C layer with its errors checked: libbpf and a few syscalls, raw.

Everything here takes and returns ints, bytes and opaque cdata handles; a
failure raises ``OSError(errno, "<call>: <strerror>")`` naming the C call.
Meaning (which program, which fix) is added by the callers, which turn the
``OSError`` into the dockertrace exception tree.

libbpf's own log (including the verifier's) goes to the logger
``dockertrace.libbpf`` at debug level; :func:`capture_log` also hands the
lines of one operation to the caller, so an error can quote them.
"""

import contextlib
import errno
import logging
import os
import threading

from dockertrace._cext import ffi, lib

NULL = ffi.NULL

# Kernel-internal errno some BPF paths leak to user space; Python's errno
# module does not know it.
ENOTSUPP = 524

_libbpf_log = logging.getLogger("dockertrace.libbpf")
_tls = threading.local()


def errno_name(code):
    """``"EPERM"`` for 1; also knows the kernel's ENOTSUPP (524)."""
    if code == ENOTSUPP:
        return "ENOTSUPP"
    return errno.errorcode.get(code, str(code))


def _strerror(code):
    if code == ENOTSUPP:
        return "Operation not supported"
    return os.strerror(code)


def _oserror(code, call):
    return OSError(code, f"{call}: {_strerror(code)}")


def _check(rc, call):
    # libbpf 1.x and our C wrappers return -errno on failure.
    if rc < 0:
        raise _oserror(-rc, call)
    return rc


def _check_ptr(ptr, call):
    # libbpf 1.x returns NULL and sets errno; cffi saved it after the call.
    if ptr == NULL:
        raise _oserror(ffi.errno or errno.EINVAL, call)
    return ptr


def _str(cstr):
    return ffi.string(cstr).decode() if cstr != NULL else ""


# libbpf's log

@ffi.def_extern()
def _dt_libbpf_print(level, line):
    text = ffi.string(line).decode(errors="replace").rstrip("\n")
    sink = getattr(_tls, "sink", None)
    if sink is not None:
        sink.append(text)
    _libbpf_log.debug("%s", text)


@contextlib.contextmanager
def capture_log():
    """Collect, as a list of strings, what libbpf logs in this block.

    Lines still go to the ``dockertrace.libbpf`` logger as well.
    """
    outer = getattr(_tls, "sink", None)
    lines = []
    _tls.sink = lines
    try:
        yield lines
    finally:
        _tls.sink = outer
        if outer is not None:
            outer.extend(lines)


lib.dt_set_print(1)


# Objects and programs

def object_open(path):
    return _check_ptr(lib.bpf_object__open_file(os.fsencode(path), NULL),
                      "bpf_object__open_file")


def object_load(obj):
    _check(lib.bpf_object__load(obj), "bpf_object__load")


def object_close(obj):
    lib.bpf_object__close(obj)


def programs(obj):
    """The programs of an object, in ELF order."""
    progs = []
    prog = lib.bpf_object__next_program(obj, NULL)
    while prog != NULL:
        progs.append(prog)
        prog = lib.bpf_object__next_program(obj, prog)
    return progs


def program_name(prog):
    return _str(lib.bpf_program__name(prog))


def program_section(prog):
    return _str(lib.bpf_program__section_name(prog))


def program_type(prog):
    return int(lib.bpf_program__type(prog))


def program_set_autoload(prog, autoload):
    _check(lib.bpf_program__set_autoload(prog, bool(autoload)),
           "bpf_program__set_autoload")


def program_autoload(prog):
    return bool(lib.bpf_program__autoload(prog))


def program_set_attach_target(prog, func_name):
    _check(lib.bpf_program__set_attach_target(
        prog, 0, func_name.encode()), "bpf_program__set_attach_target")


def program_fd(prog):
    return _check(lib.bpf_program__fd(prog), "bpf_program__fd")


def program_attach(prog):
    return _check_ptr(lib.bpf_program__attach(prog), "bpf_program__attach")


def link_fd(link):
    return _check(lib.bpf_link__fd(link), "bpf_link__fd")


def link_destroy(link):
    _check(lib.bpf_link__destroy(link), "bpf_link__destroy")


def iter_create(link_fd):
    """A readable fd that runs an iterator link once, to EOF."""
    return _check(lib.bpf_iter_create(link_fd), "bpf_iter_create")


# Maps

def maps(obj):
    result = []
    m = lib.bpf_object__next_map(obj, NULL)
    while m != NULL:
        result.append(m)
        m = lib.bpf_object__next_map(obj, m)
    return result


def find_map(obj, name):
    m = lib.bpf_object__find_map_by_name(obj, name.encode())
    if m == NULL:
        # libbpf does not set errno for a plain miss.
        raise _oserror(errno.ENOENT, "bpf_object__find_map_by_name")
    return m


def map_name(m):
    return _str(lib.bpf_map__name(m))


def map_fd(m):
    return _check(lib.bpf_map__fd(m), "bpf_map__fd")


def map_type(m):
    return int(lib.bpf_map__type(m))


def map_key_size(m):
    return int(lib.bpf_map__key_size(m))


def map_value_size(m):
    return int(lib.bpf_map__value_size(m))


def map_max_entries(m):
    return int(lib.bpf_map__max_entries(m))


def map_set_max_entries(m, n):
    _check(lib.bpf_map__set_max_entries(m, n), "bpf_map__set_max_entries")


def map_update(fd, key, value, flags=0):
    _check(lib.bpf_map_update_elem(fd, key, value, flags),
           "bpf_map_update_elem")


def map_lookup(fd, key, value_size):
    """The value as bytes, or None when the key is absent."""
    buf = ffi.new("char[]", value_size)
    rc = lib.bpf_map_lookup_elem(fd, key, buf)
    if rc == -errno.ENOENT:
        return None
    _check(rc, "bpf_map_lookup_elem")
    return ffi.buffer(buf, value_size)[:]


def map_delete(fd, key):
    """True if the key was there."""
    rc = lib.bpf_map_delete_elem(fd, key)
    if rc == -errno.ENOENT:
        return False
    _check(rc, "bpf_map_delete_elem")
    return True


def map_next_key(fd, key, key_size):
    """The key after ``key`` (the first one for None), or None at the end."""
    buf = ffi.new("char[]", key_size)
    rc = lib.bpf_map_get_next_key(fd, NULL if key is None else key, buf)
    if rc == -errno.ENOENT:
        return None
    _check(rc, "bpf_map_get_next_key")
    return ffi.buffer(buf, key_size)[:]


# Ring buffers

@ffi.def_extern()
def _dt_ringbuf_sample(ctx, data, size):
    # ctx is a handle on a callable taking bytes and returning an int;
    # a negative return stops ring_buffer__poll/consume (see ringbuf.py).
    return ffi.from_handle(ctx)(ffi.buffer(data, size)[:])


def ringbuf_new(map_fd, handle):
    """A libbpf ring buffer calling ``ffi.from_handle(handle)(bytes)``.

    The caller keeps ``handle`` (from ``ffi.new_handle``) alive as long as
    the ring buffer.
    """
    return _check_ptr(
        lib.ring_buffer__new(map_fd, lib._dt_ringbuf_sample, handle, NULL),
        "ring_buffer__new")


def ringbuf_poll(rb, timeout_ms):
    return _check(lib.ring_buffer__poll(rb, timeout_ms), "ring_buffer__poll")


def ringbuf_consume(rb):
    return _check(lib.ring_buffer__consume(rb), "ring_buffer__consume")


def ringbuf_free(rb):
    lib.ring_buffer__free(rb)


# BTF

def btf_load_vmlinux():
    return _check_ptr(lib.btf__load_vmlinux_btf(), "btf__load_vmlinux_btf")


def btf_free(btf):
    lib.btf__free(btf)


def btf_type_count(btf):
    return int(lib.btf__type_cnt(btf))


def btf_find(btf, name, kind):
    """The BTF type id of ``name`` of ``kind``, or None."""
    rc = lib.btf__find_by_name_kind(btf, name.encode(), kind)
    if rc == -errno.ENOENT:
        return None
    return _check(rc, "btf__find_by_name_kind")


# Low-level loading and attaching, for feature probes

def prog_load_trivial(prog_type, attach_type=0, attach_btf_id=0):
    """Load ``r0 = 0; exit`` as the given type; returns the program fd."""
    return _check(lib.dt_prog_load_trivial(
        prog_type, attach_type, attach_btf_id, NULL, 0), "bpf_prog_load")


def raw_tracepoint_open(name, prog_fd):
    """Attach a raw_tp, tp_btf, fentry/fexit or LSM program; a link fd."""
    return _check(lib.bpf_raw_tracepoint_open(
        NULL if name is None else name.encode(), prog_fd),
        "bpf_raw_tracepoint_open")


def link_create(prog_fd, target_fd, attach_type):
    return _check(lib.bpf_link_create(prog_fd, target_fd, attach_type, NULL),
                  "bpf_link_create")


def num_possible_cpus():
    return _check(lib.libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")


def _probe_result(rc, call):
    # libbpf probes answer 1 (yes), 0 (no) or -errno (could not tell).
    return bool(_check(rc, call))


def probe_prog_type(prog_type):
    return _probe_result(lib.libbpf_probe_bpf_prog_type(prog_type, NULL),
                         "libbpf_probe_bpf_prog_type")


def probe_map_type(map_type):
    return _probe_result(lib.libbpf_probe_bpf_map_type(map_type, NULL),
                         "libbpf_probe_bpf_map_type")


def probe_helper(prog_type, helper_id):
    return _probe_result(
        lib.libbpf_probe_bpf_helper(prog_type, helper_id, NULL),
        "libbpf_probe_bpf_helper")


# Syscalls

def setns(fd, nstype=0):
    _check(lib.dt_setns(fd, nstype), "setns")


def unshare(flags):
    _check(lib.dt_unshare(flags), "unshare")


def capget(pid=0):
    """(effective, permitted, inheritable) capability sets of ``pid``."""
    sets = ffi.new("uint64_t[3]")
    _check(lib.dt_capget(pid, sets, sets + 1, sets + 2), "capget")
    return int(sets[0]), int(sets[1]), int(sets[2])
