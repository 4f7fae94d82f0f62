#!/bin/sh
# plot-bleu-time.sh OUT.png LABEL=LOG.jsonl [LABEL=LOG.jsonl ...] — validation
# BLEU against wall-clock minutes for one or more training runs, one curve
# each (gnuplot). The time of a validation record is its "wall" field (the
# seconds since `nmt train` started); a log written before that field
# existed falls back to the "elapsed" of the training record of the same
# step (training time only: validation and saving not counted), and its
# label says so.
# Exit status: 0 done, 1 gnuplot or writing OUT failed, 2 bad usage, missing
# gnuplot, or a log that cannot be read or has no validation BLEU.
set -u
me=plot-bleu-time.sh
die() { echo "$me: $2" >&2; exit "$1"; }

[ $# -ge 2 ] || die 2 "usage: $me OUT.png LABEL=LOG.jsonl [LABEL=LOG.jsonl ...]"
out=$1
shift
command -v gnuplot >/dev/null 2>&1 || die 2 "needs gnuplot (apt-get install gnuplot-nox)"
case $out in */) die 2 "$out: names a directory, not a PNG file" ;; esac
[ -d "$out" ] && die 2 "$out: is a directory"

tmp=$(mktemp -d) || die 1 "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

colours="#d62728 #1f77b4 #2ca02c #9467bd #ff7f0e #8c564b"
plots=""
i=0
for arg in "$@"; do
    case $arg in *=*) ;; *) die 2 "$arg: expected LABEL=LOG.jsonl" ;; esac
    label=${arg%%=*}
    log=${arg#*=}
    { [ -f "$log" ] && [ -r "$log" ]; } || die 2 "$log: not a readable file"
    i=$((i + 1))
    # minutes and BLEU per validation record; "fallback" when a record has no wall field.
    awk -v dat="$tmp/$i.dat" -v flag="$tmp/$i.fallback" '
    function num(key,   s) {
        if (!match($0, "\"" key "\"[ \t]*:[ \t]*-?[0-9][0-9.]*([eE][-+]?[0-9]+)?")) return ""
        s = substr($0, RSTART, RLENGTH)
        sub(/^[^:]*:[ \t]*/, "", s)
        return s
    }
    {
        step = num("step")
        if (step == "") next
        if (num("loss") != "" && (e = num("elapsed")) != "") train_elapsed[step] = e
        if ((b = num("valid_bleu")) == "") next
        if ((w = num("wall")) == "") {
            if (!(step in train_elapsed)) next
            w = train_elapsed[step]
            print "1" > flag
        }
        print w / 60, b > dat
    }' "$log" || die 2 "$log: cannot read"
    [ -s "$tmp/$i.dat" ] || die 2 "$log: no validation records with valid_bleu"
    sort -n -k1,1 "$tmp/$i.dat" >"$tmp/$i.sorted" && mv "$tmp/$i.sorted" "$tmp/$i.dat"
    [ -e "$tmp/$i.fallback" ] && label="$label (training time only)"
    best=$(awk '$2 > b { b = $2; m = $1 } END { printf "best %.2f at %.1f min", b, m }' "$tmp/$i.dat")
    colour=$(echo "$colours" | cut -d' ' -f$(( (i - 1) % 6 + 1 )))
    title=$(printf '%s: %s' "$label" "$best" | sed "s/'/''/g")
    [ -n "$plots" ] && plots="$plots, "
    plots="$plots'$i.dat' using 1:2 with linespoints lw 2 pt 7 ps 0.8 lc rgb '$colour' title '$title'"
done

if echo 'set terminal' | gnuplot 2>&1 | grep -q pngcairo; then
    term="pngcairo size 1000,560 font 'sans,11' noenhanced"
else
    term="png size 1000,560 noenhanced"
fi
cat >"$tmp/plot.gp" <<EOF
set terminal $term
set output 'plot.png'
set title 'validation BLEU (greedy) against wall-clock minutes'
set xlabel 'minutes since nmt train started'
set ylabel 'BLEU'
set grid lc rgb '#dddddd'
set key bottom right box opaque
set xrange [0:*]
set yrange [0:*]
plot $plots
EOF
if ! (cd "$tmp" && gnuplot plot.gp 2>gnuplot.err) || [ ! -s "$tmp/plot.png" ]; then
    cat "$tmp/gnuplot.err" >&2
    die 1 "gnuplot failed"
fi
if ! { cp "$tmp/plot.png" "$out.tmp" 2>/dev/null && mv -f "$out.tmp" "$out"; }; then
    rm -f "$out.tmp"
    die 1 "$out: cannot write"
fi
echo "$me: wrote $out ($i run(s))"
