/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Common ground of every dockertrace BPF object.
 *
 * Each bpf/<concern>.bpf.c includes this header exactly once, first.  It
 * brings the kernel types (CO-RE), the libbpf helper headers and the two
 * maps the engine expects in every object:
 *
 *   dt_events  ring buffer the engine reads events from;
 *   dt_drops   per-CPU counter of events lost because dt_events was full.
 *
 * The event headers (bpf/<concern>.h) must not include this file: they are
 * also compiled by the cffi layer in user space.
 */
#ifndef __DT_COMPAT_H
#define __DT_COMPAT_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/*
 * Size of dt_events in bytes: a power of two and a multiple of the page
 * size.  An object may define it before including this header; the engine
 * can also resize the map before load.
 */
#ifndef DT_EVENTS_BYTES
#define DT_EVENTS_BYTES (256 * 1024)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, DT_EVENTS_BYTES);
} dt_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dt_drops SEC(".maps");

/*
 * Reserve @size bytes in dt_events, or count a drop and return NULL.
 * @size must be a compile-time constant (the verifier requires it).
 */
static __always_inline void *dt_reserve(__u64 size)
{
	__u32 zero = 0;
	__u64 *drops;
	void *rec;

	rec = bpf_ringbuf_reserve(&dt_events, size, 0);
	if (rec)
		return rec;

	/*
	 * The slot is per CPU and BPF programs do not migrate while they
	 * run, so a plain increment is enough; a program nesting on the
	 * same CPU could lose one count, which is acceptable for a counter
	 * that only needs to be non-zero when events were lost.
	 */
	drops = bpf_map_lookup_elem(&dt_drops, &zero);
	if (drops)
		*drops += 1;
	return NULL;
}

static __always_inline void dt_submit(void *rec)
{
	bpf_ringbuf_submit(rec, 0);
}

/* The thread group id, which user space calls the pid. */
static __always_inline __u32 dt_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

/*
 * CO-RE shims.
 *
 * Kernel drift is handled here and nowhere else.  Each shim is a small
 * static inline function or a `___suffix` struct flavour, preceded by a
 * comment that names the kernel change it covers: the commit (12-digit
 * hash and subject) and the first release that has it, e.g.
 *
 *	// Linux 6.6, commit 0123456789ab ("fs: rename foo to bar"):
 *	// older kernels have foo, newer ones bar.
 *	struct foo___old { ... };
 *	static __always_inline ... dt_foo(...)
 *	{
 *		if (bpf_core_field_exists(...))
 *			...
 *	}
 *
 * (none yet)
 */

#endif /* __DT_COMPAT_H */
