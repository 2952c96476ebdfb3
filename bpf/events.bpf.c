//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * events.bpf.c: process events for the flight recorder.
 *
 * Attaches to (BTF-typed raw tracepoints):
 *   tp_btf/sched_process_exec  -> RECORD_EXEC (pid, comm, file executed)
 *   tp_btf/sched_process_exit  -> RECORD_EXIT when the last thread of a
 *                                 process exits (wait status: code, signal,
 *                                 core-dump bit)
 *   tp_btf/signal_generate     -> RECORD_SIGNAL for fatal signals (SIGSEGV,
 *                                 SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS);
 *                                 when a thread signals itself (a fault,
 *                                 abort()) its stack is sent as RECORD_STACK
 *                                 and named in the event
 *   tp_btf/mark_victim         -> RECORD_OOM_KILL for the OOM killer's victim
 * Writes into the "events" ring shared with the sampler.
 * Exec and exit also delete the process from the sampler's "known_pids"
 *   (shared at load): its next sample wakes the reader at once, so user
 *   space re-reads the new image's mappings before they are needed.
 * Limits: file names are cut at 63 bytes; exits of processes outside
 *   filter_tgid are still sent (a crash elsewhere can be what matters).
 */
#include "flightrec.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Emits the record type into BTF, so bpf2go generates its Go mirror. */
const struct event_record *unused_event_record __attribute__((unused));

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

/* The sampler's map of processes user space has read (replaced at load). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);   /* tgid */
	__type(value, __u8);
} known_pids SEC(".maps");

#include "stacks.h"

/* Crashes and OOM kills wake the reader at once (a trigger waits on them);
 * exec and exit ride with the next drain like samples: at 100 new
 * processes a second, a wake-up each costs the agent more than all else. */
static __always_inline void emit_event(struct event_record *e, __u64 flags)
{
	if (bpf_ringbuf_output(&events, e, sizeof(*e), flags) < 0) {
		count(COUNTER_EVENTS_LOST);
		return;
	}
	count(COUNTER_EVENTS);
}

static __always_inline void task_event(struct event_record *e, __u16 kind, struct task_struct *t)
{
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, kind, BPF_CORE_READ(t, tgid), BPF_CORE_READ(t, pid), bpf_ktime_get_boot_ns());
	BPF_CORE_READ_STR_INTO(&e->comm, t, comm);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	struct event_record e;
	task_event(&e, RECORD_EXEC, p);
	bpf_probe_read_kernel_str(e.filename, sizeof(e.filename), BPF_CORE_READ(bprm, filename));
	bpf_map_delete_elem(&known_pids, &e.hdr.pid);
	emit_event(&e, wakeup_flag());
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	/* signal->live counts live threads; it reaches 0 for the last one. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	struct event_record e;
	task_event(&e, RECORD_EXIT, p);
	e.exit_code = BPF_CORE_READ(p, exit_code);
	bpf_map_delete_elem(&known_pids, &e.hdr.pid);
	emit_event(&e, wakeup_flag());
	return 0;
}

static __always_inline bool fatal(int sig)
{
	return sig == 4 /* SIGILL */ || sig == 6 /* SIGABRT */ || sig == 7 /* SIGBUS */ ||
	       sig == 8 /* SIGFPE */ || sig == 11 /* SIGSEGV */ || sig == 31 /* SIGSYS */;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(on_signal, int sig, struct kernel_siginfo *info, struct task_struct *task, int group, int result)
{
	if (!fatal(sig))
		return 0;
	struct event_record e;
	task_event(&e, RECORD_SIGNAL, task);
	e.signal = sig;
	e.target_pid = BPF_CORE_READ(task, tgid);
	if (info && (__u64)info > 2) { /* SEND_SIG_NOINFO/PRIV are 0 and 1 */
		e.si_code = BPF_CORE_READ(info, si_code);
		e.addr = (__u64)BPF_CORE_READ(info, _sifields._sigfault._addr);
	}
	/* A thread that signals itself is the one that faulted or aborted:
	 * its stacks are the crash's. */
	if ((void *)task == (void *)bpf_get_current_task_btf()) {
		struct stack_record *s = capture_stack(ctx);
		if (s && emit_stack(s, e.hdr.pid, e.hdr.tid, e.hdr.ts))
			e.stack_hash = s->hash;
	}
	emit_event(&e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(on_oom_kill, struct task_struct *task, __u32 uid)
{
	struct event_record e;
	task_event(&e, RECORD_OOM_KILL, task);
	e.target_pid = BPF_CORE_READ(task, tgid);
	emit_event(&e, BPF_RB_FORCE_WAKEUP);
	return 0;
}
