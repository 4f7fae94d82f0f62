// train/import.c — `nmt import`: the imported weights with a fresh run's state.
// (io/ reads the file and writes the checkpoint; the state is the trainer's.)
#include "train/import.h"
#include "io/export.h"
#include "train/state.h"

#include <stdlib.h>

int import_checkpoint(const char *in, const char *config_path, const char *out) {
    Loaded l;
    int rc = import_safetensors(in, config_path, &l);
    if (rc) return rc;
    TrainState st;
    train_state_init(&st);
    st.step = l.step;
    char *json = train_state_to_json(&st);
    rc = import_write(out, &l, json);
    free(json);
    loaded_free(&l);
    return rc;
}
