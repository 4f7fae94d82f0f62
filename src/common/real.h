// common/real.h — the floating-point type of the whole program.
// Production builds use float; the gradient-check test binary is built with
// -DNMT_DOUBLE so that finite differences are computed in double precision.
#ifndef NMT_REAL_H
#define NMT_REAL_H

#ifdef NMT_DOUBLE
typedef double real;
#define REAL_NAME "double"
#else
typedef float real;
#define REAL_NAME "float"
#endif

#endif
