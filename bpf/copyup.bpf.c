// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * OverlayFS copy-up tracer.
 *
 * A copy-up is seen in one of two ways, chosen per kernel by the engine
 * (probe point dt_cu_copy):
 *
 *  - function (fentry/fexit, else kprobe/kretprobe) on ovl_copy_up_one:
 *    the copied dentry itself, so its exact path, size and duration;
 *  - tracepoint (tp_btf/ext4_request_inode): overlay creates the copy's
 *    temporary inode in the work dir ("work" under the mount's workdir=),
 *    in the writing task's context, with the overlay mounter's
 *    credentials in force. Only an ext4 upper layer is seen this way.
 *
 * Either way the copy-ups are joined with the task's current syscall
 * (raw sys_enter/sys_exit, BTF flavour) to name the trigger, and one
 * event is sent at syscall exit for all the copy-ups the syscall made.
 * Size and path on the tracepoint path are completed in user space.
 *
 * Tasks in the host's mount namespace (dockerd, whose overlay mounts
 * create inodes in work dirs too) are skipped when user space says so.
 */
#include "compat.h"
#include "copyup.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define S_IFMT		00170000
#define S_IFDIR		0040000
#define O_WRONLY	00000001
#define O_RDWR		00000002
#define O_CREAT		00000100
#define O_TRUNC		00001000
#define AT_FDCWD	-100

/* Names walked up from a dentry; deeper paths are cut (depth_hit). */
#define DT_CU_DEPTH	24
#define DT_CU_HALF	(DT_CU_PATH_LEN / 2)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_cu_cfg);
} dt_cu_cfg SEC(".maps");

/*
 * Per task: the traced syscall in flight and the copy-ups made in it.
 * Task storage rather than a hash keyed by thread id: no entry to clean
 * up when a task dies mid-syscall, and no hash lookup on every syscall.
 */
struct dt_cu_task {
	__u64 start_ns;
	__u64 a[5];
	__u64 copy_start_ns;
	__u64 copy_ns;
	__u64 size;
	__u64 wd_ino;
	__u64 cur_start;	/* function mechanism: entry of the copy-up */
	__u64 cur_size;
	__u64 cur_dentry;
	__u32 cur_mode;
	__u32 wd_dev;
	__u32 nr;
	__u32 mode;
	__u16 op;
	__u16 active;		/* inside a traced syscall */
	__u16 ndirs;
	__u16 nother;
	__u16 path_len;
	__u16 depth_hit;
	__u32 pad;
	char path[DT_CU_PATH_LEN];	/* function mechanism: copied dentry */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dt_cu_task);
} dt_cu_tasks SEC(".maps");

/* Where a syscall's arguments are: indexes, or -1 for none. */
struct dt_cu_sys {
	__u16 op;
	__s8 path;	/* path argument */
	__s8 dfd;	/* directory fd a relative path starts at */
	__s8 fd;	/* file descriptor the call works on */
	__s8 flags;	/* open flags; -2: creat(2), -3: openat2's how */
};

#define DT_CU_SYS(o, p, d, f, fl) \
	((struct dt_cu_sys){ .op = (o), .path = (p), .dfd = (d), .fd = (f), \
			     .flags = (fl) })

/*
 * The syscalls that can make overlay copy something up, by number.
 * Numbers are per architecture; the x86_64 table has the legacy calls.
 */
