// par.c — parallel thresholds that follow the machine's load (par.h).
#include "par.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// Idle machine: a region pays from about 10 microseconds of work. Shared
// machine: from a few milliseconds, the scale of the time slice a
// descheduled thread makes the others wait.
enum { ELEMS_IDLE = 32768, ELEMS_SHARED = 1 << 20 };
#define FMAS_IDLE 2e6
#define FMAS_SHARED 1e8

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

int par_sample(void) {
    int all = machine_running(), own = own_running();
    if (all < 0 || own < 0) return 0;
    double others = all > own ? all - own : 0;
    others_avg = 0.8 * others_avg + 0.2 * others;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef _OPENMP
    int threads = omp_get_max_threads();
#else
    int threads = 1;
#endif
    // Contended when the other runnable tasks do not fit in the cores our threads leave free.
    int shared = threads > 1 && cores > 0 && others_avg > (double)(cores - threads) + 0.5;
    par_min_elems = shared ? ELEMS_SHARED : ELEMS_IDLE;
    par_min_fmas = shared ? FMAS_SHARED : FMAS_IDLE;
    return shared;
}
