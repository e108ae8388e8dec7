"""cffi builder of ``dockertrace._cext``: libbpf, a few syscalls, events.

API mode: the extension is compiled against the installed libbpf headers,
so struct layouts and enum values come from the compiler, not from us.

The C layer stays raw: functions take and return ints, pointers and bytes.
libbpf calls are bound directly (libbpf 1.x returns ``-errno`` or NULL with
``errno`` set); the syscalls get small wrappers that return ``-errno``.  The
Python side (``dockertrace.engine.raw``) turns failures into ``OSError``.

Event headers: every ``bpf/*.h`` whose first lines carry the marker
``dockertrace: events`` is both ``#include``d in the extension and fed to
``cdef``, so a tracer gets ``ffi.sizeof("struct dt_..._event")`` and typed
views of its records from the very header the BPF side compiles.

Run ``python3 cext/build.py`` (or ``make cext``) from anywhere: it builds
in ``cext/_build`` and copies the module into ``dockertrace/``.  The
module-level ``ffibuilder`` also serves setuptools' ``cffi_modules``.
"""

import pathlib
import re
import shutil
import sys

import cffi

ROOT = pathlib.Path(__file__).resolve().parent.parent
BPF_DIR = ROOT / "bpf"
BUILD_DIR = ROOT / "cext" / "_build"
MARKER = "dockertrace: events"
# The marker must sit near the top; a header mentioning it deep inside
# (e.g. in documentation) is not an event header.
MARKER_LINES = 5

# Fixed-size integer types the event headers may use.  "int..." lets the
# compiler tell cffi their size and signedness from <linux/types.h>.
TYPES_CDEF = """
typedef int... __u8;
typedef int... __u16;
typedef int... __u32;
typedef int... __u64;
typedef int... __s8;
typedef int... __s16;
typedef int... __s32;
typedef int... __s64;
"""

