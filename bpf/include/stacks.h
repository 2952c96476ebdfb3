/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stacks.h: capture the current task's stacks into a stack_record and name
 * them by a 64-bit hash, for programs that refer to a stack from several
 * records (off-CPU intervals, crashes). Include after defining the maps
 * "events", "counters" and "stack_scratch" (PERCPU_ARRAY of one
 * struct stack_record).
 */
#ifndef FLIGHTREC_STACKS_H
#define FLIGHTREC_STACKS_H

#include "flightrec.h"

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

static __always_inline void fill_header(struct record_header *h, __u16 kind, __u32 tgid, __u32 tid, __u64 ts)
{
	h->ts = ts;
	h->pid = tgid;
	h->tid = tid;
	h->kind = kind;
	h->cpu = bpf_get_smp_processor_id();
	h->_pad = 0;
}

/* hash_ctx carries FNV-1a over a stack's frames through bpf_loop. */
struct hash_ctx {
	struct stack_record *s;
	__u64 h;
	__u32 n;
};

/* hash_frame is bpf_loop's body: verified once, where an open loop is
 * verified once per possible frame (12k instructions, most of the agent's
 * load time); kernels that inline bpf_loop run it at the same cost. */
static long hash_frame(__u64 i, void *data)
{
	struct hash_ctx *c = data;
	/* One 64-bit compare, on the register that indexes: a 32-bit index
	 * gets zero-extended into a copy the verifier bounds instead. */
	if (i >= MAX_USER_FRAMES + MAX_KERN_FRAMES || i >= c->n)
		return 1;
	c->h = (c->h ^ c->s->frames[i]) * 0x100000001b3ULL;
	return 0;
}

/* capture_stack fills the scratch stack_record with the current task's user
 * and kernel stacks and returns it with its hash, or NULL. */
static __always_inline struct stack_record *capture_stack(void *ctx)
{
	__u32 zero = 0;
	struct stack_record *s = bpf_map_lookup_elem(&stack_scratch, &zero);
	if (!s)
		return NULL;

	/* Written as in sampler.bpf.c: clang keeps these clamps where the
	 * verifier needs them to bound &frames[nu]. */
	long ub = bpf_get_stack(ctx, s->frames, MAX_USER_FRAMES * sizeof(__u64), BPF_F_USER_STACK);
	if (ub < 0)
		ub = 0;
	__u32 nu = ub / sizeof(__u64);
	if (nu > MAX_USER_FRAMES)
		nu = MAX_USER_FRAMES;
	long kb = bpf_get_stack(ctx, &s->frames[nu], MAX_KERN_FRAMES * sizeof(__u64), 0);
	if (kb < 0)
		kb = 0;
	__u32 nk = kb / sizeof(__u64);
	if (nk > MAX_KERN_FRAMES)
		nk = MAX_KERN_FRAMES;
	s->user_len = nu;
	s->kern_len = nk;
	s->_pad = 0;

	s->user_sp = s->sp_words[0] = s->sp_words[1] = 0;
	if (nu > 0) {
		struct task_struct *task = bpf_get_current_task_btf();
		struct pt_regs___x86 *regs = (void *)bpf_task_pt_regs(task);
		if (regs) {
			s->user_sp = BPF_CORE_READ(regs, sp);
			if (bpf_probe_read_user(s->sp_words, sizeof(s->sp_words), (void *)s->user_sp) < 0)
				s->sp_words[0] = s->sp_words[1] = 0;
		}
	}

	/* FNV-1a over the frames and their split; the pid is mixed in by the
	 * reader, which keys stacks by (pid, hash). */
	struct hash_ctx hc = { .s = s, .h = 0xcbf29ce484222325ULL ^ ((__u64)nu << 32 | nk), .n = nu + nk };
	bpf_loop(hc.n, hash_frame, &hc, 0);
	s->hash = hc.h ? hc.h : 1;
	return s;
}

/* emit_stack writes the captured stack; false if the ring is full. */
static __always_inline bool emit_stack(struct stack_record *s, __u32 tgid, __u32 tid, __u64 ts)
{
	fill_header(&s->hdr, RECORD_STACK, tgid, tid, ts);
	__u64 size = __builtin_offsetof(struct stack_record, frames) + (s->user_len + s->kern_len) * sizeof(__u64);
	if (size > sizeof(*s))
		size = sizeof(*s);
	if (bpf_ringbuf_output(&events, s, size, wakeup_flag()) < 0)
		return false;
	count(COUNTER_STACKS);
	return true;
}

#endif /* FLIGHTREC_STACKS_H */
