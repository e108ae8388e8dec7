/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* dockertrace: events */
/*
 * Events of the CPU throttling tracer (throttle.bpf.c).
 *
 * Read by clang for the BPF object and by cffi for the Python side, so the
 * records are defined once.  Every record starts with a __u32 kind that
 * tells which struct it is.  Fixed-size integer types and char arrays
 * only: the Python side decodes them with engine.records.RecordLayout.
 */
#ifndef __DT_THROTTLE_H
#define __DT_THROTTLE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define DT_TH_COMM_LEN 16

/* Bound of the loop over a task group's per-CPU scheduling entities. */
#define DT_TH_MAX_CPUS 256

enum dt_th_kind {
	DT_TH_PERIOD = 1,	/* struct dt_th_period */
	DT_TH_THREAD = 2,	/* struct dt_th_thread */
	DT_TH_THROTTLE = 3,	/* struct dt_th_moment: a cfs_rq throttled */
	DT_TH_UNTHROTTLE = 4,	/* struct dt_th_moment: and unthrottled */
};

/*
 * Configuration, written by user space into dt_th_cfg after load (the
 * engine keeps objects generic, so no .rodata).
 */
struct dt_th_config {
	__u32 filter;	/* 1: only groups whose cgroup id is in dt_th_want */
	__u32 threads;	/* 1: account CPU time per thread */
	__u32 ncpus;	/* possible CPUs: entries of task_group->se */
	__u32 pad;
};

/*
 * The bandwidth counters of one task group right after its period timer
 * ran: the timer has refilled the quota, counted the period that just
 * ended and unthrottled what it could.  Counters are cumulative, as in
 * cpu.stat; user space takes differences between consecutive records.
 */
struct dt_th_period {
	__u32 kind;		/* DT_TH_PERIOD */
	__u32 cpu;		/* CPU the timer ran on */
	__u64 ts_ns;		/* bpf_ktime_get_ns() at the timer's end */
	__u64 cgroup_id;	/* kernfs id of the task group's cgroup */
	__u64 period_ns;
	__u64 quota_ns;		/* ~0 when there is no limit */
	__u64 burst_ns;
	__u64 runtime_ns;	/* quota left in the pool after the refill */
	__u64 usage_ns;		/* CPU time of the group, all CPUs */
	__u64 throttled_time_ns;
	__u64 burst_time_ns;
	__u32 nr_periods;
	__u32 nr_throttled;
	__u32 nr_burst;
	__u32 nr_threads;	/* dt_th_thread records sent just before */
	__u32 other_threads;	/* threads that ran but were not sent */
	__u32 pad;
	__u64 other_ns;		/* and the CPU time they used */
};

/* CPU time one thread of the group used in the period that just ended. */
struct dt_th_thread {
	__u32 kind;		/* DT_TH_THREAD */
	__u32 tid;
	__u64 ts_ns;		/* ts_ns of the period record it belongs to */
	__u64 cgroup_id;
	__u64 used_ns;
	__u32 tgid;
	__u32 pad;
	char comm[16];
};

/* A group's run queue on one CPU was throttled or unthrottled. */
struct dt_th_moment {
	__u32 kind;		/* DT_TH_THROTTLE or DT_TH_UNTHROTTLE */
	__u32 cpu;
	__u64 ts_ns;
	__u64 cgroup_id;
};

#endif /* __DT_THROTTLE_H */
