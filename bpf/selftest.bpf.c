// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The engine's self-test: two probe points, each implemented by several
 * mechanisms, so that the engine's choice and fallback can be observed.
 *
 *   dt_st_openat  openat(2) entry and exit: fentry/fexit on do_sys_openat2,
 *                 kprobe/kretprobe on the same, or the syscall tracepoints.
 *   dt_st_exec    a successful exec: tp_btf or raw_tp sched_process_exec.
 *   dt_st_tasks   a task iterator, a point with a single program, which
 *                 lists the pid of every process.
 *
 * Every program emits one event per hit, for the one process named in
 * dt_st_config, so a test can count exactly.  dt_events is small (128
 * events), so a test that stops reading overflows it after a few dozen
 * openat(2) calls and can check the drop count.
 */
/* One page: 128 records of 8-byte header + 24-byte event. */
#define DT_EVENTS_BYTES 4096

#include "compat.h"
#include "selftest.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_st_config);
} dt_st_cfg SEC(".maps");

static __always_inline int dt_st_emit(__u32 point, __u32 mech)
{
	struct dt_st_config *cfg;
	struct dt_st_event *e;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&dt_st_cfg, &zero);
	if (!cfg || !cfg->tgid || cfg->tgid != dt_tgid())
		return 0;

	e = dt_reserve(sizeof(*e));
	if (!e)
		return 0;
	e->size = sizeof(*e);
	e->point = point;
	e->mech = mech;
	e->tgid = dt_tgid();
	e->ts_ns = bpf_ktime_get_ns();
	dt_submit(e);
	return 0;
}

/* dt_st_openat */

SEC("fentry/do_sys_openat2")
int dt_st_openat_e__fentry(void *ctx)
{
	return dt_st_emit(DT_ST_OPENAT, DT_ST_FENTRY);
}

SEC("fexit/do_sys_openat2")
int dt_st_openat_x__fentry(void *ctx)
{
	return dt_st_emit(DT_ST_OPENAT, DT_ST_FEXIT);
}

SEC("kprobe/do_sys_openat2")
int dt_st_openat_e__kprobe(struct pt_regs *ctx)
{
	return dt_st_emit(DT_ST_OPENAT, DT_ST_KPROBE);
}

SEC("kretprobe/do_sys_openat2")
int dt_st_openat_x__kprobe(struct pt_regs *ctx)
{
	return dt_st_emit(DT_ST_OPENAT, DT_ST_KRETPROBE);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int dt_st_openat_e__tp(struct trace_event_raw_sys_enter *ctx)
{
	return dt_st_emit(DT_ST_OPENAT, DT_ST_TP_ENTER);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int dt_st_openat_x__tp(struct trace_event_raw_sys_exit *ctx)
{
	return dt_st_emit(DT_ST_OPENAT, DT_ST_TP_EXIT);
}

/* dt_st_exec */

SEC("tp_btf/sched_process_exec")
int dt_st_exec__tp_btf(u64 *ctx)
{
	return dt_st_emit(DT_ST_EXEC, DT_ST_TP_BTF);
}

SEC("raw_tp/sched_process_exec")
int dt_st_exec__raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return dt_st_emit(DT_ST_EXEC, DT_ST_RAW_TP);
}

/* dt_st_tasks */

SEC("iter/task")
int dt_st_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	/* Thread group leaders only: one line per process. */
	if (!task || task->pid != task->tgid)
		return 0;
	BPF_SEQ_PRINTF(ctx->meta->seq, "%d\n", task->tgid);
	return 0;
}