static __always_inline struct dt_cu_sys dt_cu_classify(long nr)
{
	switch (nr) {
#if defined(__TARGET_ARCH_x86)
	case 2:		/* open */
		return DT_CU_SYS(DT_CU_OP_OPEN, 0, -1, -1, 1);
	case 85:	/* creat */
		return DT_CU_SYS(DT_CU_OP_OPEN, 0, -1, -1, -2);
	case 257:	/* openat */
		return DT_CU_SYS(DT_CU_OP_OPEN, 1, 0, -1, 2);
	case 76:	/* truncate */
		return DT_CU_SYS(DT_CU_OP_TRUNCATE, 0, -1, -1, -1);
	case 77:	/* ftruncate */
		return DT_CU_SYS(DT_CU_OP_TRUNCATE, -1, -1, 0, -1);
	case 90:	/* chmod */
		return DT_CU_SYS(DT_CU_OP_CHMOD, 0, -1, -1, -1);
	case 91:	/* fchmod */
		return DT_CU_SYS(DT_CU_OP_CHMOD, -1, -1, 0, -1);
	case 268:	/* fchmodat */
		return DT_CU_SYS(DT_CU_OP_CHMOD, 1, 0, -1, -1);
	case 92:	/* chown */
	case 94:	/* lchown */
		return DT_CU_SYS(DT_CU_OP_CHOWN, 0, -1, -1, -1);
	case 93:	/* fchown */
		return DT_CU_SYS(DT_CU_OP_CHOWN, -1, -1, 0, -1);
	case 260:	/* fchownat */
		return DT_CU_SYS(DT_CU_OP_CHOWN, 1, 0, -1, -1);
	case 188:	/* setxattr */
	case 189:	/* lsetxattr */
	case 197:	/* removexattr */
	case 198:	/* lremovexattr */
		return DT_CU_SYS(DT_CU_OP_XATTR, 0, -1, -1, -1);
	case 190:	/* fsetxattr */
	case 199:	/* fremovexattr */
		return DT_CU_SYS(DT_CU_OP_XATTR, -1, -1, 0, -1);
	case 132:	/* utime */
	case 235:	/* utimes */
		return DT_CU_SYS(DT_CU_OP_UTIMES, 0, -1, -1, -1);
	case 261:	/* futimesat */
	case 280:	/* utimensat */
		return DT_CU_SYS(DT_CU_OP_UTIMES, 1, 0, -1, -1);
	case 82:	/* rename */
		return DT_CU_SYS(DT_CU_OP_RENAME, 0, -1, -1, -1);
	case 264:	/* renameat */
	case 316:	/* renameat2 */
		return DT_CU_SYS(DT_CU_OP_RENAME, 1, 0, -1, -1);
	case 86:	/* link */
		return DT_CU_SYS(DT_CU_OP_LINK, 0, -1, -1, -1);
	case 265:	/* linkat */
		return DT_CU_SYS(DT_CU_OP_LINK, 1, 0, -1, -1);
	case 83:	/* mkdir */
	case 133:	/* mknod */
		return DT_CU_SYS(DT_CU_OP_CREATE, 0, -1, -1, -1);
	case 88:	/* symlink */
		return DT_CU_SYS(DT_CU_OP_CREATE, 1, -1, -1, -1);
	case 258:	/* mkdirat */
	case 259:	/* mknodat */
		return DT_CU_SYS(DT_CU_OP_CREATE, 1, 0, -1, -1);
	case 266:	/* symlinkat */
		return DT_CU_SYS(DT_CU_OP_CREATE, 2, 1, -1, -1);
	case 87:	/* unlink */
	case 84:	/* rmdir */
		return DT_CU_SYS(DT_CU_OP_UNLINK, 0, -1, -1, -1);
	case 263:	/* unlinkat */
		return DT_CU_SYS(DT_CU_OP_UNLINK, 1, 0, -1, -1);
#elif defined(__TARGET_ARCH_arm64)
	case 56:	/* openat */
		return DT_CU_SYS(DT_CU_OP_OPEN, 1, 0, -1, 2);
	case 45:	/* truncate */
		return DT_CU_SYS(DT_CU_OP_TRUNCATE, 0, -1, -1, -1);
	case 46:	/* ftruncate */
		return DT_CU_SYS(DT_CU_OP_TRUNCATE, -1, -1, 0, -1);
	case 52:	/* fchmod */
		return DT_CU_SYS(DT_CU_OP_CHMOD, -1, -1, 0, -1);
	case 53:	/* fchmodat */
		return DT_CU_SYS(DT_CU_OP_CHMOD, 1, 0, -1, -1);
	case 54:	/* fchownat */
		return DT_CU_SYS(DT_CU_OP_CHOWN, 1, 0, -1, -1);
	case 55:	/* fchown */
		return DT_CU_SYS(DT_CU_OP_CHOWN, -1, -1, 0, -1);
	case 5:		/* setxattr */
	case 6:		/* lsetxattr */
	case 14:	/* removexattr */
	case 15:	/* lremovexattr */
		return DT_CU_SYS(DT_CU_OP_XATTR, 0, -1, -1, -1);
	case 7:		/* fsetxattr */
	case 16:	/* fremovexattr */
		return DT_CU_SYS(DT_CU_OP_XATTR, -1, -1, 0, -1);
	case 88:	/* utimensat */
		return DT_CU_SYS(DT_CU_OP_UTIMES, 1, 0, -1, -1);
	case 38:	/* renameat */
	case 276:	/* renameat2 */
		return DT_CU_SYS(DT_CU_OP_RENAME, 1, 0, -1, -1);
	case 37:	/* linkat */
		return DT_CU_SYS(DT_CU_OP_LINK, 1, 0, -1, -1);
	case 33:	/* mknodat */
	case 34:	/* mkdirat */
		return DT_CU_SYS(DT_CU_OP_CREATE, 1, 0, -1, -1);
	case 36:	/* symlinkat */
		return DT_CU_SYS(DT_CU_OP_CREATE, 2, 1, -1, -1);
	case 35:	/* unlinkat */
		return DT_CU_SYS(DT_CU_OP_UNLINK, 1, 0, -1, -1);
#endif
	/* Numbers shared by every architecture (asm-generic). */
	case 437:	/* openat2 */
		return DT_CU_SYS(DT_CU_OP_OPEN, 1, 0, -1, -3);
	case 452:	/* fchmodat2 */
		return DT_CU_SYS(DT_CU_OP_CHMOD, 1, 0, -1, -1);
	case 463:	/* setxattrat */
	case 466:	/* removexattrat */
		return DT_CU_SYS(DT_CU_OP_XATTR, 1, 0, -1, -1);
	}
	return DT_CU_SYS(0, -1, -1, -1, -1);
}

