#!/bin/sh
# check-function-length.sh [MAX] — no function in src/ longer than MAX lines
# (default 80), signature to closing brace. Functions are written as this
# project writes them: the signature starts in column 0 and the body ends with
# a "}" alone in column 0. Prints each one over; exits 1 if any.
cd "$(dirname "$0")/.." || exit 2
max=${1:-80}
awk -v max="$max" '
    FNR == 1 { start = 0; sig = "" }
    start == 0 && /^[A-Za-z_]/ && !/^(typedef|struct|enum|union)[ {]/ && !/;[ \t]*$/ { start = FNR; sig = $0 }
    start && /^}[ \t]*$/ {
        n = FNR - start + 1
        if (n > max && sig ~ /\(/) { printf "%s:%d: %d lines: %s\n", FILENAME, start, n, sig; over++ }
        start = 0
    }
    start && /^}.*;/ { start = 0 }
    END { exit over > 0 }
' src/*/*.c src/*/*.h && echo "check-function-length: OK (no function in src/ over $max lines)"
