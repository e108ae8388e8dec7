// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Programs the engine's feature probes load and attach through libbpf,
 * for the mechanisms whose attach path is easiest to exercise that way.
 * The other probes load a trivial program directly (engine/features.py).
 *
 * Not a tracer: no events, no dt_events map, and never shown by doctor.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* vfs_read exists, and is kprobe-able, on every kernel we care about. */
SEC("kprobe/vfs_read")
int dt_probe_kprobe(void *ctx)
{
	return 0;
}