/* The syscall number as sys_exit sees it (the BTF tracepoint has none). */
static __always_inline long dt_cu_sysno(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ((struct user_pt_regs *)regs, regs[8]);
#else
	return -1;
#endif
}

static __always_inline bool dt_cu_skip(struct task_struct *task)
{
	struct dt_cu_cfg *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&dt_cu_cfg, &zero);
	if (!cfg || !cfg->skip_mntns)
		return false;
	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum) == cfg->skip_mntns;
}

static __always_inline __u64 dt_cu_arg(struct pt_regs *regs, int i)
{
	switch (i) {
	case 0:
		return PT_REGS_PARM1_CORE_SYSCALL(regs);
	case 1:
		return PT_REGS_PARM2_CORE_SYSCALL(regs);
	case 2:
		return PT_REGS_PARM3_CORE_SYSCALL(regs);
	case 3:
		return PT_REGS_PARM4_CORE_SYSCALL(regs);
	}
	return 0;
}

/* Only opens that may write can copy up (O_CREAT: the parent dirs). */
#define DT_CU_OPEN_WRITES (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)

SEC("tp_btf/sys_enter")
int BPF_PROG(dt_cu_sys_enter, struct pt_regs *regs, long id)
{
	struct dt_cu_sys sys = dt_cu_classify(id);
	struct task_struct *task;
	struct dt_cu_task *st;
	__u64 flags = 0;
	int i;

	if (!sys.op)
		return 0;
	if (sys.flags >= 0) {
		flags = dt_cu_arg(regs, sys.flags);
	} else if (sys.flags == -2) {
		flags = O_CREAT | O_WRONLY | O_TRUNC;
	} else if (sys.flags == -3) {
		/* struct open_how starts with the 64-bit flags. */
		bpf_probe_read_user(&flags, sizeof(flags),
				    (void *)dt_cu_arg(regs, 2));
	}
	if (sys.op == DT_CU_OP_OPEN && !(flags & DT_CU_OPEN_WRITES))
		return 0;

	task = bpf_get_current_task_btf();
	if (dt_cu_skip(task))
		return 0;
	st = bpf_task_storage_get(&dt_cu_tasks, task, 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st)
		return 0;
	st->start_ns = bpf_ktime_get_ns();
	for (i = 0; i < 4; i++)
		st->a[i] = dt_cu_arg(regs, i);
	st->a[4] = flags;
	st->nr = id;
	st->op = sys.op;
	st->copy_start_ns = 0;
	st->copy_ns = 0;
	st->size = 0;
	st->wd_ino = 0;
	st->wd_dev = 0;
	st->mode = 0;
	st->ndirs = 0;
	st->nother = 0;
	st->path_len = 0;
	st->depth_hit = 0;
	st->active = 1;
	return 0;
}