LIBBPF_CDEF = """
struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_link;
struct ring_buffer;
struct btf;
struct bpf_object_open_opts;
struct ring_buffer_opts;
struct bpf_link_create_opts;

enum bpf_prog_type {
    BPF_PROG_TYPE_UNSPEC,
    BPF_PROG_TYPE_SOCKET_FILTER,
    BPF_PROG_TYPE_KPROBE,
    BPF_PROG_TYPE_TRACEPOINT,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    BPF_PROG_TYPE_TRACING,
    BPF_PROG_TYPE_LSM,
    ...
};

enum bpf_attach_type {
    BPF_TRACE_RAW_TP,
    BPF_TRACE_FENTRY,
    BPF_TRACE_FEXIT,
    BPF_TRACE_ITER,
    BPF_LSM_MAC,
    ...
};

enum bpf_map_type {
    BPF_MAP_TYPE_HASH,
    BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_PERCPU_HASH,
    BPF_MAP_TYPE_PERCPU_ARRAY,
    BPF_MAP_TYPE_LRU_HASH,
    BPF_MAP_TYPE_LRU_PERCPU_HASH,
    BPF_MAP_TYPE_RINGBUF,
    ...
};

enum bpf_func_id {
    BPF_FUNC_ringbuf_reserve,
    BPF_FUNC_get_current_cgroup_id,
    BPF_FUNC_get_current_task_btf,
    BPF_FUNC_probe_read_kernel,
    BPF_FUNC_loop,
    ...
};

#define BTF_KIND_FUNC ...
#define BTF_KIND_TYPEDEF ...
#define BPF_ANY ...
#define BPF_NOEXIST ...
#define BPF_EXIST ...

struct bpf_object *bpf_object__open_file(const char *path,
    const struct bpf_object_open_opts *opts);
int bpf_object__load(struct bpf_object *obj);
void bpf_object__close(struct bpf_object *obj);
const char *bpf_object__name(const struct bpf_object *obj);
struct bpf_program *bpf_object__next_program(const struct bpf_object *obj,
    struct bpf_program *prog);
struct bpf_map *bpf_object__next_map(const struct bpf_object *obj,
    const struct bpf_map *map);
struct bpf_map *bpf_object__find_map_by_name(const struct bpf_object *obj,
    const char *name);

const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
bool bpf_program__autoload(const struct bpf_program *prog);
enum bpf_prog_type bpf_program__type(const struct bpf_program *prog);
enum bpf_attach_type bpf_program__expected_attach_type(
    const struct bpf_program *prog);
int bpf_program__set_attach_target(struct bpf_program *prog,
    int attach_prog_fd, const char *attach_func_name);
int bpf_program__fd(const struct bpf_program *prog);
struct bpf_link *bpf_program__attach(const struct bpf_program *prog);

int bpf_link__fd(const struct bpf_link *link);
int bpf_link__destroy(struct bpf_link *link);

const char *bpf_map__name(const struct bpf_map *map);
int bpf_map__fd(const struct bpf_map *map);
enum bpf_map_type bpf_map__type(const struct bpf_map *map);
__u32 bpf_map__key_size(const struct bpf_map *map);
__u32 bpf_map__value_size(const struct bpf_map *map);
__u32 bpf_map__max_entries(const struct bpf_map *map);
int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);

int bpf_map_update_elem(int fd, const void *key, const void *value,
    __u64 flags);
int bpf_map_lookup_elem(int fd, const void *key, void *value);
int bpf_map_delete_elem(int fd, const void *key);
int bpf_map_get_next_key(int fd, const void *key, void *next_key);

int bpf_iter_create(int link_fd);
int bpf_raw_tracepoint_open(const char *name, int prog_fd);
int bpf_link_create(int prog_fd, int target_fd,
    enum bpf_attach_type attach_type,
    const struct bpf_link_create_opts *opts);

typedef int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size);
struct ring_buffer *ring_buffer__new(int map_fd,
    ring_buffer_sample_fn sample_cb, void *ctx,
    const struct ring_buffer_opts *opts);
int ring_buffer__poll(struct ring_buffer *rb, int timeout_ms);
int ring_buffer__consume(struct ring_buffer *rb);
void ring_buffer__free(struct ring_buffer *rb);

struct btf *btf__load_vmlinux_btf(void);
void btf__free(struct btf *btf);
__u32 btf__type_cnt(const struct btf *btf);
__s32 btf__find_by_name_kind(const struct btf *btf, const char *type_name,
    __u32 kind);

int libbpf_num_possible_cpus(void);
int libbpf_probe_bpf_prog_type(enum bpf_prog_type prog_type,
    const void *opts);
int libbpf_probe_bpf_map_type(enum bpf_map_type map_type, const void *opts);
int libbpf_probe_bpf_helper(enum bpf_prog_type prog_type,
    enum bpf_func_id helper_id, const void *opts);
long libbpf_get_error(const void *ptr);
"""

# Our own C: every function returns >= 0 on success and -errno on failure.
OWN_CDEF = """
#define CLONE_NEWNS ...
#define CLONE_NEWCGROUP ...
#define CLONE_NEWUTS ...
#define CLONE_NEWIPC ...
#define CLONE_NEWUSER ...
#define CLONE_NEWPID ...
#define CLONE_NEWNET ...

int dt_setns(int fd, int nstype);
int dt_unshare(int flags);
int dt_capget(int pid, uint64_t *effective, uint64_t *permitted,
    uint64_t *inheritable);
int dt_prog_load_trivial(int prog_type, int attach_type,
    int attach_btf_id, char *log_buf, unsigned int log_size);
void dt_set_print(int enable);

extern "Python" int _dt_ringbuf_sample(void *ctx, void *data, size_t size);
extern "Python" void _dt_libbpf_print(int level, const char *line);
"""

