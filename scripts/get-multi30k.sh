#!/bin/sh
# get-multi30k.sh [DIR] — puts the Multi30k De-En corpus under data/multi30k/
# (train, val, test_2016_flickr; .de and .en, one sentence per line).
# With DIR: copies it from a local directory holding the files (gzipped or
# not), e.g. ../shared/data/multi30k. Without: downloads the raw files from
# the dataset's public repository (needs curl or wget and a network).
set -e
OUT=data/multi30k
FILES="train val test_2016_flickr"
URL=https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw
mkdir -p "$OUT"
for f in $FILES; do
    for l in de en; do
        dst="$OUT/$f.$l"
        if [ -n "${1:-}" ]; then
            if [ -f "$1/$f.$l.gz" ]; then gzip -dc "$1/$f.$l.gz" >"$dst.tmp"
            elif [ -f "$1/$f.$l" ]; then cp "$1/$f.$l" "$dst.tmp"
            else echo "get-multi30k: $1 has neither $f.$l.gz nor $f.$l" >&2; exit 2; fi
        else
            if command -v curl >/dev/null; then curl -fsSL "$URL/$f.$l.gz" | gzip -dc >"$dst.tmp"
            elif command -v wget >/dev/null; then wget -qO- "$URL/$f.$l.gz" | gzip -dc >"$dst.tmp"
            else echo "get-multi30k: needs curl or wget (or give a local directory)" >&2; exit 2; fi
        fi
        mv "$dst.tmp" "$dst"
    done
    printf '%s: %s pairs\n' "$f" "$(wc -l <"$OUT/$f.de")"
done
