/* CPU time of another process (e.g. the duosign-cloud daemon under a
 * benchmark), read from /proc. Linux only. Used by tests/bench/rpc_cpu.c. */
#ifndef DUO_TEST_PROC_CPU_H
#define DUO_TEST_PROC_CPU_H

#include <sys/types.h>

typedef struct {
    /* utime + stime from /proc/PID/stat, in clock ticks (sysconf(_SC_CLK_TCK),
     * usually 100 a second); -1 if unreadable. */
    long long ticks;
    /* The sum of the run times in /proc/PID/task/N/schedstat over the
     * process's threads, in nanoseconds (a thread that has exited is no
     * longer counted); -1 if unreadable. */
    long long sched_ns;
} duo_test_proc_cpu;

/* Reads both figures of process pid into *out.
 * Returns 0, -1 if either could not be read (that field is then -1). */
int duo_test_proc_cpu_read(pid_t pid, duo_test_proc_cpu *out);

#endif
