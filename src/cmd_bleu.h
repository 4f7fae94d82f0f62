// cmd_bleu.h — `nmt bleu REF_FILE [--lowercase] [--chrf] < HYP`: corpus BLEU
// (and optionally chrF) of the hypotheses on standard input, sacreBLEU style.
#ifndef NMT_CMD_BLEU_H
#define NMT_CMD_BLEU_H

// argv[0] is "bleu". Prints the score line(s) to stdout and returns 0; `--help`
// prints the usage and returns 0. On bad usage or input returns NMT_ERR_INPUT
// (2) and records the message with err_set(); the caller prints err_msg().
int cmd_bleu(int argc, char **argv);

#endif
