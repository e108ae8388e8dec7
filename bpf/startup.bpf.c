// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Container start tracer.
 *
 * Follows the processes of the container runtime (containerd shims, runc
 * and everything they fork) from the moment they exec, and reports the
 * kernel work they do to build a container: cgroups, namespaces, mounts,
 * pivot_root, capabilities, seccomp and the exec of the container's
 * command. The daemon's overlay mounts are reported too, although dockerd
 * itself is not followed: they are how the rootfs is prepared.
 *
 * Attribution to a container happens in user space, from the exec
 * arguments (the container id is on the shim's and runc's command line)
 * and the fork tree this program reports.
 */
/*
 * A container start makes about 140 events of 872 bytes; 1 MiB holds eight
 * starts between two reads. User space maps the buffer twice, so each MiB
 * here costs 2 MiB of the tracer's resident memory.
 */
#define DT_EVENTS_BYTES (1024 * 1024)
#include "compat.h"
#include "startup.h"

#define CLONE_NEWNS	0x00020000
#define CLONE_NEWCGROUP	0x02000000
#define CLONE_NEWUTS	0x04000000
#define CLONE_NEWIPC	0x08000000
#define CLONE_NEWUSER	0x10000000
#define CLONE_NEWPID	0x20000000
#define CLONE_NEWNET	0x40000000
#define CLONE_NEWTIME	0x00000080
#define DT_NS_FLAGS	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | \
			 CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
			 CLONE_NEWNET | CLONE_NEWTIME)

#define PR_SET_SECCOMP		22
#define PR_SET_NO_NEW_PRIVS	38

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Processes (by tgid) that descend from a container runtime. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} dt_su_tracked SEC(".maps");

/* A syscall in flight, keyed by thread id, from entry to exit. */
struct dt_su_sys {
	__u64 start_ns;
	__u64 a0, a1, a2, a3;
	__u32 kind;
	__u32 nr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct dt_su_sys);
} dt_su_inflight SEC(".maps");

/* execve entries of every task: the time and the name before the exec. */
struct dt_su_exec_start {
	__u64 start_ns;
	char old_comm[DT_SU_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct dt_su_exec_start);
} dt_su_execs SEC(".maps");

static __always_inline __u32 dt_su_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

static __always_inline bool dt_su_is_tracked(__u32 tgid)
{
	return bpf_map_lookup_elem(&dt_su_tracked, &tgid) != NULL;
}

/* Fill the fields every event has, from the current task. */
static __always_inline struct dt_su_event *dt_su_new(__u16 kind)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct dt_su_event *ev;
	__u64 id = bpf_get_current_pid_tgid();

	ev = dt_reserve(sizeof(*ev));
	if (!ev)
		return NULL;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->start_ns = ev->ts_ns;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->arg = 0;
	ev->aux = 0;
	ev->ret = 0;
	ev->pid = (__u32)id;
	ev->tgid = id >> 32;
	ev->ppid = BPF_CORE_READ(task, real_parent, tgid);
	ev->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	ev->kind = kind;
	ev->args_len = 0;
	ev->tracked = dt_su_is_tracked(ev->tgid);
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	ev->old_comm[0] = 0;
	ev->path[0] = 0;
	ev->args[0] = 0;
	return ev;
}

/*
 * Waking the reader costs more than making the event, and a start makes
 * about 140 of them: only an exec wakes it (the exec of the container's
 * command is what user space waits for); the reader collects the rest
 * when it next wakes or times out.
 */
static __always_inline void dt_su_submit(struct dt_su_event *ev)
{
	bpf_ringbuf_submit(ev, ev->kind == DT_SU_EXEC ? 0 : BPF_RB_NO_WAKEUP);
}

/* Names of the runtime processes whose descendants are followed. */
static __always_inline bool dt_su_is_runtime(const char *comm)
{
	if (comm[0] == 'r' && comm[1] == 'u' && comm[2] == 'n' &&
	    comm[3] == 'c' && comm[4] == 0)
		return true;
	if (comm[0] == 'c' && comm[1] == 'r' && comm[2] == 'u' &&
	    comm[3] == 'n' && comm[4] == 0)
		return true;
	/* "containerd-shim" is the whole 15-byte comm of every shim. */
	return comm[0] == 'c' && comm[9] == 'd' && comm[10] == '-' &&
	       comm[11] == 's' && comm[12] == 'h' && comm[13] == 'i' &&
	       comm[14] == 'm';
}

