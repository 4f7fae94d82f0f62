// train/average.h — the mean of the weights of compatible checkpoints (`nmt average`).
#ifndef NMT_AVERAGE_H
#define NMT_AVERAGE_H

// Writes to `out` the element-wise mean of the weights of in[0..nin) (nin >= 1),
// which must share the model shape and the vocabulary (NMT_ERR_INPUT naming
// the odd one out otherwise). The output holds in[0]'s config and tokenizer,
// the largest step and no optimizer state. Returns NMT_OK or an error (err_set).
int checkpoint_average(const char *out, const char *const *in, int nin);

#endif
