/* Process CPU time from /proc: see proc_cpu.h. */
#include "proc_cpu.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* utime + stime in ticks. */
static long long proc_ticks(pid_t pid) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* comm may hold spaces */
    if (!p) return -1;
    p += 2; /* field 3 */
    unsigned long long ut = 0, st = 0;
    /* fields 3..13 skipped, 14 utime, 15 stime */
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (long long)(ut + st);
}

/* The sum of the threads' run times (ns). */
static long long proc_sched_ns(pid_t pid) {
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long long sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p2[320];
        snprintf(p2, sizeof p2, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(p2, "r");
        if (!f) continue;
        long long run = 0;
        if (fscanf(f, "%lld", &run) == 1) sum += run;
        fclose(f);
    }
    closedir(d);
    return sum;
}

int duo_test_proc_cpu_read(pid_t pid, duo_test_proc_cpu *out) {
    out->ticks = proc_ticks(pid);
    out->sched_ns = proc_sched_ns(pid);
    return out->ticks >= 0 && out->sched_ns >= 0 ? 0 : -1;
}
