# ckpt-lib.sh — helpers that tests/cli-checkpoint.sh, cli-finetune.sh, cli-mpi.sh and cli-serve.sh share
# (sourced; they set NMT).

# reversal_corpus DIR SEED N: N pairs of a small reversal task in DIR/s.txt and DIR/t.txt.
reversal_corpus() {
    awk -v seed="$2" -v n_pairs="$3" -v dir="$1" 'BEGIN { srand(seed); for (i = 0; i < n_pairs; i++) {
         n = 3 + int(rand() * 8); s = ""; t = ""; for (j = 0; j < n; j++) { w[j] = "w" int(rand() * 16) }
         for (j = 0; j < n; j++) { s = s (j ? " " : "") w[j]; t = t (j ? " " : "") w[n - 1 - j] }
         print s > (dir "/s.txt"); print t > (dir "/t.txt") } }'
}

# section FILE NAME: the payload bytes of a checkpoint section (to compare weights exactly).
section() {
    line=$("$NMT" info "$1" | awk -v n="$2" '$1 == n { print $3, $5 }')
    set -- "$1" $line
    tail -c +$(($2 + 1)) "$1" | head -c "$3"
}
