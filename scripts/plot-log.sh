#!/bin/sh
# plot-log.sh LOG.jsonl OUT.png — draws a training log (nmt's JSON lines) with
# gnuplot: training and validation loss against step; validation BLEU when the
# log has "valid_bleu" records; the learning rate against step.
# Exit status: 0 done, 1 gnuplot or writing OUT failed, 2 bad usage, missing
# gnuplot, a missing or empty log, or a log with no loss records.
set -u
me=plot-log.sh
die() { echo "$me: $2" >&2; exit "$1"; }

[ $# -eq 2 ] || die 2 "usage: $me LOG.jsonl OUT.png"
log=$1
out=$2
command -v gnuplot >/dev/null 2>&1 || die 2 "needs gnuplot (apt-get install gnuplot-nox)"
[ -e "$log" ] || die 2 "$log: no such file"
{ [ -f "$log" ] && [ -r "$log" ]; } || die 2 "$log: not a readable file"
[ -s "$log" ] || die 2 "$log: empty log"
case $out in */) die 2 "$out: names a directory, not a PNG file" ;; esac
[ -d "$out" ] && die 2 "$out: is a directory"

tmp=$(mktemp -d) || die 1 "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# One pass over the log: "step value" lines per series. A field is picked out
# by its exact quoted key, so "loss" never matches "valid_loss". Lines that
# are not records (or fields that are not numbers, e.g. nan) are skipped.
awk -v dir="$tmp" '
function num(key,   s) {
    if (!match($0, "\"" key "\"[ \t]*:[ \t]*-?[0-9][0-9.]*([eE][-+]?[0-9]+)?")) return ""
    s = substr($0, RSTART, RLENGTH)
    sub(/^[^:]*:[ \t]*/, "", s)
    return s
}
{
    step = num("step")
    if (step == "") next
    if ((v = num("loss")) != "")       print step, v > (dir "/train.dat")
    if ((v = num("valid_loss")) != "") print step, v > (dir "/valid.dat")
    if ((v = num("valid_bleu")) != "") print step, v > (dir "/bleu.dat")
    if ((v = num("lr")) != "")         print step, v > (dir "/lr.dat")
}' "$log" || die 2 "$log: cannot read"

# Sorted by step, so a log written across resumes still draws left to right.
for f in train valid bleu lr; do
    touch "$tmp/$f.dat"
    sort -n -s -k1,1 "$tmp/$f.dat" >"$tmp/$f.sorted" && mv "$tmp/$f.sorted" "$tmp/$f.dat"
done
count() { wc -l <"$tmp/$1.dat" | tr -d ' '; }
n_train=$(count train); n_valid=$(count valid); n_bleu=$(count bleu); n_lr=$(count lr)
[ $((n_train + n_valid)) -gt 0 ] || die 2 "$log: no records with \"step\" and \"loss\" or \"valid_loss\""
[ "$n_valid" -gt 0 ] || echo "$me: note: $log has no validation records yet" >&2

