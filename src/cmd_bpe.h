// cmd_bpe.h — the `nmt bpe` subcommand: learn a BPE model, encode and decode text.
#ifndef NMT_CMD_BPE_H
#define NMT_CMD_BPE_H

// argv[0] is "bpe". Returns NMT_OK, or an NMT_ERR_* status with the message
// in err_msg() for the caller to print (NMT_ERR_INPUT for bad usage/input).
//   nmt bpe learn --vocab-size N --input FILE [--input FILE ...] --output MODEL
//   nmt bpe encode --model MODEL   (stdin lines -> space-separated token strings)
//   nmt bpe decode --model MODEL   (stdin token strings -> text lines)
int cmd_bpe(int argc, char **argv);

#endif