/*
 * Names from @d up to its filesystem's root, leaf first, each ending in
 * NUL, into @buf (DT_CU_PATH_LEN bytes). Returns the bytes used; sets
 * *hit when the walk stopped before reaching the root.
 */
static __always_inline __u16 dt_cu_walk(struct dentry *d, char *buf,
					__u16 *hit)
{
	__u32 off = 0;
	int i;

	for (i = 0; i < DT_CU_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		const unsigned char *name;
		long n;

		if (!parent || parent == d)
			return off;
		name = BPF_CORE_READ(d, d_name.name);
		n = bpf_probe_read_kernel_str(buf + (off & (DT_CU_HALF - 1)),
					      DT_CU_HALF, name);
		if (n <= 0)
			break;
		off += n;
		if (off >= DT_CU_HALF)
			break;
		d = parent;
	}
	*hit = 1;
	return off & (DT_CU_PATH_LEN - 1);
}

static __always_inline struct file *dt_cu_fd_file(struct task_struct *task,
						  __u64 fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline void dt_cu_walk_file(struct dt_cu_event *ev,
					    struct file *f, __u16 src)
{
	struct dentry *d;

	if (!f)
		return;
	d = BPF_CORE_READ(f, f_path.dentry);
	if (!d)
		return;
	ev->path_len = dt_cu_walk(d, ev->path, &ev->depth_hit);
	ev->path_src = src;
}

/* The path on the tracepoint mechanism: from the syscall's arguments. */
static __always_inline void dt_cu_syscall_path(struct dt_cu_event *ev,
					       struct dt_cu_task *st,
					       struct task_struct *task)
{
	struct dt_cu_sys sys = dt_cu_classify(st->nr);
	__u64 dfd = AT_FDCWD;
	long n;

	if (sys.op == DT_CU_OP_OPEN && ev->ret >= 0) {
		dt_cu_walk_file(ev, dt_cu_fd_file(task, ev->ret),
				DT_CU_PATH_FILE);
		return;
	}
	if (sys.fd >= 0 && sys.fd < 4) {
		dt_cu_walk_file(ev, dt_cu_fd_file(task, st->a[sys.fd & 3]),
				DT_CU_PATH_FILE);
		return;
	}
	if (sys.path < 0 || sys.path > 3)
		return;
	/*
	 * Read at exit, not entry: the kernel has copied the string by
	 * now, so its page is resident and the read cannot fail for a
	 * page not yet faulted in.
	 */
	n = bpf_probe_read_user_str(ev->arg, sizeof(ev->arg),
				    (void *)st->a[sys.path & 3]);
	if (sys.dfd >= 0 && sys.dfd < 4)
		dfd = (int)st->a[sys.dfd & 3];
	if (n <= 1) {
		/* utimensat(fd, NULL, ...) works on the fd itself. */
		if ((int)dfd != AT_FDCWD)
			dt_cu_walk_file(ev, dt_cu_fd_file(task, dfd),
					DT_CU_PATH_FILE);
		return;
	}
	ev->arg_len = n - 1;
	if (ev->arg[0] == '/')
		return;
	if ((int)dfd == AT_FDCWD) {
		ev->path_len = dt_cu_walk(BPF_CORE_READ(task, fs, pwd.dentry),
					  ev->path, &ev->depth_hit);
		ev->path_src = DT_CU_PATH_BASE;
	} else {
		dt_cu_walk_file(ev, dt_cu_fd_file(task, dfd),
				DT_CU_PATH_BASE);
	}
}

static __always_inline struct dt_cu_event *dt_cu_new(struct dt_cu_task *st)
{
	struct dt_cu_event *ev;
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task = bpf_get_current_task_btf();

	ev = dt_reserve(sizeof(*ev));
	if (!ev)
		return NULL;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->pid = (__u32)id;
	ev->tgid = id >> 32;
	ev->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	/*
	 * The cgroup's name carries the container id: kept in the event,
	 * it still names the container after the cgroup is gone (a short
	 * `docker run --rm` is over before user space reads the event).
	 */
	bpf_probe_read_kernel_str(ev->cgroup, sizeof(ev->cgroup),
				  BPF_CORE_READ(task, cgroups, dfl_cgrp, kn,
						name));
	ev->start_ns = 0;
	ev->copy_start_ns = 0;
	ev->copy_ns = 0;
	ev->size = 0;
	ev->wd_ino = 0;
	ev->wd_dev = 0;
	ev->flags = 0;
	ev->ret = 0;
	ev->nr = ~0U;
	ev->mode = 0;
	ev->op = DT_CU_OP_OTHER;
	ev->mech = 0;
	ev->ndirs = 0;
	ev->nother = 0;
	ev->path_src = DT_CU_PATH_NONE;
	ev->path_len = 0;
	ev->depth_hit = 0;
	ev->arg_len = 0;
	ev->path[0] = 0;
	ev->arg[0] = 0;
	return ev;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(dt_cu_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task;
	struct dt_cu_event *ev;
	struct dt_cu_task *st;

	if (!dt_cu_classify(dt_cu_sysno(regs)).op)
		return 0;
	task = bpf_get_current_task_btf();
	st = bpf_task_storage_get(&dt_cu_tasks, task, 0, 0);
	if (!st || !st->active)
		return 0;
	st->active = 0;
	if (!st->ndirs && !st->nother)
		return 0;

	ev = dt_cu_new(st);
	if (!ev)
		return 0;
	ev->start_ns = st->start_ns;
	ev->copy_start_ns = st->copy_start_ns;
	ev->copy_ns = st->copy_ns;
	ev->size = st->size;
	ev->wd_ino = st->wd_ino;
	ev->wd_dev = st->wd_dev;
	ev->flags = st->op == DT_CU_OP_OPEN ? st->a[4] : 0;
	ev->ret = ret;
	ev->nr = st->nr;
	ev->mode = st->mode;
	ev->op = st->op;
	ev->ndirs = st->ndirs;
	ev->nother = st->nother;
	if (st->path_len) {
		/* Function mechanism: the copied dentry's own path. */
		ev->mech = DT_CU_MECH_FUNC;
		bpf_probe_read_kernel(ev->path, sizeof(ev->path), st->path);
		ev->path_len = st->path_len;
		ev->depth_hit = st->depth_hit;
		ev->path_src = DT_CU_PATH_DENTRY;
	} else {
		ev->mech = st->wd_ino ? DT_CU_MECH_TP : DT_CU_MECH_FUNC;
		dt_cu_syscall_path(ev, st, task);
	}
	dt_submit(ev);
	return 0;
}

/* Function mechanism: entry and exit of ovl_copy_up_one. */

static __always_inline int dt_cu_func_enter(struct dentry *dentry,
					    int flags)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct dt_cu_task *st;

	if (dt_cu_skip(task))
		return 0;
	st = bpf_task_storage_get(&dt_cu_tasks, task, 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st)
		return 0;
	st->cur_dentry = (__u64)dentry;
	/*
	 * Overlay copies no data for an open with O_TRUNC (it sets the
	 * size it copies to 0 first), whatever the file's size.
	 */
	st->cur_size = flags & O_TRUNC ? 0 :
		       BPF_CORE_READ(dentry, d_inode, i_size);
	st->cur_mode = BPF_CORE_READ(dentry, d_inode, i_mode);
	st->cur_start = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int dt_cu_func_exit(long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct dt_cu_event *ev;
	struct dt_cu_task *st;
	struct dentry *dentry;
	__u64 now = bpf_ktime_get_ns(), start;
	bool dir;

	st = bpf_task_storage_get(&dt_cu_tasks, task, 0, 0);
	if (!st || !st->cur_start)
		return 0;
	start = st->cur_start;
	st->cur_start = 0;
	if (ret)
		return 0;
	dentry = (struct dentry *)st->cur_dentry;
	dir = (st->cur_mode & S_IFMT) == S_IFDIR;

	if (st->active) {
		if (!st->copy_start_ns)
			st->copy_start_ns = start;
		st->copy_ns += now - start;
		if (dir)
			st->ndirs++;
		else
			st->nother++;
		/* Keep the last file's path; a directory's only if no file. */
		if (!dir || st->nother == 0) {
			st->size = dir ? 0 : st->cur_size;
			st->mode = st->cur_mode;
			st->depth_hit = 0;
			st->path_len = dt_cu_walk(dentry, st->path,
						  &st->depth_hit);
		}
		return 0;
	}

	/* A copy-up outside the syscalls this program follows. */
	ev = dt_cu_new(st);
	if (!ev)
		return 0;
	ev->mech = DT_CU_MECH_FUNC;
	ev->copy_start_ns = start;
	ev->copy_ns = now - start;
	ev->size = dir ? 0 : st->cur_size;
	ev->mode = st->cur_mode;
	if (dir)
		ev->ndirs = 1;
	else
		ev->nother = 1;
	ev->path_len = dt_cu_walk(dentry, ev->path, &ev->depth_hit);
	ev->path_src = DT_CU_PATH_DENTRY;
	dt_submit(ev);
	return 0;
}

SEC("fentry/ovl_copy_up_one")
int BPF_PROG(dt_cu_copy_e__fentry, struct dentry *parent,
	     struct dentry *dentry, int flags)
{
	return dt_cu_func_enter(dentry, flags);
}

SEC("fexit/ovl_copy_up_one")
int BPF_PROG(dt_cu_copy_x__fentry, struct dentry *parent,
	     struct dentry *dentry, int flags, int ret)
{
	return dt_cu_func_exit(ret);
}

SEC("kprobe/ovl_copy_up_one")
int BPF_KPROBE(dt_cu_copy_e__kprobe, struct dentry *parent,
	       struct dentry *dentry, int flags)
{
	return dt_cu_func_enter(dentry, flags);
}

SEC("kretprobe/ovl_copy_up_one")
int BPF_KRETPROBE(dt_cu_copy_x__kprobe, int ret)
{
	return dt_cu_func_exit(ret);
}

/*
 * Tracepoint mechanism. Overlay runs a copy-up with its mounter's
 * credentials (cred != real_cred) and starts it by creating a temporary
 * inode in its work dir, named "work". A file the container creates in
 * a directory of its own named "work" also passes these checks when
 * overlay creates it; user space drops such events by matching the
 * directory's inode against the work dirs of the overlay mounts.
 */
SEC("tp_btf/ext4_request_inode")
int BPF_PROG(dt_cu_copy__tp_btf, struct inode *dir, int mode)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct dt_cu_task *st;
	struct hlist_node *alias;
	struct dentry *d;
	char name[8] = {};

	st = bpf_task_storage_get(&dt_cu_tasks, task, 0, 0);
	if (!st || !st->active)
		return 0;
	if (BPF_CORE_READ(task, cred) == BPF_CORE_READ(task, real_cred))
		return 0;

	alias = BPF_CORE_READ(dir, i_dentry.first);
	if (!alias)
		return 0;
	d = (void *)alias - bpf_core_field_offset(struct dentry, d_u.d_alias);
	bpf_probe_read_kernel_str(name, sizeof(name),
				  BPF_CORE_READ(d, d_name.name));
	if (name[0] != 'w' || name[1] != 'o' || name[2] != 'r' ||
	    name[3] != 'k' || name[4] != 0)
		return 0;

	if (!st->copy_start_ns)
		st->copy_start_ns = bpf_ktime_get_ns();
	if ((mode & S_IFMT) == S_IFDIR)
		st->ndirs++;
	else
		st->nother++;
	st->mode = mode;
	st->wd_ino = BPF_CORE_READ(dir, i_ino);
	st->wd_dev = BPF_CORE_READ(dir, i_sb, s_dev);
	return 0;
}
