// model/product.c — where the precision of each of the model's matrix
// products is decided.
#include "model/model.h"

#include <string.h>

const char *precision_name(Precision p) { return p == PRECISION_BF16 ? "bf16" : "fp32"; }

int precision_by_name(const char *name) {
    if (!strcmp(name, "fp32")) return PRECISION_FP32;
    if (!strcmp(name, "bf16")) return PRECISION_BF16;
    return -1;
}