OWN_SOURCE = r"""
/* Python.h, included first by cffi, already asks for the GNU API. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/capability.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

static int dt_setns(int fd, int nstype)
{
	return setns(fd, nstype) ? -errno : 0;
}

static int dt_unshare(int flags)
{
	return unshare(flags) ? -errno : 0;
}

/* Version 3 capability sets are 64 bits wide, split over two structs. */
static int dt_capget(int pid, uint64_t *effective, uint64_t *permitted,
		     uint64_t *inheritable)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
		.pid = pid,
	};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	*effective = (uint64_t)data[1].effective << 32 | data[0].effective;
	*permitted = (uint64_t)data[1].permitted << 32 | data[0].permitted;
	*inheritable =
		(uint64_t)data[1].inheritable << 32 | data[0].inheritable;
	return 0;
}

/*
 * Load "r0 = 0; exit", the smallest valid program of any type, so that
 * feature probes can ask the kernel whether it loads (and, with the fd,
 * attaches) a program of a given type and attach point.
 */
static int dt_prog_load_trivial(int prog_type, int attach_type,
				int attach_btf_id, char *log_buf,
				unsigned int log_size)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts,
		.expected_attach_type = attach_type,
		.attach_btf_id = attach_btf_id,
		.log_buf = log_size ? log_buf : NULL,
		.log_size = log_size,
		.log_level = log_size ? 1 : 0,
	);
	int fd;

	fd = bpf_prog_load(prog_type, "dt_probe", "GPL", insns, 2, &opts);
	return fd < 0 ? -errno : fd;
}

static void _dt_libbpf_print(int level, const char *line);

/*
 * libbpf formats with a va_list, which cffi cannot pass to Python: format
 * here (into a heap buffer when the line is long, as verifier logs are)
 * and hand Python a plain string.
 */
static int dt_print(enum libbpf_print_level level, const char *fmt,
		    va_list ap)
{
	char small[1024], *buf = small;
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n >= (int)sizeof(small)) {
		buf = malloc(n + 1);
		if (buf)
			vsnprintf(buf, n + 1, fmt, ap2);
		else
			buf = small;
	}
	va_end(ap2);
	if (n >= 0)
		_dt_libbpf_print(level, buf);
	if (buf != small)
		free(buf);
	return 0;
}

static void dt_set_print(int enable)
{
	libbpf_set_print(enable ? dt_print : NULL);
}
"""


def has_marker(text):
    """Whether a header declares itself an event header."""
    return any(MARKER in line
               for line in text.splitlines()[:MARKER_LINES])


def event_headers(bpf_dir=BPF_DIR):
    """The event headers in ``bpf_dir``, sorted by name."""
    return [p for p in sorted(pathlib.Path(bpf_dir).glob("*.h"))
            if has_marker(p.read_text())]


# A define whose value is an integer constant expression becomes a
# "#define NAME ..." in cdef, so Python sees it with the compiler's value.
_DEFINE = re.compile(
    r"#\s*define\s+([A-Za-z_]\w*)\s+([0-9xXa-fA-FuUlL()+\-*/<>|&~ \t]+)$")


def header_cdef(text):
    """What of a C header cffi's cdef can take.

    Preprocessor lines go (cdef has no preprocessor), except simple
    integer defines, which become ``#define NAME ...``.  Continued lines of
    a multi-line directive go too.
    """
    out = []
    continued = False
    for line in text.splitlines():
        stripped = line.strip()
        if continued:
            continued = stripped.endswith("\\")
            continue
        if stripped.startswith("#"):
            continued = stripped.endswith("\\")
            m = _DEFINE.match(_strip_comment(stripped))
            if m and not continued:
                out.append(f"#define {m.group(1)} ...")
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def _strip_comment(line):
    return re.sub(r"/\*.*?\*/|//.*$", "", line).strip()


def make_builder(bpf_dir=BPF_DIR):
    headers = event_headers(bpf_dir)
    ffi = cffi.FFI()
    ffi.cdef(TYPES_CDEF + LIBBPF_CDEF + OWN_CDEF)
    for path in headers:
        ffi.cdef(header_cdef(path.read_text()))
    includes = "".join(f'#include "{p.name}"\n' for p in headers)
    ffi.set_source(
        "dockertrace._cext", OWN_SOURCE + includes,
        libraries=["bpf"], include_dirs=[str(bpf_dir)],
        extra_compile_args=["-Wno-unused-function"])
    return ffi


ffibuilder = make_builder()


def main():
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    built = pathlib.Path(ffibuilder.compile(tmpdir=str(BUILD_DIR)))
    dest = ROOT / "dockertrace" / built.name
    # Copy to a temporary name and rename, so that a process importing
    # the module meanwhile never sees a half-written file.
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(built, tmp)
    tmp.replace(dest)
    names = ", ".join(p.name for p in event_headers()) or "none"
    print(f"built {dest.relative_to(ROOT)} (event headers: {names})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
