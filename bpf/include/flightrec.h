/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * flightrec.h: the record layout every flightrec BPF program writes into the
 * shared "events" ring buffer, and the few kernel types they read through
 * CO-RE. Hand-declared instead of a generated vmlinux.h: only the fields named
 * here are relocated at load time, so the header stays small and reviewable.
 *
 * The Go mirror of these structs lives in agent/sampler/record.go; change both
 * together (a test there checks the sizes against the compiled object's BTF).
 */
#ifndef FLIGHTREC_H
#define FLIGHTREC_H

#include <linux/types.h>
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/* Stack depth limits. The kernel itself caps callchains at
 * sysctl kernel.perf_event_max_stack (127 by default). */
#define MAX_USER_FRAMES 127
#define MAX_KERN_FRAMES 64
#define TASK_COMM_LEN 16

/* Record kinds. Every record starts with struct record_header. */
enum record_kind {
	RECORD_CPU_SAMPLE = 1,
	RECORD_STACK = 2,    /* a blocking stack, named by its hash (offcpu.bpf.c) */
	RECORD_OFF_CPU = 3,  /* an off-CPU interval (offcpu.bpf.c) */
	RECORD_EXEC = 4,     /* process events (events.bpf.c) */
	RECORD_EXIT = 5,
	RECORD_SIGNAL = 6,
	RECORD_OOM_KILL = 7,
};

struct record_header {
	__u64 ts;   /* CLOCK_BOOTTIME nanoseconds (bpf_ktime_get_boot_ns) */
	__u32 pid;  /* thread group id: the process */
	__u32 tid;  /* thread id */
	__u16 kind; /* enum record_kind */
	__u16 cpu;
	__u32 _pad;
};

/* A CPU sample. frames[] holds user_len user frames (innermost first) then
 * kern_len kernel frames; only header + frames actually filled are sent.
 *
 * sp_words are the two words at the user stack pointer. Frame-pointer walking
 * misses the caller of a function that has not (yet) pushed its frame: a leaf
 * in its prologue, or a frameless leaf. The return address is then at [sp] or
 * [sp+8]; user space knows from the function's unwind data which, if either,
 * applies. This is also the seam for the .eh_frame unwinder, which will need
 * sp (and more) from here. */
struct cpu_sample {
	struct record_header hdr;
	char comm[TASK_COMM_LEN];
	__u64 user_sp;
	__u64 sp_words[2];
	__u16 user_len;
	__u16 kern_len;
	__u32 _pad;
	__u64 frames[MAX_USER_FRAMES + MAX_KERN_FRAMES];
};

/* Counters kept in a per-CPU array, summed by user space. */
enum counter {
	COUNTER_SAMPLES = 0,     /* CPU samples written to the ring */
	COUNTER_LOST = 1,        /* CPU samples dropped: ring full */
	COUNTER_USER_STACK_ERR = 2,
	COUNTER_KERN_STACK_ERR = 3,
	COUNTER_FILTERED = 4,    /* samples of other processes when filtering by pid */
	COUNTER_IDLE = 5,        /* samples that hit the idle task */
	COUNTER_OFFCPU = 6,      /* off-CPU intervals written */
	COUNTER_OFFCPU_SHORT = 7,/* intervals shorter than the minimum, not sent */
	COUNTER_OFFCPU_LOST = 8, /* off-CPU and stack records dropped: ring full */
	COUNTER_EVENTS = 9,      /* process events written */
	COUNTER_EVENTS_LOST = 10,
	COUNTER_STACKS = 11,     /* blocking stacks written (once per change per thread) */
	COUNTER_OFFCPU_REUSED = 12, /* switch-outs that reused the thread's last stack instead of capturing one */
	COUNTER_MAX = 16,
};

/* A blocking stack: what a thread was doing when it left the CPU. Sent
 * once per change per thread and named by hash; RECORD_OFF_CPU refers to it. */
struct stack_record {
	struct record_header hdr;
	__u64 hash;
	__u64 user_sp;
	__u64 sp_words[2];
	__u16 user_len;
	__u16 kern_len;
	__u32 _pad;
	__u64 frames[MAX_USER_FRAMES + MAX_KERN_FRAMES];
};

/* Off-CPU states, from the task state at switch-out. */
enum offcpu_state {
	OFFCPU_PREEMPTED = 0, /* still runnable: preempted or yielded */
	OFFCPU_SLEEP = 1,     /* interruptible sleep: waiting for an event */
	OFFCPU_BLOCKED = 2,   /* uninterruptible: usually I/O */
	OFFCPU_OTHER = 3,
};

/* An off-CPU interval; hdr.ts is when the thread came back. */
struct offcpu_record {
	struct record_header hdr;
	__u64 start;      /* when it left the CPU */
	__u64 stack_hash; /* the stack_record of its blocking stack */
	__u32 state;      /* enum offcpu_state */
	__u32 _pad;
};

/* Process events. comm is the thread's; exit_code is the wait(2) status
 * (code << 8, or the signal number | 0x80 if a core was dumped). */
struct event_record {
	struct record_header hdr;
	char comm[TASK_COMM_LEN];
	__s32 exit_code;  /* RECORD_EXIT */
	__s32 signal;     /* RECORD_SIGNAL */
	__s32 si_code;    /* RECORD_SIGNAL */
	__s32 target_pid; /* RECORD_SIGNAL, RECORD_OOM_KILL: the process hit */
	__u64 addr;       /* RECORD_SIGNAL: faulting address (SIGSEGV, SIGBUS...) */
	__u64 stack_hash; /* RECORD_SIGNAL raised by a fault: the crashing stack */
	char filename[64];/* RECORD_EXEC: the file executed (truncated) */
};

/* Minimal CO-RE views of kernel types; only named fields are relocated. */
struct atomic_t___fr {
	int counter;
} __attribute__((preserve_access_index));

struct signal_struct {
	struct atomic_t___fr live;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	char comm[TASK_COMM_LEN];
	struct signal_struct *signal;
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

struct kernel_siginfo {
	struct {
		int si_signo;
		int si_errno;
		int si_code;
		union {
			struct {
				void *_addr;
			} _sigfault;
		} _sifields;
	};
} __attribute__((preserve_access_index));

struct pt_regs___x86 {
	unsigned long sp;
	unsigned long ip;
} __attribute__((preserve_access_index));

#endif /* FLIGHTREC_H */
