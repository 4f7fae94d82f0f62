// kernels/par.c — parallel thresholds that follow the machine's load (par.h).
#include "kernels/par.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// Idle machine: a region pays from about 10 microseconds of work. Shared
// machine: measured here (2 cores, one busy neighbour), splitting even
// 1e8-multiply-add products over 2 threads was slower than 1 thread (the
// descheduled thread's time slices), so then nothing is split.
enum { ELEMS_IDLE = 32768 };
#define ELEMS_SHARED ((size_t)-1)
#define FMAS_IDLE 2e6
#define FMAS_SHARED 1e300

size_t par_min_elems = ELEMS_IDLE;
double par_min_fmas = FMAS_IDLE;

static double others_avg;  // runnable tasks not ours, averaged over samples

// Tasks runnable now on the whole machine (procs_running), or -1.
static int machine_running(void) {
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "procs_running ", 14)) n = atoi(line + 14);
    if (f) fclose(f);
    return n;
}

// This process's threads that are runnable now (state R), or -1.
static int own_running(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[len] = 0;
        const char *p = strrchr(buf, ')');  // the state follows the command name
        if (p && p[1] == ' ' && p[2] == 'R') n++;
    }
    closedir(d);
    return n;
}

static int shared;  // the state, with hysteresis

int par_sample(void) {
    // The two counts are read at slightly different moments (a thread of ours
    // may wake in between): the largest of three readings.
    double others = 0;
    for (int k = 0; k < 3; k++) {
        int all = machine_running(), own = own_running();
        if (all < 0 || own < 0) return 0;
        if (all - own > others) others = all - own;
    }
    others_avg = 0.8 * others_avg + 0.2 * others;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef _OPENMP
    int threads = omp_get_max_threads();
#else
    int threads = 1;
#endif
    // Contended when the other runnable tasks do not fit in the cores our
    // threads leave free (entering above half a task, leaving below a quarter).
    double free_cores = cores > 0 ? (double)(cores - threads) : 0;
    shared = threads > 1 && others_avg > free_cores + (shared ? 0.25 : 0.5);
    par_min_elems = shared ? ELEMS_SHARED : ELEMS_IDLE;
    par_min_fmas = shared ? FMAS_SHARED : FMAS_IDLE;
    return shared;
}
