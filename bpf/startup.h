/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* dockertrace: events */
/*
 * Events of the container start tracer (startup.bpf.c).
 *
 * This header is read twice: by clang for the BPF object and by cffi for
 * the Python side, so the layout of struct dt_su_event is defined once.
 * cffi parses only plain declarations, so array sizes are literals that
 * must match the DT_SU_*_LEN values above.
 */
#ifndef DT_STARTUP_H
#define DT_STARTUP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define DT_SU_COMM_LEN 16
#define DT_SU_PATH_LEN 256
#define DT_SU_ARGS_LEN 512

/* What an event records; the Python side keeps the names in step. */
enum dt_su_kind {
	DT_SU_EXEC = 1,		/* exec done; start_ns = execve entry */
	DT_SU_FORK = 2,		/* a traced process made a child: aux = pid */
	DT_SU_CGROUP_MKDIR = 3,	/* path = cgroup path, aux = cgroup id,
				 * arg = hierarchy id */
	DT_SU_UNSHARE = 4,	/* arg = CLONE_NEW* flags */
	DT_SU_CLONE = 5,	/* clone/clone3 with namespace flags */
	DT_SU_SETNS = 6,	/* arg = nstype */
	DT_SU_MOUNT = 7,	/* path = target, args = source \0 fstype,
				 * arg = MS_* flags */
	DT_SU_PIVOT_ROOT = 8,	/* path = new root */
	DT_SU_CAPSET = 9,
	DT_SU_SECCOMP = 10,	/* arg = seccomp(2) op, or 256 + mode for
				 * prctl(PR_SET_SECCOMP) */
	DT_SU_NO_NEW_PRIVS = 11,	/* prctl(PR_SET_NO_NEW_PRIVS) */
	DT_SU_NEWMOUNT = 12,	/* fsmount, move_mount or open_tree:
				 * arg = syscall number */
};

struct dt_su_event {
	__u64 ts_ns;		/* when the event finished (syscall exit) */
	__u64 start_ns;		/* syscall entry; equals ts_ns for points */
	__u64 cgroup_id;	/* cgroup v2 id of the task */
	__u64 arg;		/* kind specific, see enum dt_su_kind */
	__u64 aux;		/* kind specific, see enum dt_su_kind */
	__s64 ret;		/* syscall return value */
	__u32 pid;		/* thread id */
	__u32 tgid;		/* process id */
	__u32 ppid;		/* process id of the real parent */
	__u32 mntns;		/* mount namespace inode */
	__u16 kind;		/* enum dt_su_kind */
	__u16 args_len;		/* bytes used in args */
	__u32 tracked;		/* 1 when the task descends from a runtime */
	char comm[16];	/* name after the event */
	char old_comm[16];	/* name before exec */
	char path[256];
	char args[512];	/* NUL-separated strings */
};

#endif /* DT_STARTUP_H */
