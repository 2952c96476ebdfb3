/*
 * kernelheavy: spends almost all of its CPU time in the kernel, for testing
 * kernel stacks and user/kernel attribution. read_zero_loop reads /dev/zero
 * into a 1 MiB buffer: the kernel zeroes the buffer (read_zero ->
 * clear_user), user space does nothing but loop.
 *
 * Build: gcc -O1 -fno-omit-frame-pointer -g -I../common kernelheavy.c
 * Usage: kernelheavy [-duration D] [-raw] [D]
 *
 * By default the read goes through libc's read(), a frameless wrapper: a
 * frame-pointer-only unwinder sampling inside it skips read_zero_loop (the
 * return address is at [sp], not behind the frame pointer), which is a case
 * the leaf recovery must handle. -raw issues the syscall instruction inline
 * from read_zero_loop instead, so even a plain frame-pointer walk yields
 * main -> read_zero_loop.
 *
 * At exit it prints "rusage utime_us=U stime_us=S ratio=R reads=N" so a test
 * can check the user/kernel split without a profiler.
 */
#include <fcntl.h>
#include <sys/resource.h>

#include "workload.h"

#define BUF_SIZE (1 << 20)

static int raw;

static inline long raw_read(int fd, char *buf, size_t n)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(0L /* __NR_read */), "D"((long)fd), "S"(buf), "d"(n)
			 : "rcx", "r11", "memory");
	return ret;
}

/*
 * The only user-space function on the sampled stacks besides main and libc's
 * read wrapper. Returns the number of successful reads.
 */
__attribute__((noinline)) long read_zero_loop(int fd, char *buf)
{
	long reads = 0;
	while (!wl_stop) {
		long n;
		if (raw) {
			n = raw_read(fd, buf, BUF_SIZE);
			if (n < 0) {
				errno = (int)-n;
				n = -1;
			}
		} else {
			n = read(fd, buf, BUF_SIZE);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("read /dev/zero");
			exit(1);
		}
		reads++;
	}
	return reads;
}

int main(int argc, char **argv)
{
	double duration = 0;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if ((v = wl_flag(argc, argv, &i, "duration")))
			duration = wl_parse_seconds(argv[0], v);
		else if (strcmp(argv[i], "-raw") == 0 || strcmp(argv[i], "--raw") == 0)
			raw = 1;
		else if (argv[i][0] != '-')
			duration = wl_parse_seconds(argv[0], argv[i]);
		else
			wl_die(argv[0], "usage: kernelheavy [-duration D] [-raw] [D]", NULL);
	}
	int fd = open("/dev/zero", O_RDONLY);
	if (fd < 0) {
		perror("open /dev/zero");
		return 1;
	}
	char *buf = malloc(BUF_SIZE);
	if (buf == NULL) {
		perror("malloc");
		return 1;
	}
	/* Fault the buffer in now so page faults do not blur the kernel share. */
	memset(buf, 1, BUF_SIZE);

	wl_install_stop_handlers();
	wl_stop_after(duration);
	wl_ready();
	long reads = read_zero_loop(fd, buf);

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double ut = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec;
	double st = (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
	printf("rusage utime_us=%.0f stime_us=%.0f ratio=%.2f reads=%ld\n", ut, st, ut > 0 ? st / ut : 1e9, reads);
	fflush(stdout);
	return 0;
}
