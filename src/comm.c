// comm.c — one training job's processes over Open MPI (built with -DNMT_MPI),
// or a single process. Nothing here does float arithmetic in MPI: data moves
// with all-to-all and all-gather, and the sums are ours, in rank order.
#include "comm.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NMT_MPI
#include <mpi.h>
#define MPI_REAL_T (sizeof(real) == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT)
#endif

int comm_built_with_mpi(void) {
#ifdef NMT_MPI
    return 1;
#else
    return 0;
#endif
}

// Started by mpirun: Open MPI sets these in every rank's environment.
static int under_mpirun(void) { return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK"); }

int comm_init(Comm *c) {
    memset(c, 0, sizeof *c);
    c->size = 1;
    if (!under_mpirun()) return NMT_OK;
#ifdef NMT_MPI
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_set(NMT_ERR_RUNTIME, "MPI_Init_thread failed");
    c->mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    return NMT_OK;
#else
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n && atoi(n) > 1)
        return err_set(NMT_ERR_INPUT, "started by mpirun with %s processes, but this nmt was built without Open MPI: "
                       "install libopenmpi-dev (scripts/install-deps.sh) and rebuild (make clean && make)", n);
    return NMT_OK;
#endif
}

void comm_finalize(Comm *c) {
#ifdef NMT_MPI
    if (c->mpi) MPI_Finalize();
#endif
    free(c->scratch);
    c->scratch = NULL;
    c->mpi = 0;
}

void comm_abort(const Comm *c, int status) {
#ifdef NMT_MPI
    if (c->mpi && c->size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
#endif
    (void)c, (void)status;
}

#ifdef NMT_MPI
// Rank k's chunk of n elements: [k * n / size, (k + 1) * n / size).
static size_t chunk_at(size_t n, int size, int k) { return (size_t)((unsigned __int128)n * (unsigned)k / (unsigned)size); }
#endif

void comm_sum_ordered(Comm *c, real *buf, size_t n) {
    if (c->size == 1) return;
#ifdef NMT_MPI
    double t0 = now_seconds();
    int P = c->size, me = c->rank;
    int *cnt = xmalloc(4 * (size_t)P * sizeof *cnt), *off = cnt + P, *rcnt = off + P, *roff = rcnt + P;
    for (int k = 0; k < P; k++) {
        off[k] = (int)chunk_at(n, P, k);
        cnt[k] = (int)(chunk_at(n, P, k + 1) - (size_t)off[k]);
    }
    size_t mine = (size_t)cnt[me];
    for (int k = 0; k < P; k++) {
        rcnt[k] = cnt[me];
        roff[k] = k * cnt[me];
    }
    if (c->scratch_n < (size_t)P * mine) {
        free(c->scratch);
        c->scratch_n = (size_t)P * mine;
        c->scratch = xmalloc(c->scratch_n * sizeof(real) + 1);
    }
    // Every rank's part of my chunk, rank k's at scratch + k * mine.
    MPI_Alltoallv(buf, cnt, off, MPI_REAL_T, c->scratch, rcnt, roff, MPI_REAL_T, MPI_COMM_WORLD);
    real *sum = buf + off[me];
    memcpy(sum, c->scratch, mine * sizeof(real));
    for (int k = 1; k < P; k++) {
        const real *part = c->scratch + (size_t)k * mine;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < mine; i++) sum[i] += part[i];
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, cnt, off, MPI_REAL_T, MPI_COMM_WORLD);
    c->reduce_bytes += 2 * (n - mine) * sizeof(real);
    c->reduce_seconds += now_seconds() - t0;
    free(cnt);
#else
    (void)buf, (void)n;
#endif
}

void comm_allgather_doubles(const Comm *c, const double *mine, size_t n, double *all) {
    if (c->size == 1) {
        memcpy(all, mine, n * sizeof *all);
        return;
    }
#ifdef NMT_MPI
    MPI_Allgather(mine, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
#endif
}

int comm_or(const Comm *c, int bits) {
#ifdef NMT_MPI
    if (c->size > 1) MPI_Allreduce(MPI_IN_PLACE, &bits, 1, MPI_INT, MPI_BOR, MPI_COMM_WORLD);
#else
    (void)c;
#endif
    return bits;
}

int comm_any(const Comm *c, int flag) { return comm_or(c, flag != 0); }

void comm_bcast_bytes(const Comm *c, char **data, size_t *len) {
    if (c->size == 1) return;
#ifdef NMT_MPI
    unsigned long long n = *len;
    MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    if (c->rank != 0) {
        free(*data);
        *data = xmalloc((size_t)n + 1);
        (*data)[n] = 0;
        *len = (size_t)n;
    }
    // In pieces: MPI counts are ints.
    for (size_t at = 0; at < (size_t)n; at += 1u << 30) {
        size_t k = (size_t)n - at < (1u << 30) ? (size_t)n - at : (1u << 30);
        MPI_Bcast(*data + at, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
#endif
}

char **comm_gather_text(const Comm *c, const char *mine) {
    enum { W = 1024 };
    char cut[W] = {0};
    snprintf(cut, W, "%s", mine ? mine : "");
    char *all = c->rank == 0 ? xcalloc((size_t)c->size, W) : NULL;
    if (c->size == 1) memcpy(all, cut, W);
#ifdef NMT_MPI
    else MPI_Gather(cut, W, MPI_CHAR, all, W, MPI_CHAR, 0, MPI_COMM_WORLD);
#endif
    if (c->rank != 0) return NULL;
    char **out = xcalloc((size_t)c->size, sizeof *out);
    for (int k = 0; k < c->size; k++) out[k] = xstrdup(all + (size_t)k * W);
    free(all);
    return out;
}

void comm_barrier(const Comm *c) {
#ifdef NMT_MPI
    if (c->size > 1) MPI_Barrier(MPI_COMM_WORLD);
#else
    (void)c;
#endif
}
