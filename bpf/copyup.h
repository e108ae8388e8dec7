/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* dockertrace: events */
/*
 * Events of the OverlayFS copy-up tracer (copyup.bpf.c).
 *
 * Read by clang for the BPF object and by cffi for the Python side, so
 * struct dt_cu_event is defined once. cffi parses only plain
 * declarations: array sizes are literals that must match DT_CU_*_LEN.
 */
#ifndef DT_COPYUP_H
#define DT_COPYUP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define DT_CU_COMM_LEN 16
/* Room for 256 bytes of path plus one more name of up to 255 bytes. */
#define DT_CU_PATH_LEN 512
#define DT_CU_ARG_LEN 256
#define DT_CU_CGROUP_LEN 128

/* The operation that made the copy-up happen; Python keeps the names. */
enum dt_cu_op {
	DT_CU_OP_OTHER = 0,	/* not inside a traced syscall */
	DT_CU_OP_OPEN = 1,	/* open for writing, O_TRUNC or O_CREAT */
	DT_CU_OP_TRUNCATE = 2,
	DT_CU_OP_CHMOD = 3,
	DT_CU_OP_CHOWN = 4,
	DT_CU_OP_XATTR = 5,	/* set or remove an extended attribute */
	DT_CU_OP_UTIMES = 6,
	DT_CU_OP_RENAME = 7,
	DT_CU_OP_LINK = 8,
	DT_CU_OP_CREATE = 9,	/* mkdir, mknod, symlink: parents only */
	DT_CU_OP_UNLINK = 10,	/* unlink, rmdir: parents only */
};

/* How the copy-up was seen. */
enum dt_cu_mech {
	DT_CU_MECH_FUNC = 1,	/* fentry/fexit or kprobes on ovl_copy_up_one */
	DT_CU_MECH_TP = 2,	/* temporary inode in the work dir (ext4) */
};

/* Where the path in dt_cu_event.path comes from. */
enum dt_cu_path_src {
	DT_CU_PATH_NONE = 0,
	DT_CU_PATH_DENTRY = 1,	/* the copied dentry itself (exact) */
	DT_CU_PATH_FILE = 2,	/* the file the syscall opened or used */
	DT_CU_PATH_BASE = 3,	/* the directory a relative arg starts at */
};

/*
 * One event per syscall that made at least one copy-up (all copy-ups it
 * made, parents included, are counted in it), or per copy-up made
 * outside a traced syscall.
 */
struct dt_cu_event {
	__u64 ts_ns;		/* syscall exit, or copy-up exit */
	__u64 start_ns;		/* syscall entry; 0 outside a syscall */
	__u64 copy_start_ns;	/* first copy-up began (function entry, or
				 * the temporary inode was requested) */
	__u64 copy_ns;		/* summed copy-up durations (function
				 * mechanism only) */
	__u64 cgroup_id;	/* cgroup v2 id of the task */
	__u64 size;		/* i_size of the copied object (function
				 * mechanism only) */
	__u64 wd_ino;		/* inode of the work dir (tracepoint only) */
	__u64 flags;		/* open flags of an OPEN trigger */
	__s64 ret;		/* syscall return value */
	__u32 pid;		/* thread id */
	__u32 tgid;		/* process id */
	__u32 mntns;		/* mount namespace inode */
	__u32 wd_dev;		/* kernel dev_t of the work dir's fs */
	__u32 nr;		/* syscall number; ~0 outside a syscall */
	__u32 mode;		/* i_mode of the last object copied */
	__u16 op;		/* enum dt_cu_op */
	__u16 mech;		/* enum dt_cu_mech */
	__u16 ndirs;		/* directories copied */
	__u16 nother;		/* non-directories copied */
	__u16 path_src;		/* enum dt_cu_path_src */
	__u16 path_len;		/* bytes used in path */
	__u16 depth_hit;	/* 1 when the walk stopped at its bound */
	__u16 arg_len;		/* bytes in arg, 0 when there is none */
	char comm[16];
	char cgroup[128];	/* name of the task's cgroup v2 directory */
	char path[512];		/* names, leaf first, each NUL-terminated */
	char arg[256];		/* the syscall's path argument as given */
};

/* Configuration, written by user space after load (map dt_cu_cfg). */
struct dt_cu_cfg {
	__u32 skip_mntns;	/* ignore tasks in this mount namespace
				 * (the host's, where dockerd runs); 0: none */
	__u32 pad;
};

#endif /* DT_COPYUP_H */
