// kernels/par.h — when work is worth a parallel region. On a machine shared with
// other busy processes, a thread that the OS has descheduled holds every
// region's closing barrier up for a time slice (milliseconds), so regions
// then cost more than they save: par_sample notices runnable processes that
// are not ours and raises the thresholds so that no work is split (measured:
// even large products lost). Which work runs in parallel never changes the
// arithmetic (every element is computed by one thread in one order), so the
// bits stay the same.
#ifndef NMT_PAR_H
#define NMT_PAR_H

#include <stddef.h>

extern size_t par_min_elems;  // element loops over fewer elements run serially
extern double par_min_fmas;   // matrix products with fewer multiply-adds likewise

// Looks at the machine (Linux: runnable tasks in /proc/stat, minus this
// process's) and sets the thresholds; cheap, for the start of each step.
// Returns 1 when other processes compete for the cores.
int par_sample(void);

#endif
