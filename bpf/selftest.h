/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* dockertrace: events */
/*
 * Events of the engine's self-test object (bpf/selftest.bpf.c).
 *
 * Shared by the BPF side and the cffi layer: fixed-size integer types and
 * arrays only, no kernel types.
 */
#ifndef __DT_SELFTEST_H
#define __DT_SELFTEST_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Which program produced an event. */
enum dt_st_mech {
	DT_ST_FENTRY = 1,
	DT_ST_FEXIT = 2,
	DT_ST_KPROBE = 3,
	DT_ST_KRETPROBE = 4,
	DT_ST_TP_ENTER = 5,
	DT_ST_TP_EXIT = 6,
	DT_ST_TP_BTF = 7,
	DT_ST_RAW_TP = 8,
};

/* Which probe point an event belongs to. */
enum dt_st_point {
	DT_ST_OPENAT = 1,	/* dt_st_openat: openat(2), entry and exit */
	DT_ST_EXEC = 2,		/* dt_st_exec: a successful execve(2) */
};

struct dt_st_event {
	__u32 size;	/* sizeof(struct dt_st_event) as the BPF side sees it */
	__u32 point;	/* enum dt_st_point */
	__u32 mech;	/* enum dt_st_mech */
	__u32 tgid;
	__u64 ts_ns;	/* bpf_ktime_get_ns() */
};

/* The single entry of the dt_st_cfg array map, written after load. */
struct dt_st_config {
	__u32 tgid;	/* only this process is traced; 0 traces nothing */
	__u32 pad;
};

#endif /* __DT_SELFTEST_H */
