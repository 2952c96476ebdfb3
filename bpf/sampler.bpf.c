//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sampler.bpf.c: on-CPU stack sampler.
 *
 * Attaches to: a software cpu-clock perf event on every online CPU (one
 *   program, one perf event per CPU, opened by agent/sampler).
 * Writes: one struct cpu_sample per sample into the "events" ring buffer
 *   (header, comm, user SP and the two words above it, user then kernel
 *   frames), variable length so a short stack costs a short record.
 *   Counters (samples, lost, stack errors) go to the per-CPU "counters" array.
 * Limits: frame-pointer callchains from bpf_get_stack (127 user, 64 kernel
 *   frames); code built without frame pointers yields truncated user stacks
 *   until the .eh_frame unwinder lands. The idle task is counted, not sent.
 *   When the ring is full the sample is counted as lost, never blocked on.
 * Tunables (set at load, read-only): filter_tgid (0 = every process),
 *   wakeup_bytes (wake the reader only once this much is queued, so user
 *   space drains in batches rather than once per sample).
 * Wakeups: the reader is also woken at once by the first sample of a process
 *   not in "known_pids" (which user space fills as it reads processes from
 *   /proc), so that a process living 200 ms is read before it exits even
 *   though the reader otherwise collects only every second or so.
 */
#include "flightrec.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 filter_tgid = 0;
const volatile __u64 wakeup_bytes = 256 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by the loader */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_sample);
} sample_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);   /* tgid */
	__type(value, __u8);
} known_pids SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		(*v)++;
}

static __always_inline __u64 wakeup_flag(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
		       BPF_RB_FORCE_WAKEUP :
		       BPF_RB_NO_WAKEUP;
}

/* Reads the user stack pointer and the two words above it, from the user
 * registers saved on kernel entry (valid whether the sample hit user or
 * kernel mode). Failure leaves zeros: user space then skips the fix-up. */
static __always_inline void read_user_sp(struct cpu_sample *s)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs___x86 *regs = (void *)bpf_task_pt_regs(task);

	s->user_sp = 0;
	s->sp_words[0] = 0;
	s->sp_words[1] = 0;
	if (!regs)
		return;
	s->user_sp = BPF_CORE_READ(regs, sp);
	if (bpf_probe_read_user(s->sp_words, sizeof(s->sp_words), (void *)s->user_sp) < 0)
		s->sp_words[0] = s->sp_words[1] = 0;
}

SEC("perf_event")
int sample_cpu(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__u32 zero = 0;

	if (tgid == 0) {
		count(COUNTER_IDLE);
		return 0;
	}
	if (filter_tgid && tgid != filter_tgid) {
		count(COUNTER_FILTERED);
		return 0;
	}

	struct cpu_sample *s = bpf_map_lookup_elem(&sample_scratch, &zero);
	if (!s)
		return 0;

	s->hdr.ts = bpf_ktime_get_boot_ns();
	s->hdr.pid = tgid;
	s->hdr.tid = (__u32)id;
	s->hdr.kind = RECORD_CPU_SAMPLE;
	s->hdr.cpu = bpf_get_smp_processor_id();
	s->hdr._pad = 0;
	s->_pad = 0;
	bpf_get_current_comm(s->comm, sizeof(s->comm));

	long ub = bpf_get_stack(ctx, s->frames, MAX_USER_FRAMES * sizeof(__u64), BPF_F_USER_STACK);
	if (ub < 0) {
		count(COUNTER_USER_STACK_ERR);
		ub = 0;
	}
	__u32 nu = ub / sizeof(__u64);
	if (nu > MAX_USER_FRAMES)
		nu = MAX_USER_FRAMES;

	long kb = bpf_get_stack(ctx, &s->frames[nu], MAX_KERN_FRAMES * sizeof(__u64), 0);
	if (kb < 0) {
		count(COUNTER_KERN_STACK_ERR);
		kb = 0;
	}
	__u32 nk = kb / sizeof(__u64);
	if (nk > MAX_KERN_FRAMES)
		nk = MAX_KERN_FRAMES;

	s->user_len = nu;
	s->kern_len = nk;
	if (nu > 0)
		read_user_sp(s);
	else
		s->user_sp = s->sp_words[0] = s->sp_words[1] = 0;

	__u64 size = __builtin_offsetof(struct cpu_sample, frames) + (nu + nk) * sizeof(__u64);
	if (size > sizeof(*s))
		size = sizeof(*s);
	__u64 flags = bpf_map_lookup_elem(&known_pids, &tgid) ? wakeup_flag() : BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, s, size, flags) < 0) {
		count(COUNTER_LOST);
		return 0;
	}
	count(COUNTER_SAMPLES);
	return 0;
}
