// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPU throttling tracer.
 *
 * The CFS bandwidth controller gives each task group with a CPU limit a
 * quota of CPU time per period and throttles the group's run queues once
 * it is used up.  A per-group hrtimer (sched_cfs_period_timer) ends each
 * period: it counts it, refills the quota and unthrottles.
 *
 * Three probe points:
 *
 *   dt_th_period	the end of the period timer's run, from the timer
 *			tracepoints (tp_btf, raw_tp): one dt_th_period
 *			record per period and group with a quota, with the
 *			group's bandwidth counters read through CO-RE, and
 *			the dt_th_thread records of the threads that ran.
 *   dt_th_throttle	throttle_cfs_rq, dt_th_unthrottle unthrottle_cfs_rq
 *			(fentry/fexit, kprobe/kretprobe): the exact moment
 *			each CPU's run queue of a group is throttled and
 *			unthrottled.  Optional: not every kernel lets BPF
 *			attach there.
 *   dt_th_runtime	sched_stat_runtime: CPU time per thread of a traced
 *			group, summed in dt_th_threads until the period
 *			ends.  Optional and switched off by default in
 *			dt_th_cfg (see the benchmark for its cost).
 */
#define DT_EVENTS_BYTES (512 * 1024)
#include "compat.h"
#include "throttle.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define DT_TH_RUNTIME_INF	(~0ULL)
#define DT_TH_MAX_THREADS	8192

/*
 * The period timer's function.  Resolved by libbpf from kallsyms; weak so
 * that a kernel without it loads the object and simply sends no periods.
 */
extern const void sched_cfs_period_timer __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_th_config);
} dt_th_cfg SEC(".maps");

/* Cgroup ids to trace when dt_th_config.filter is set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} dt_th_want SEC(".maps");

/*
 * Task groups seen with a quota: task_group address -> cgroup id.  Lets
 * dt_th_runtime tell a traced group from a task's sched_task_group with
 * one lookup instead of three dependent reads per event.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} dt_th_groups SEC(".maps");

struct dt_th_tkey {
	__u64 cgroup_id;
	__u32 tid;
	__u32 pad;
};

struct dt_th_tval {
	__u64 used_ns;
	__u32 tgid;
	__u32 pad;
	char comm[DT_TH_COMM_LEN];
};

/* CPU time per thread of a traced group since the period began. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_TH_MAX_THREADS);
	__type(key, struct dt_th_tkey);
	__type(value, struct dt_th_tval);
} dt_th_threads SEC(".maps");

/* throttle_cfs_rq's argument from kprobe to kretprobe, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} dt_th_inflight SEC(".maps");

static __always_inline struct dt_th_config *dt_th_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dt_th_cfg, &zero);
}

static __always_inline __u64 dt_th_cgroup_id(struct task_group *tg)
{
	return BPF_CORE_READ(tg, css.cgroup, kn, id);
}

static __always_inline bool dt_th_wanted(struct dt_th_config *cfg,
					 __u64 cgid)
{
	return !cfg->filter || bpf_map_lookup_elem(&dt_th_want, &cgid);
}

/* The group's CPU time: the sum of its scheduling entities' run times. */
static __always_inline __u64 dt_th_usage(struct task_group *tg, __u32 ncpus)
{
	struct sched_entity **ses = BPF_CORE_READ(tg, se);
	struct sched_entity *se;
	__u64 sum = 0;
	__u32 i;

	for (i = 0; i < DT_TH_MAX_CPUS && i < ncpus; i++) {
		if (bpf_probe_read_kernel(&se, sizeof(se), &ses[i]) || !se)
			continue;
		sum += BPF_CORE_READ(se, sum_exec_runtime);
	}
	return sum;
}

/* Threads of one period, gathered before their records are sent. */
#define DT_TH_SLOTS 8

struct dt_th_slot {
	struct dt_th_tkey key;
	struct dt_th_tval val;
};

struct dt_th_scratch {
	struct dt_th_slot slot[DT_TH_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_th_scratch);
} dt_th_scratch SEC(".maps");

