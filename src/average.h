// average.h — `nmt average`: the mean of the weights of compatible checkpoints.
#ifndef NMT_AVERAGE_H
#define NMT_AVERAGE_H

// argv: average --output OUT IN1 IN2 ...  Returns an exit status (err_set on failure).
int cmd_average(int argc, char **argv);

#endif