# Figures for the headline: last training record, best validation loss and BLEU.
summary=$(awk -v t="$tmp" 'BEGIN {
    while ((getline l < (t "/train.dat")) > 0) { split(l, a, " "); ls = a[1]; lv = a[2] }
    while ((getline l < (t "/valid.dat")) > 0) { split(l, a, " "); if (vb == "" || a[2] + 0 < vb + 0) { vb = a[2]; vs = a[1] } }
    while ((getline l < (t "/bleu.dat")) > 0)  { split(l, a, " "); if (bb == "" || a[2] + 0 > bb + 0) { bb = a[2]; bs = a[1] } }
    s = ""
    if (ls != "") s = sprintf("step %d: loss %.3f", ls, lv)
    if (vb != "") s = s sprintf("%sbest valid loss %.3f (step %d)", s == "" ? "" : "   ", vb, vs)
    if (bb != "") s = s sprintf("   best BLEU %.2f (step %d)", bb, bs)
    print s
}')
# gnuplot single-quoted strings: a quote is written twice.
gp_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }
headline=$(gp_quote "$(basename "$log")   $summary")
# A little room past the last step so its point is drawn whole.
xmax=$(cat "$tmp"/*.dat | awk '$1 > m { m = $1 } END { print (m > 0 ? m * 1.02 : 1) }')

# Panel heights in pixels: the loss gets the most room, the others less.
head_px=50; loss_px=380; small_px=260
height=$((head_px + loss_px))
[ "$n_bleu" -gt 0 ] && height=$((height + small_px))
[ "$n_lr" -gt 0 ] && height=$((height + small_px))
if echo 'set terminal' | gnuplot 2>&1 | grep -q pngcairo; then
    term="pngcairo size 1000,$height font 'sans,11' noenhanced"
else
    term="png size 1000,$height noenhanced"
fi

{
    cat <<EOF
set terminal $term
set output 'plot.png'
set datafile separator ' '
set multiplot title $headline font ',13'
# Fixed side margins line the panels' step axes up; top and bottom are automatic.
set lmargin 12
set rmargin 4
set grid lc rgb '#dddddd'
set border lc rgb '#555555'
set key top right box opaque
set xrange [0:$xmax]
set xlabel 'step'
set format x '%.0f'
set size 1, $loss_px.0 / $height
set origin 0, $((height - head_px - loss_px)).0 / $height
set title 'loss (label-smoothed cross-entropy)'
set ylabel 'loss'
EOF
    # Few records: mark each one (a single record drawn as a line is invisible).
    dense() { if [ "$1" -lt 40 ]; then echo "linespoints pt 7 ps 0.5"; else echo lines; fi; }
    plots=""
    [ "$n_train" -gt 0 ] && plots="'train.dat' using 1:2 with $(dense "$n_train") lw 1.5 lc rgb '#1f77b4' title 'training'"
    if [ "$n_valid" -gt 0 ]; then
        [ -n "$plots" ] && plots="$plots, "
        plots="$plots'valid.dat' using 1:2 with linespoints lw 2 pt 7 ps 0.8 lc rgb '#d62728' title 'validation'"
    fi
    echo "plot $plots"
    # The smaller panels stack downwards from under the loss panel.
    y=$((height - head_px - loss_px))
    echo "set size 1, $small_px.0 / $height"
    echo "unset key"
    if [ "$n_bleu" -gt 0 ]; then
        y=$((y - small_px))
        cat <<EOF
set origin 0, $y.0 / $height
set title 'validation BLEU'
set ylabel 'BLEU'
set yrange [0:*]
plot 'bleu.dat' using 1:2 with linespoints lw 2 pt 7 ps 0.8 lc rgb '#2ca02c'
set yrange [*:*]
EOF
    fi
    if [ "$n_lr" -gt 0 ]; then
        y=$((y - small_px))
        cat <<EOF
set origin 0, $y.0 / $height
set title 'learning rate'
set ylabel 'lr'
set format y '%.1e'
set yrange [0:*]
plot 'lr.dat' using 1:2 with $(dense "$n_lr") lw 1.5 lc rgb '#9467bd'
EOF
    fi
    echo 'unset multiplot'
} >"$tmp/plot.gp"
if ! (cd "$tmp" && gnuplot plot.gp 2>gnuplot.err) || [ ! -s "$tmp/plot.png" ]; then
    cat "$tmp/gnuplot.err" >&2
    die 1 "gnuplot failed"
fi
# Copied beside OUT then renamed: OUT is never left half-written.
if ! { cp "$tmp/plot.png" "$out.tmp" 2>/dev/null && mv -f "$out.tmp" "$out"; }; then
    rm -f "$out.tmp"
    die 1 "$out: cannot write"
fi
echo "$me: wrote $out ($n_train training, $n_valid validation, $n_bleu BLEU records)"