SEC("tracepoint/syscalls/sys_enter_execve")
int dt_su_execve_e(void *ctx)
{
	struct dt_su_exec_start st = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	st.start_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(st.old_comm, sizeof(st.old_comm));
	bpf_map_update_elem(&dt_su_execs, &tid, &st, BPF_ANY);
	return 0;
}

/* A failed execve never reaches sched_process_exec: forget its entry. */
SEC("tracepoint/syscalls/sys_exit_execve")
int dt_su_execve_x(void *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&dt_su_execs, &tid);
	return 0;
}

static __always_inline int dt_su_on_exec(void)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct dt_su_exec_start *st;
	struct dt_su_event *ev;
	char comm[DT_SU_COMM_LEN];
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 tgid = dt_su_tgid();
	unsigned long arg_start, arg_end, len;
	__u8 one = 1;

	bpf_get_current_comm(comm, sizeof(comm));
	if (!dt_su_is_tracked(tgid)) {
		if (!dt_su_is_runtime(comm))
			return 0;
		bpf_map_update_elem(&dt_su_tracked, &tgid, &one, BPF_ANY);
	}

	ev = dt_su_new(DT_SU_EXEC);
	if (!ev)
		return 0;
	st = bpf_map_lookup_elem(&dt_su_execs, &tid);
	if (st) {
		ev->start_ns = st->start_ns;
		__builtin_memcpy(ev->old_comm, st->old_comm,
				 sizeof(ev->old_comm));
	}

	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	len = arg_end - arg_start;
	if (len > DT_SU_ARGS_LEN)
		len = DT_SU_ARGS_LEN;
	if (bpf_probe_read_user(ev->args, len & (DT_SU_ARGS_LEN * 2 - 1),
				(void *)arg_start) == 0)
		ev->args_len = len;
	dt_su_submit(ev);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(dt_su_exec__tp_btf, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	return dt_su_on_exec();
}

SEC("tracepoint/sched/sched_process_exec")
int dt_su_exec__tp(void *ctx)
{
	return dt_su_on_exec();
}

