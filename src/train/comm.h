// train/comm.h — the processes of one training job: Open MPI ranks when nmt runs
// under mpirun (and was built with Open MPI), else one process. Only this
// file's implementation (comm.c) calls MPI; float sums never use MPI's
// reductions, whose order is MPI's: the order here is always rank 0, 1, ...
#ifndef NMT_COMM_H
#define NMT_COMM_H

#include <stddef.h>
#include <stdint.h>
#include "common/real.h"

typedef struct SumPiece SumPiece;

typedef struct {
    int rank, size;        // 0 and 1 without mpirun
    int mpi;               // MPI is initialised (started by mpirun)
    real *sum_buf;         // the buffer being summed (comm_sum_begin .. comm_sum_end)
    SumPiece *pieces;      // its pieces in flight (stb array; their buffers are reused)
    size_t npieces;
    double reduce_seconds; // time spent in the sums (calls below), cumulative
    size_t reduce_bytes;   // bytes this rank sent in them, cumulative
} Comm;

// Joins the job when started by mpirun (Open MPI's environment says so);
// otherwise, or when built without Open MPI, rank 0 of 1. Returns NMT_OK or
// an error (MPI failed to start).
int comm_init(Comm *c);
// Leaves the job normally (every rank must call it).
void comm_finalize(Comm *c);
// Ends the whole job with this exit status (one rank's error would otherwise
// leave the others waiting in a collective).
void comm_abort(const Comm *c, int status);
// Whether nmt was built with Open MPI.
int comm_built_with_mpi(void);

// buf[0..n) becomes the element-wise sum over all ranks, added in rank order
// ((r0 + r1) + r2) + ..., the same bits on every rank whatever the timing:
// each rank owns a chunk, receives every rank's part of it (all-to-all), adds
// them in rank order, then every rank gathers every sum. Each rank sends
// 2 (size - 1) / size * n reals, as a ring all-reduce does.
void comm_sum_ordered(Comm *c, real *buf, size_t n);
// The same sum in pieces, started while the caller computes the rest (the
// backward pass hands over each layer's gradient as it is done): begin,
// then piece for each range of buf as it becomes final (ranges disjoint,
// covering buf, in the same order on every rank), progress now and then (it
// lets MPI move data and adds what has arrived), and end, which waits for
// all. The bits are comm_sum_ordered's whatever the pieces.
void comm_sum_begin(Comm *c, real *buf);
void comm_sum_piece(Comm *c, size_t off, size_t n);
void comm_sum_progress(Comm *c);
void comm_sum_end(Comm *c);
// Every rank gives n doubles; all (size * n) gets them in rank order.
void comm_allgather_doubles(const Comm *c, const double *mine, size_t n, double *all);
// Bitwise OR of bits over all ranks (every rank gets it).
int comm_or(const Comm *c, int bits);
// Rank 0's len bytes to every rank: on the others *data is replaced by a
// malloc'ed copy (their own is freed) and *len set.
void comm_bcast_bytes(const Comm *c, char **data, size_t *len);
// Rank 0 gets every rank's text (each cut to 1023 bytes), rank order; the
// others get NULL. Caller frees the array and its strings (size entries).
char **comm_gather_text(const Comm *c, const char *mine);

#endif
