// cmd_translate.h — `nmt translate` and `nmt eval`.
#ifndef NMT_CMD_TRANSLATE_H
#define NMT_CMD_TRANSLATE_H

// argv[0] is the subcommand's name. Return an exit status; errors via err_set.
int cmd_translate(int argc, char **argv);
int cmd_eval(int argc, char **argv);

#endif
