#!/bin/sh
# check-rooms.sh — the rooms of src/ and the one direction of their includes
# (README "Design"): a file may include its own room's headers and those of
# rooms listed before its own, never one after it; model/internal.h is the
# model room's private header. Prints each violation; exits 1 if any.
cd "$(dirname "$0")/.." || exit 2
ROOMS="common kernels text model data optim io decode eval train bench serve cli"
rank() { i=0; for r in $ROOMS; do [ "$r" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo -1; }
bad=0
for f in src/*/*.c src/*/*.h; do
    room=${f#src/}; room=${room%%/*}
    me=$(rank "$room")
    if [ "$me" -lt 0 ]; then echo "check-rooms: $f: '$room' is not a room of src/"; bad=1; continue; fi
    for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
        case $inc in
            */*) ;;
            *) echo "check-rooms: $f: #include \"$inc\" names no room"; bad=1; continue ;;
        esac
        to=${inc%%/*}
        them=$(rank "$to")
        if [ "$them" -lt 0 ]; then echo "check-rooms: $f: #include \"$inc\": no room '$to'"; bad=1
        elif [ "$them" -gt "$me" ]; then echo "check-rooms: $f ($room) includes $inc, a higher room ($to)"; bad=1
        elif [ "$inc" = model/internal.h ] && [ "$room" != model ]; then
            echo "check-rooms: $f includes model/internal.h, the model room's private header"; bad=1
        fi
    done
done
[ "$bad" = 0 ] && echo "check-rooms: OK ($(ls src/*/*.[ch] | wc -l) files in $(echo $ROOMS | wc -w) rooms)"
exit $bad