struct dt_th_flush {
	__u64 cgroup_id;
	__u32 n;		/* slots filled */
	__u32 other;		/* threads that did not fit */
	__u64 other_ns;		/* and their CPU time */
};

/*
 * bpf_for_each_map_elem callback over dt_th_threads: gather the threads of
 * one group that ran in the period and start their next period at zero.
 * The busiest DT_TH_SLOTS threads are kept; the rest are only summed.  A
 * thread that did not run for a whole period is forgotten, which also
 * clears out threads that exited.
 *
 * Records are not sent from here: reserving in a callback is refused by
 * older verifiers, and the slots let the busiest threads win.
 */
static long dt_th_flush_one(struct bpf_map *map, struct dt_th_tkey *key,
			    struct dt_th_tval *val, struct dt_th_flush *ctx)
{
	struct dt_th_scratch *sc;
	struct dt_th_slot *slot;
	__u32 zero = 0, i, min = 0;
	__u64 used;

	if (key->cgroup_id != ctx->cgroup_id)
		return 0;
	used = val->used_ns;
	if (!used) {
		bpf_map_delete_elem(map, key);
		return 0;
	}
	val->used_ns = 0;
	sc = bpf_map_lookup_elem(&dt_th_scratch, &zero);
	if (!sc)
		return 0;

	if (ctx->n < DT_TH_SLOTS) {
		i = ctx->n & (DT_TH_SLOTS - 1);
		ctx->n++;
	} else {
		/* Full: the new thread displaces the least busy one. */
		for (i = 1; i < DT_TH_SLOTS; i++)
			if (sc->slot[i].val.used_ns <
			    sc->slot[min].val.used_ns)
				min = i;
		i = min & (DT_TH_SLOTS - 1);
		if (sc->slot[i].val.used_ns >= used) {
			ctx->other++;
			ctx->other_ns += used;
			return 0;
		}
		ctx->other++;
		ctx->other_ns += sc->slot[i].val.used_ns;
	}
	slot = &sc->slot[i];
	slot->key = *key;
	slot->val = *val;
	slot->val.used_ns = used;
	return 0;
}

/* Send the gathered threads; the period record follows them. */
static __always_inline __u32 dt_th_send_threads(struct dt_th_flush *fl,
						 __u64 ts)
{
	struct dt_th_scratch *sc;
	struct dt_th_thread *ev;
	struct dt_th_slot *slot;
	__u32 zero = 0, i, sent = 0;

	sc = bpf_map_lookup_elem(&dt_th_scratch, &zero);
	if (!sc)
		return 0;
	for (i = 0; i < DT_TH_SLOTS; i++) {
		if (i >= fl->n)
			break;
		slot = &sc->slot[i];
		ev = dt_reserve(sizeof(*ev));
		if (!ev)
			break;
		ev->kind = DT_TH_THREAD;
		ev->tid = slot->key.tid;
		ev->ts_ns = ts;
		ev->cgroup_id = fl->cgroup_id;
		ev->used_ns = slot->val.used_ns;
		ev->tgid = slot->val.tgid;
		ev->pad = 0;
		__builtin_memcpy(ev->comm, slot->val.comm, sizeof(ev->comm));
		bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
		sent++;
	}
	return sent;
}

/*
 * The period timer of a group has just run.  @timer is only known to be a
 * hrtimer, so its function tells whether it is embedded in a
 * cfs_bandwidth (as period_timer) before container_of is used.
 */
