// train/comm.c — one training job's processes over Open MPI (built with -DNMT_MPI),
// or a single process. Nothing here does float arithmetic in MPI: data moves
// with all-to-all and all-gather, and the sums are ours, in rank order.
#include "train/comm.h"
#include "kernels/par.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stb/stb_ds.h>

#ifdef NMT_MPI
#include <mpi.h>
#define MPI_REAL_T (sizeof(real) == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT)
// Every rank must start collectives on a communicator in one order. The
// pieces' all-to-alls start in piece order; their all-gathers start in piece
// order too, but interleave with the all-to-alls differently on each rank (a
// piece's parts arrive when they arrive): so each kind has its own communicator.
static MPI_Comm parts_comm, sums_comm;
#endif

// One piece of an ordered sum: its range, the chunk each rank owns, the
// parts of this rank's chunk received from every rank, and where it is.
struct SumPiece {
    size_t off, n;
    int *cnt, *disp, *rcnt, *rdisp; // per rank (MPI counts are ints)
    real *recv;                     // size x this rank's chunk
    size_t recv_cap;
    int phase;                      // 1: parts in flight, 2: sums being gathered, 0: done
#ifdef NMT_MPI
    MPI_Request req;
#endif
};

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
    MPI_Comm_dup(MPI_COMM_WORLD, &parts_comm);
    MPI_Comm_dup(MPI_COMM_WORLD, &sums_comm);
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
    if (c->mpi) {
        MPI_Comm_free(&parts_comm);
        MPI_Comm_free(&sums_comm);
        MPI_Finalize();
    }
#endif
    for (size_t i = 0; i < arrlenu(c->pieces); i++) {
        free(c->pieces[i].cnt);
        free(c->pieces[i].recv);
    }
    arrfree(c->pieces);
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

// This rank's chunk of the piece: rank 0's part, then + rank 1's, ... in order.
static void add_parts(Comm *c, SumPiece *p) {
    int me = c->rank;
    size_t mine = (size_t)p->cnt[me];
    real *sum = c->sum_buf + p->off + (size_t)p->disp[me];
    memcpy(sum, p->recv, mine * sizeof(real));
    for (int k = 1; k < c->size; k++) {
        const real *part = p->recv + (size_t)k * mine;
#pragma omp parallel for schedule(dynamic, 16384) if (mine > par_min_elems)
        for (size_t i = 0; i < mine; i++) sum[i] += part[i];
    }
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_REAL_T, c->sum_buf + p->off, p->cnt, p->disp, MPI_REAL_T, sums_comm,
                    &p->req);
    p->phase = 2;
}

// Moves a piece on when its current exchange is done (wait: block until it
// is). Returns 0 when it stays in the all-to-all: the later pieces must not
// start their all-gathers before this one does.
static int advance(Comm *c, SumPiece *p, int wait) {
    int done = 0;
    while (p->phase) {
        if (wait) MPI_Wait(&p->req, MPI_STATUS_IGNORE);
        else MPI_Test(&p->req, &done, MPI_STATUS_IGNORE);
        if (!wait && !done) return p->phase != 1;
        if (p->phase == 1) add_parts(c, p);
        else p->phase = 0;
    }
    return 1;
}
#endif

void comm_sum_begin(Comm *c, real *buf) {
    c->sum_buf = buf;
    c->npieces = 0;
}

void comm_sum_piece(Comm *c, size_t off, size_t n) {
    if (c->size == 1 || n == 0) return;
    // MPI counts and displacements are ints: pieces of at most 2^30 elements.
    for (; n > (size_t)1 << 30; off += (size_t)1 << 30, n -= (size_t)1 << 30) comm_sum_piece(c, off, (size_t)1 << 30);
#ifdef NMT_MPI
    double t0 = now_seconds();
    int P = c->size, me = c->rank;
    if (c->npieces == arrlenu(c->pieces)) arrpush(c->pieces, ((SumPiece){0}));
    SumPiece *p = &c->pieces[c->npieces++];
    if (!p->cnt) p->cnt = xmalloc(4 * (size_t)P * sizeof *p->cnt);
    p->disp = p->cnt + P, p->rcnt = p->disp + P, p->rdisp = p->rcnt + P;
    p->off = off;
    p->n = n;
    for (int k = 0; k < P; k++) {
        p->disp[k] = (int)chunk_at(n, P, k);
        p->cnt[k] = (int)(chunk_at(n, P, k + 1) - (size_t)p->disp[k]);
    }
    size_t mine = (size_t)p->cnt[me];
    for (int k = 0; k < P; k++) {
        p->rcnt[k] = (int)mine;
        p->rdisp[k] = k * (int)mine;
    }
    if (p->recv_cap < (size_t)P * mine) {  // pieces repeat step after step: allocated once
        free(p->recv);
        p->recv_cap = (size_t)P * mine;
        p->recv = xmalloc(p->recv_cap * sizeof(real) + 1);
    }
    // Every rank's part of my chunk, rank k's at recv + k * mine.
    MPI_Ialltoallv(c->sum_buf + off, p->cnt, p->disp, MPI_REAL_T, p->recv, p->rcnt, p->rdisp, MPI_REAL_T,
                   parts_comm, &p->req);
    p->phase = 1;
    c->reduce_bytes += 2 * (n - mine) * sizeof(real);
    c->reduce_seconds += now_seconds() - t0;
    comm_sum_progress(c);
#else
    (void)off;
#endif
}

void comm_sum_progress(Comm *c) {
#ifdef NMT_MPI
    if (c->size == 1) return;
    double t0 = now_seconds();
    for (size_t i = 0; i < c->npieces && advance(c, &c->pieces[i], 0); i++) {}
    c->reduce_seconds += now_seconds() - t0;
#else
    (void)c;
#endif
}

void comm_sum_end(Comm *c) {
#ifdef NMT_MPI
    if (c->size == 1) return;
    double t0 = now_seconds();
    for (size_t i = 0; i < c->npieces; i++) advance(c, &c->pieces[i], 1);
    c->npieces = 0;
    c->reduce_seconds += now_seconds() - t0;
#else
    (void)c;
#endif
}

void comm_sum_ordered(Comm *c, real *buf, size_t n) {
    comm_sum_begin(c, buf);
    comm_sum_piece(c, 0, n);
    comm_sum_end(c);
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
#else
    (void)data, (void)len;
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
