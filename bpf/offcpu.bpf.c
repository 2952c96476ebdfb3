//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * offcpu.bpf.c: off-CPU intervals.
 *
 * Attaches to: tp_btf/sched_switch (BTF-typed raw tracepoint: no kprobes,
 *   no tracefs needed).
 * Writes, into the "events" ring shared with the sampler:
 *   - RECORD_STACK when a thread leaves the CPU with a stack different from
 *     the last one sent for it (user and kernel frames, hash), so a thread
 *     blocking at the same place over and over costs one stack record;
 *   - RECORD_OFF_CPU when the thread comes back after at least
 *     min_offcpu_ns: start, duration (hdr.ts - start), why it left
 *     (preempted, interruptible sleep, uninterruptible/I/O) and the stack hash.
 * Limits: intervals shorter than min_offcpu_ns (default 1 ms) are counted,
 *   not sent: off-CPU time is underestimated by at most that much per
 *   interval, and only intervals longer than it are attributed. A thread
 *   whose last STREAK_MIN intervals were all short reuses its last stack at
 *   switch-out (recapturing every RECAPTURE switch-outs): a long wait right
 *   after such a streak, at a new place, may be attributed to its previous
 *   blocking stack. Per-thread
 *   state lives in an LRU map of 32768 threads: a thread evicted while off
 *   the CPU loses that interval. Stacks are taken at switch-out
 *   (frame pointers; same limits as the sampler).
 * Tunables: filter_tgid, min_offcpu_ns, wakeup_bytes.
 */
#include "flightrec.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Emits the record type into BTF, so bpf2go generates its Go mirror. */
const struct offcpu_record *unused_offcpu_record __attribute__((unused));

const volatile __u32 filter_tgid = 0;
const volatile __u64 min_offcpu_ns = 1000000;
const volatile __u64 wakeup_bytes = 256 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096); /* replaced by the sampler's ring at load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack_record);
} stack_scratch SEC(".maps");

#include "stacks.h"

struct thread_state {
	__u64 start;     /* when it left the CPU, 0 while running */
	__u64 hash;      /* its stack then */
	__u64 sent_hash; /* the last stack sent for it */
	__u32 state;
	__u16 streak;    /* consecutive intervals shorter than min_offcpu_ns */
	__u16 reused;    /* switch-outs since the last capture */
};

/* A thread whose last STREAK_MIN intervals were all short (a ping-pong, a
 * spinning lock) is not worth a stack capture per switch: it reuses its
 * last stack, capturing afresh every RECAPTURE switch-outs and after any
 * long interval. Bias: a long wait that follows such a streak at a new
 * place is attributed to the thread's previous blocking stack, for at most
 * RECAPTURE switch-outs. */
#define STREAK_MIN 8
#define RECAPTURE 16

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct thread_state);
} threads SEC(".maps");

/* Task state bits (include/linux/sched.h). */
#define TASK_INTERRUPTIBLE 0x1
#define TASK_UNINTERRUPTIBLE 0x2

static __always_inline __u32 offcpu_state(bool preempt, unsigned int prev_state)
{
	if (preempt || prev_state == 0)
		return OFFCPU_PREEMPTED;
	if (prev_state & TASK_INTERRUPTIBLE)
		return OFFCPU_SLEEP;
	if (prev_state & TASK_UNINTERRUPTIBLE)
		return OFFCPU_BLOCKED;
	return OFFCPU_OTHER;
}

static __always_inline bool wanted(__u32 tgid, __u32 tid)
{
	return tid != 0 && (!filter_tgid || tgid == filter_tgid);
}

/* switch_out runs in prev's context: its stacks are the current ones. */
static __always_inline void switch_out(void *ctx, struct task_struct *prev, __u32 state, __u64 now)
{
	__u32 tid = BPF_CORE_READ(prev, pid), tgid = BPF_CORE_READ(prev, tgid);
	if (!wanted(tgid, tid))
		return;
	struct thread_state *st = bpf_map_lookup_elem(&threads, &tid);
	if (!st) {
		struct thread_state init = {};
		bpf_map_update_elem(&threads, &tid, &init, BPF_ANY);
		st = bpf_map_lookup_elem(&threads, &tid);
		if (!st)
			return;
	}
	if (st->streak >= STREAK_MIN && st->hash && ++st->reused < RECAPTURE) {
		count(COUNTER_OFFCPU_REUSED);
		st->start = now;
		st->state = state;
		return;
	}
	st->reused = 0;
	struct stack_record *s = capture_stack(ctx);
	if (!s)
		return;
	if (s->hash != st->sent_hash) {
		if (emit_stack(s, tgid, tid, now))
			st->sent_hash = s->hash;
		else
			count(COUNTER_OFFCPU_LOST);
	}
	st->start = now;
	st->hash = s->hash;
	st->state = state;
}

static __always_inline void switch_in(struct task_struct *next, __u64 now)
{
	__u32 tid = BPF_CORE_READ(next, pid), tgid = BPF_CORE_READ(next, tgid);
	if (!wanted(tgid, tid))
		return;
	struct thread_state *st = bpf_map_lookup_elem(&threads, &tid);
	if (!st || !st->start)
		return;
	__u64 start = st->start;
	st->start = 0;
	if (now - start < min_offcpu_ns) {
		if (st->streak < STREAK_MIN)
			st->streak++;
		count(COUNTER_OFFCPU_SHORT);
		return;
	}
	st->streak = 0;
	struct offcpu_record r = {
		.start = start,
		.stack_hash = st->hash,
		.state = st->state,
	};
	fill_header(&r.hdr, RECORD_OFF_CPU, tgid, tid, now);
	if (bpf_ringbuf_output(&events, &r, sizeof(r), wakeup_flag()) < 0) {
		count(COUNTER_OFFCPU_LOST);
		return;
	}
	count(COUNTER_OFFCPU);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_boot_ns();
	switch_out(ctx, prev, offcpu_state(preempt, prev_state), now);
	switch_in(next, now);
	return 0;
}