static __always_inline int dt_th_on_timer(struct hrtimer *timer)
{
	struct dt_th_flush flush = {};
	struct cfs_bandwidth *cfs_b;
	struct dt_th_config *cfg;
	struct dt_th_period *ev;
	struct task_group *tg;
	__u64 fn, quota, cgid, tg_addr, ts;
	__u32 sent = 0;

	fn = (__u64)BPF_CORE_READ(timer, function);
	if (!fn || fn != (__u64)&sched_cfs_period_timer)
		return 0;
	cfg = dt_th_config();
	if (!cfg)
		return 0;

	/* container_of twice: timer -> cfs_bandwidth -> task_group. */
	cfs_b = (void *)((__u64)(void *)timer -
			 bpf_core_field_offset(struct cfs_bandwidth,
					       period_timer));
	tg_addr = (__u64)(void *)cfs_b -
		  bpf_core_field_offset(struct task_group, cfs_bandwidth);
	tg = (void *)tg_addr;

	quota = BPF_CORE_READ(cfs_b, quota);
	if (quota == DT_TH_RUNTIME_INF)
		return 0;
	cgid = dt_th_cgroup_id(tg);
	if (!dt_th_wanted(cfg, cgid))
		return 0;

	flush.cgroup_id = cgid;
	ts = bpf_ktime_get_ns();
	if (cfg->threads) {
		bpf_map_update_elem(&dt_th_groups, &tg_addr, &cgid, BPF_ANY);
		bpf_for_each_map_elem(&dt_th_threads, dt_th_flush_one, &flush,
				      0);
		sent = dt_th_send_threads(&flush, ts);
	}

	ev = dt_reserve(sizeof(*ev));
	if (!ev)
		return 0;
	ev->kind = DT_TH_PERIOD;
	ev->cpu = bpf_get_smp_processor_id();
	ev->ts_ns = ts;
	ev->cgroup_id = cgid;
	ev->period_ns = BPF_CORE_READ(cfs_b, period);
	ev->quota_ns = quota;
	ev->burst_ns = bpf_core_field_exists(cfs_b->burst) ?
		       BPF_CORE_READ(cfs_b, burst) : 0;
	ev->runtime_ns = BPF_CORE_READ(cfs_b, runtime);
	ev->usage_ns = dt_th_usage(tg, cfg->ncpus);
	ev->throttled_time_ns = BPF_CORE_READ(cfs_b, throttled_time);
	ev->burst_time_ns = bpf_core_field_exists(cfs_b->burst_time) ?
			    BPF_CORE_READ(cfs_b, burst_time) : 0;
	ev->nr_periods = BPF_CORE_READ(cfs_b, nr_periods);
	ev->nr_throttled = BPF_CORE_READ(cfs_b, nr_throttled);
	ev->nr_burst = bpf_core_field_exists(cfs_b->nr_burst) ?
		       BPF_CORE_READ(cfs_b, nr_burst) : 0;
	ev->nr_threads = sent;
	ev->other_threads = flush.other;
	ev->other_ns = flush.other_ns;
	/*
	 * About ten periods a second per group: wake the reader for each.
	 * Forced, because the default wakes only when the record is the
	 * first one unread, and the thread records before it were sent
	 * without waking anyone.
	 */
	bpf_ringbuf_submit(ev, BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tp_btf/hrtimer_expire_exit")
int BPF_PROG(dt_th_period__tp_btf, struct hrtimer *timer)
{
	return dt_th_on_timer(timer);
}

SEC("raw_tp/hrtimer_expire_exit")
int BPF_PROG(dt_th_period__raw_tp, struct hrtimer *timer)
{
	return dt_th_on_timer(timer);
}

/* Per-thread CPU time: sched_stat_runtime reports each accounting step. */

static __always_inline int dt_th_on_runtime(struct task_struct *p,
					    __u64 delta)
{
	struct dt_th_tkey key = {};
	struct dt_th_tval *val, fresh = {};
	__u64 tg_addr, *cgid;

	tg_addr = (__u64)BPF_CORE_READ(p, sched_task_group);
	cgid = bpf_map_lookup_elem(&dt_th_groups, &tg_addr);
	if (!cgid)
		return 0;
	key.cgroup_id = *cgid;
	key.tid = BPF_CORE_READ(p, pid);
	val = bpf_map_lookup_elem(&dt_th_threads, &key);
	if (val) {
		/*
		 * The name is read again once a period, so a thread that
		 * exec'd (runc's init becoming the container's command) is
		 * shown under its new name.
		 */
		if (!val->used_ns)
			BPF_CORE_READ_STR_INTO(&val->comm, p, comm);
		__sync_fetch_and_add(&val->used_ns, delta);
		return 0;
	}
	fresh.used_ns = delta;
	fresh.tgid = BPF_CORE_READ(p, tgid);
	BPF_CORE_READ_STR_INTO(&fresh.comm, p, comm);
	bpf_map_update_elem(&dt_th_threads, &key, &fresh, BPF_NOEXIST);
	return 0;
}

SEC("tp_btf/sched_stat_runtime")
int BPF_PROG(dt_th_runtime__tp_btf, struct task_struct *p, __u64 runtime)
{
	return dt_th_on_runtime(p, runtime);
}

SEC("raw_tp/sched_stat_runtime")
int BPF_PROG(dt_th_runtime__raw_tp, struct task_struct *p, __u64 runtime)
{
	return dt_th_on_runtime(p, runtime);
}

/* Exact throttle and unthrottle moments, per CPU. */

/*
 * CO-RE shim, kept here because only this tracer reads cfs_rq: the
 * throttled flag was an int for a long time and is a one-bit field in
 * recent kernels (6.18 has `bool throttled:1`).  The probed bitfield read
 * relocates the byte offset, size and shifts, so both layouts work.
 */
struct cfs_rq___dt {
	bool throttled: 1;
} __attribute__((preserve_access_index));

static __always_inline bool dt_th_rq_throttled(struct cfs_rq *cfs_rq)
{
	/*
	 * Through a flavour with only that field: clang 14 cannot emit the
	 * bitfield relocation against the cache-line aligned struct cfs_rq
	 * ("requiring too big alignment").
	 */
	struct cfs_rq___dt *rq = (void *)cfs_rq;

	return BPF_CORE_READ_BITFIELD_PROBED(rq, throttled);
}

static __always_inline int dt_th_moment(struct cfs_rq *cfs_rq, __u32 kind)
{
	struct dt_th_config *cfg = dt_th_config();
	struct dt_th_moment *ev;
	__u64 cgid;

	if (!cfg)
		return 0;
	cgid = dt_th_cgroup_id(BPF_CORE_READ(cfs_rq, tg));
	if (!dt_th_wanted(cfg, cgid))
		return 0;
	ev = dt_reserve(sizeof(*ev));
	if (!ev)
		return 0;
	ev->kind = kind;
	ev->cpu = BPF_CORE_READ(cfs_rq, rq, cpu);
	ev->ts_ns = bpf_ktime_get_ns();
	ev->cgroup_id = cgid;
	/* Two per CPU and period at most: the period record wakes. */
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	return 0;
}

/*
 * throttle_cfs_rq may return without throttling (it found runtime after
 * all), so the moment is taken at its exit, when the flag tells.
 */
SEC("fexit/throttle_cfs_rq")
int BPF_PROG(dt_th_throttle_x__fentry, struct cfs_rq *cfs_rq)
{
	if (!dt_th_rq_throttled(cfs_rq))
		return 0;
	return dt_th_moment(cfs_rq, DT_TH_THROTTLE);
}

SEC("kprobe/throttle_cfs_rq")
int BPF_KPROBE(dt_th_throttle_e__kprobe, struct cfs_rq *cfs_rq)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 ptr = (__u64)cfs_rq;

	bpf_map_update_elem(&dt_th_inflight, &tid, &ptr, BPF_ANY);
	return 0;
}

SEC("kretprobe/throttle_cfs_rq")
int BPF_KRETPROBE(dt_th_throttle_x__kprobe)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cfs_rq *cfs_rq;
	__u64 *ptr;

	ptr = bpf_map_lookup_elem(&dt_th_inflight, &tid);
	if (!ptr)
		return 0;
	cfs_rq = (void *)*ptr;
	bpf_map_delete_elem(&dt_th_inflight, &tid);
	if (!dt_th_rq_throttled(cfs_rq))
		return 0;
	return dt_th_moment(cfs_rq, DT_TH_THROTTLE);
}

SEC("fentry/unthrottle_cfs_rq")
int BPF_PROG(dt_th_unthrottle_e__fentry, struct cfs_rq *cfs_rq)
{
	return dt_th_moment(cfs_rq, DT_TH_UNTHROTTLE);
}

SEC("kprobe/unthrottle_cfs_rq")
int BPF_KPROBE(dt_th_unthrottle_e__kprobe, struct cfs_rq *cfs_rq)
{
	return dt_th_moment(cfs_rq, DT_TH_UNTHROTTLE);
}