static __always_inline int dt_su_on_fork(__u32 child_pid)
{
	struct dt_su_event *ev;
	__u8 one = 1;

	if (!dt_su_is_tracked(dt_su_tgid()))
		return 0;
	bpf_map_update_elem(&dt_su_tracked, &child_pid, &one, BPF_ANY);
	ev = dt_su_new(DT_SU_FORK);
	if (!ev)
		return 0;
	ev->aux = child_pid;
	dt_su_submit(ev);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(dt_su_fork__tp_btf, struct task_struct *parent,
	     struct task_struct *child)
{
	/* New threads share the parent's tgid and need no entry. */
	if (child->pid != child->tgid)
		return 0;
	return dt_su_on_fork(child->pid);
}

/*
 * The classic tracepoint carries no task pointers, so threads cannot be
 * told from processes here: each gets an entry (keyed by its id, never
 * looked up as a tgid) that sched_process_exit removes again.
 */
SEC("tracepoint/sched/sched_process_fork")
int dt_su_fork__tp(struct trace_event_raw_sched_process_fork *ctx)
{
	return dt_su_on_fork(ctx->child_pid);
}

static __always_inline int dt_su_on_exit(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&dt_su_tracked, &tid);
	bpf_map_delete_elem(&dt_su_inflight, &tid);
	bpf_map_delete_elem(&dt_su_execs, &tid);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(dt_su_exit__tp_btf, struct task_struct *p)
{
	return dt_su_on_exit();
}

SEC("tracepoint/sched/sched_process_exit")
int dt_su_exit__tp(void *ctx)
{
	return dt_su_on_exit();
}

static __always_inline int dt_su_on_mkdir(__u64 cgid, int hierarchy,
					  const char *path)
{
	struct dt_su_event *ev = dt_su_new(DT_SU_CGROUP_MKDIR);

	if (!ev)
		return 0;
	ev->aux = cgid;
	ev->arg = hierarchy;
	bpf_probe_read_kernel_str(ev->path, sizeof(ev->path), path);
	dt_su_submit(ev);
	return 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(dt_su_mkdir__tp_btf, struct cgroup *cgrp, const char *path)
{
	return dt_su_on_mkdir(BPF_CORE_READ(cgrp, kn, id),
			      BPF_CORE_READ(cgrp, root, hierarchy_id),
			      path);
}

SEC("tracepoint/cgroup/cgroup_mkdir")
int dt_su_mkdir__tp(struct trace_event_raw_cgroup *ctx)
{
	unsigned int loc = ctx->__data_loc_path;

	return dt_su_on_mkdir(ctx->id, ctx->root,
			      (const char *)ctx + (loc & 0xffff));
}

/* Syscalls: remember the arguments at entry, report at exit. */

static __always_inline int dt_su_enter(__u32 kind, __u32 nr, __u64 a0,
				       __u64 a1, __u64 a2, __u64 a3)
{
	struct dt_su_sys sys = {
		.start_ns = bpf_ktime_get_ns(),
		.a0 = a0, .a1 = a1, .a2 = a2, .a3 = a3,
		.kind = kind, .nr = nr,
	};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_update_elem(&dt_su_inflight, &tid, &sys, BPF_ANY);
	return 0;
}

static __always_inline int dt_su_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dt_su_sys *sys;
	struct dt_su_event *ev;
	long n;

	sys = bpf_map_lookup_elem(&dt_su_inflight, &tid);
	if (!sys)
		return 0;
	ev = dt_su_new(sys->kind);
	if (!ev)
		goto out;
	ev->start_ns = sys->start_ns;
	ev->ret = ctx->ret;

	switch (sys->kind) {
	case DT_SU_MOUNT:
		/* a0 source, a1 target, a2 fstype, a3 flags */
		ev->arg = sys->a3;
		bpf_probe_read_user_str(ev->path, sizeof(ev->path),
					(void *)sys->a1);
		n = bpf_probe_read_user_str(ev->args, DT_SU_ARGS_LEN / 2,
					    (void *)sys->a0);
		if (n < 1)
			n = 1;
		n &= DT_SU_ARGS_LEN / 2 - 1;
		bpf_probe_read_user_str(ev->args + n, DT_SU_ARGS_LEN / 2,
					(void *)sys->a2);
		ev->args_len = n + DT_SU_ARGS_LEN / 2;
		break;
	case DT_SU_PIVOT_ROOT:
		bpf_probe_read_user_str(ev->path, sizeof(ev->path),
					(void *)sys->a0);
		break;
	case DT_SU_CLONE:
		ev->arg = sys->a0;
		/* The child's pid is what clone returns to the parent. */
		ev->aux = ctx->ret > 0 ? ctx->ret : 0;
		break;
	case DT_SU_NEWMOUNT:
		ev->arg = sys->nr;
		ev->aux = sys->a1;
		bpf_probe_read_user_str(ev->path, sizeof(ev->path),
					(void *)sys->a0);
		break;
	default:
		ev->arg = sys->a0;
		ev->aux = sys->a1;
	}
	dt_su_submit(ev);
out:
	bpf_map_delete_elem(&dt_su_inflight, &tid);
	return 0;
}

#define DT_SU_ARG(n) (((struct trace_event_raw_sys_enter *)ctx)->args[n])

/* The exit of a syscall whose entry may have been remembered. */
#define DT_SU_SYSCALL_EXIT(name)					\
SEC("tracepoint/syscalls/sys_exit_" #name)				\
int dt_su_##name##_x(struct trace_event_raw_sys_exit *ctx)		\
{									\
	return dt_su_exit(ctx);						\
}

/* Entry and exit of a syscall followed only in runtime processes. */
#define DT_SU_SYSCALL(name, kind, a0, a1, a2, a3)			\
SEC("tracepoint/syscalls/sys_enter_" #name)				\
int dt_su_##name##_e(struct trace_event_raw_sys_enter *ctx)		\
{									\
	if (!dt_su_is_tracked(dt_su_tgid()))				\
		return 0;						\
	return dt_su_enter(kind, ctx->id, a0, a1, a2, a3);		\
}									\
DT_SU_SYSCALL_EXIT(name)

DT_SU_SYSCALL(unshare, DT_SU_UNSHARE, DT_SU_ARG(0), 0, 0, 0)
DT_SU_SYSCALL(setns, DT_SU_SETNS, DT_SU_ARG(1), DT_SU_ARG(0), 0, 0)
DT_SU_SYSCALL(pivot_root, DT_SU_PIVOT_ROOT, DT_SU_ARG(0), 0, 0, 0)
DT_SU_SYSCALL(capset, DT_SU_CAPSET, 0, 0, 0, 0)
DT_SU_SYSCALL(seccomp, DT_SU_SECCOMP, DT_SU_ARG(0), DT_SU_ARG(1), 0, 0)
DT_SU_SYSCALL(fsmount, DT_SU_NEWMOUNT, 0, DT_SU_ARG(1), 0, 0)
DT_SU_SYSCALL(move_mount, DT_SU_NEWMOUNT, DT_SU_ARG(3), 0, 0, 0)
DT_SU_SYSCALL(open_tree, DT_SU_NEWMOUNT, DT_SU_ARG(1), DT_SU_ARG(2), 0, 0)

/* clone(2) matters only when it makes namespaces. */
SEC("tracepoint/syscalls/sys_enter_clone")
int dt_su_clone_e(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = ctx->args[0];

	if (!(flags & DT_NS_FLAGS) || !dt_su_is_tracked(dt_su_tgid()))
		return 0;
	return dt_su_enter(DT_SU_CLONE, ctx->id, flags, 0, 0, 0);
}

DT_SU_SYSCALL_EXIT(clone)

SEC("tracepoint/syscalls/sys_enter_clone3")
int dt_su_clone3_e(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = 0;

	if (!dt_su_is_tracked(dt_su_tgid()))
		return 0;
	/* struct clone_args starts with the 64-bit flags. */
	bpf_probe_read_user(&flags, sizeof(flags), (void *)ctx->args[0]);
	if (!(flags & DT_NS_FLAGS))
		return 0;
	return dt_su_enter(DT_SU_CLONE, ctx->id, flags, 0, 0, 0);
}

DT_SU_SYSCALL_EXIT(clone3)

SEC("tracepoint/syscalls/sys_enter_prctl")
int dt_su_prctl_e(struct trace_event_raw_sys_enter *ctx)
{
	__u64 option = ctx->args[0];

	if (option != PR_SET_SECCOMP && option != PR_SET_NO_NEW_PRIVS)
		return 0;
	if (!dt_su_is_tracked(dt_su_tgid()))
		return 0;
	if (option == PR_SET_SECCOMP)
		return dt_su_enter(DT_SU_SECCOMP, ctx->id,
				   256 + ctx->args[1], 0, 0, 0);
	return dt_su_enter(DT_SU_NO_NEW_PRIVS, ctx->id, ctx->args[1], 0,
			   0, 0);
}

DT_SU_SYSCALL_EXIT(prctl)

/*
 * mount(2) is followed in runtime processes, and in any process when the
 * filesystem is overlay: that is the daemon preparing a container rootfs.
 */
SEC("tracepoint/syscalls/sys_enter_mount")
int dt_su_mount_e(struct trace_event_raw_sys_enter *ctx)
{
	char fstype[8] = {};

	if (!dt_su_is_tracked(dt_su_tgid())) {
		bpf_probe_read_user_str(fstype, sizeof(fstype),
					(void *)ctx->args[2]);
		if (fstype[0] != 'o' || fstype[1] != 'v' ||
		    fstype[2] != 'e' || fstype[3] != 'r' ||
		    fstype[4] != 'l' || fstype[5] != 'a' ||
		    fstype[6] != 'y')
			return 0;
	}
	return dt_su_enter(DT_SU_MOUNT, ctx->id, ctx->args[0], ctx->args[1],
			   ctx->args[2], ctx->args[3]);
}

DT_SU_SYSCALL_EXIT(mount)
