#!/bin/bash
# cli-serve.sh — nmt serve on loopback: every endpoint and error status
# (trailing bytes, NUL, the limits on sentences and work, Content-Type, CORS
# only for --cors-origin), the same translations as `nmt translate` for 200
# sentences sent by 8 concurrent clients, a short bounded load test with zero
# errors, a silent and a trickling client closed after --timeout, a per-address
# connection limit, a request past --request-timeout and one whose client has
# gone dropped undecoded, the page driven by headless Chromium, SIGTERM
# draining a request in flight, and past --stop-timeout answering 503 while
# new clients are refused. LibreTranslate's API: two models in one server
# (--model), each answering as its own `nmt translate`; /languages, /detect,
# /frontend/settings; JSON, url-encoded and multipart bodies giving the same
# answer; "auto"; paragraphs and html; the errors LibreTranslate gives; two
# published client libraries (npm) unchanged; the page offering the pairs;
# API keys (403) and the request limit (429). Everything it starts, it
# stops. Run by `make test`.
set -u
NMT=${NMT:-./nmt}
. "$(dirname "$0")/ckpt-lib.sh"
T=$(mktemp -d /tmp/nmt-serve-XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# A small reversal model (a few seconds).
reversal_corpus "$T" 11 600
cat >"$T/cfg.json" <<JSON
{"model": {"d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1},
 "data": {"train_src": "$T/s.txt", "train_tgt": "$T/t.txt"},
 "train": {"max_steps": 150, "batch_tokens": 400, "log_every": 50, "warmup_steps": 50, "lr_schedule": "inverse_sqrt",
           "lr": 0.003, "checkpoint_dir": "$T/ck"}}
JSON
OMP_NUM_THREADS=2 "$NMT" train --config "$T/cfg.json" --quiet >/dev/null 2>&1 || bad "training the model"
CK="$T/ck/last.ckpt"

# start_server OUT [options]: starts nmt serve with the reversal model on a free port; sets PID and URL.
# serve_models OUT [options]: the same with the models the options name.
start_server() {
    local out=$1
    shift
    serve_models "$out" --checkpoint "$CK" "$@"
}
serve_models() {
    local out=$1
    shift
    "$NMT" serve --port 0 "$@" >"$out" 2>"$out.err" &
    PID=$!
    PIDS="$PIDS $PID"
    for _ in $(seq 100); do
        grep -q "listening on" "$out" 2>/dev/null && break
        sleep 0.1
    done
    URL=$(sed -n 's/^nmt serve: listening on \(http:[^ ]*\) .*/\1/p' "$out")
    [ -n "$URL" ] || { bad "the server did not start: $(cat "$out.err")"; return 1; }
}

# status METHOD PATH [curl args]: prints the HTTP status; the body goes to $T/body.
status() {
    local m=$1 p=$2
    shift 2
    curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$@" "$URL$p"
}
expect() {  # expect STATUS NEEDLE METHOD PATH [curl args]
    local want=$1 needle=$2
    shift 2
    got=$(status "$@")
    if [ "$got" = "$want" ] && grep -qF -- "$needle" "$T/body"; then ok
    else bad "$1 $2 -> $got (want $want), body: $(head -c 300 "$T/body") (want '$needle')"; fi
}
json() { printf '%s' "$1" >"$T/req"; echo "--data-binary @$T/req -H Content-Type:application/json"; }

start_server "$T/srv" --max-chars 300 --timeout 2 --beam 4 || exit 1
echo "cli-serve: $URL"

# ---- endpoints
expect 200 '{"status":"ok"}' GET /health
expect 200 '"d_model":32' GET /info
expect 200 '"max_chars":300,"max_sentences":256,"max_work":4096,"request_timeout_s":60,' GET /info
expect 200 '<title>nmt' GET /
expect 200 '"translatedText":"' POST /translate $(json '{"q": "w1 w2 w3"}')
expect 200 '"alternatives":[' POST /translate $(json '{"q": ["w1 w2 w3", "w4 w5"], "nbest": 2}')
expect 200 '"attention":{"source":["w1","w2","w3","</s>"]' POST /translate $(json '{"q": "w1 w2 w3", "attention": true}')
expect 200 '[[{"src":"w1 w2 w3","tgt":"' POST /translate $(json '[{"src": "w1 w2 w3", "id": 100}]')
expect 200 '"translatedText":[]' POST /translate $(json '{"q": []}')
# ---- errors
expect 400 'malformed JSON' POST /translate $(json '{"q": ')
printf '{"q": "w1 \377"}' >"$T/req8"
expect 400 'not valid UTF-8' POST /translate --data-binary @"$T/req8" -H Content-Type:application/json
expect 400 '\"q\" must be a string or an array' POST /translate $(json '{"q": 3}')
expect 400 'Invalid request: missing q parameter' POST /translate $(json '{"text": "w1"}')
expect 400 '\"beam\" must be a whole number from 1 to 256' POST /translate $(json '{"q": "w1", "beam": 0}')
expect 400 'q[1] must be a string' POST /translate $(json '{"q": ["w1", 2]}')
expect 400 'a line break; send one sentence per string when asking for attention' POST /translate \
    $(json '{"q": "w1\nw2", "attention": true}')
expect 400 'request[0]: a line break' POST /translate $(json '[{"src": "w1\nw2"}]')
expect 400 'request[0] must be an object with \"src\"' POST /translate $(json '[3]')
long=$(printf 'w1 %.0s' $(seq 120))
expect 413 'more than this server' POST /translate $(json "{\"q\": \"$long\"}")
# sentences are counted, empty ones too (default --max-sentences 256), and sentences x beam x n-best (--max-work 4096)
empties=$(printf '"",%.0s' $(seq 256))
expect 200 '"translatedText":["",' POST /translate $(json "{\"q\": [${empties%,}]}")
expect 413 '257 sentences, more than this server' POST /translate $(json "{\"q\": [$empties \"\"]}")
expect 413 '1 sentences x beam 256 x n-best 256 = 65536, more than this server' POST /translate \
    $(json '{"q": "", "nbest": 256}')
expect 200 '"alternatives":[' POST /translate $(json '{"q": ["w1", "w2"], "beam": 64, "nbest": 32}')
expect 413 '(--max-work)' POST /translate $(json '{"q": ["w1", "w2"], "beam": 65, "nbest": 32}')
head -c 4000000 /dev/zero | tr '\0' 'a' >"$T/huge"
expect 413 'the body is larger than' POST /translate --data-binary @"$T/huge"
expect 405 'use POST' GET /translate
if grep -qi '^Allow: POST' <(curl -s -i "$URL/translate"); then ok; else bad "405 without Allow: POST"; fi
expect 405 'use GET' POST /health --data x
expect 404 'no /nope here' GET /nope
# ---- a local server is not every web page's: a JSON Content-Type, no cross-origin reading, no paths
printf '{"q": "w1"}' >"$T/reqplain"
expect 415 "multipart/form-data (this request's Content-Type: text/plain)" POST /translate --data-binary @"$T/reqplain" \
    -H Content-Type:text/plain
expect 415 "(this request's Content-Type: none)" POST /translate --data-binary @"$T/reqplain" -H Content-Type:
expect 400 'malformed form' POST /translate --data-binary @"$T/reqplain"
expect 200 '"translatedText":"' POST /translate --data-binary @"$T/reqplain" -H 'Content-Type: application/JSON; charset=utf-8'
expect 403 'origin http://evil.example may not use this server (--cors-origin)' OPTIONS /translate \
    -H 'Origin: http://evil.example'
curl -s -i -H 'Origin: http://evil.example' "$URL/info" >"$T/hdr"
if grep -q '"checkpoint":"last.ckpt"' "$T/hdr" && ! grep -qi 'Access-Control' "$T/hdr"; then ok
else bad "/info for another origin: $(head -c 600 "$T/hdr")"; fi
# DNS rebinding: a page whose name resolved to 127.0.0.1 sends its own name as Host
expect 403 'the Host header does not name this server' GET /info -H 'Host: evil.example:8080'
expect 403 'the Host header does not name this server' POST /translate $(json '{"q": "w1"}') -H 'Host: rebind.evil.example'
expect 200 '{"status":"ok"}' GET /health -H 'Host: LOCALHOST'
# ---- the whole body is one JSON value; no NUL anywhere; a path is not cut at %00
expect 400 'more after the value (byte 11)' POST /translate $(json '{"q":"w1"} GARBAGE')
expect 400 'more after the value' POST /translate $(json '{"q":"w1"}{"q":"w2"}')
expect 200 '"translatedText":"' POST /translate $(json "$(printf '{"q":"w1"} \r\n\t ')")
expect 400 'a NUL character (\\u0000)' POST /translate $(json '{"q":"w1\u0000w2"}')
expect 200 '"translatedText":"' POST /translate $(json '{"q":"w1\\u0000w2"}')
printf '{"q":"w1\000w2"}' >"$T/reqnul"
expect 400 'a NUL byte in the body (byte 8)' POST /translate --data-binary @"$T/reqnul" -H Content-Type:application/json
expect 404 'no /health%00junk here' GET /health%00junk
expect 404 'no /info%00 here' GET /info%00

# ---- 200 sentences from 8 concurrent clients: exactly translate's output
head -200 "$T/s.txt" >"$T/src200"
"$NMT" translate --checkpoint "$CK" --beam 4 <"$T/src200" >"$T/want200" 2>/dev/null
mkdir "$T/out"
seq 200 | xargs -P 8 -I{} sh -c 'line=$(sed -n "{}p" "$1"); printf "{\"q\": \"%s\"}" "$line" |
    curl -s -H Content-Type:application/json --data-binary @- "$2/translate" | sed -n "s/.*\"translatedText\":\"\([^\"]*\)\".*/\1/p" >"$3/{}"' \
    sh "$T/src200" "$URL" "$T/out"
for i in $(seq 200); do cat "$T/out/$i"; echo; done >"$T/got200"
if [ "$(wc -l <"$T/got200")" -eq 200 ] && cmp -s "$T/got200" "$T/want200"; then ok
else bad "concurrent translations differ from nmt translate: $(diff "$T/got200" "$T/want200" | head -4)"; fi
decoded=$(curl -s "$URL/info" | sed -n 's/.*"batches_decoded":\([0-9]*\).*/\1/p')
echo "cli-serve: 200 concurrent sentences identical to nmt translate ($decoded batches decoded so far)"

# ---- a bounded load test: 64 keep-alive clients over 4 addresses, no errors
if CLIENTS=64 SOURCES=4 DURATION=3 bash "$(dirname "$0")/../scripts/bench-serve.sh" "$URL" "$T/src200" >"$T/load" 2>&1; then ok
else bad "load test: $(cat "$T/load")"; fi
cat "$T/load"

# ---- a slow client: half a request line, then silence; the server closes it after --timeout 2
exec 3<>"/dev/tcp/127.0.0.1/${URL##*:}"
printf 'POST /translate HTTP/1.1\r\nHost: x\r\n' >&3
t0=$(date +%s)
if timeout 10 cat <&3 >/dev/null; then t1=$(date +%s)
    if [ $((t1 - t0)) -le 6 ]; then ok; else bad "a slow client was held $((t1 - t0)) s"; fi
else bad "a slow client was never closed"; fi
exec 3>&- 3<&-
# ---- a client trickling a byte every 0.5 s: its request is late all the same (--timeout 2 is for the whole
# request, not for its silences): 408, then closed
exec 3<>"/dev/tcp/127.0.0.1/${URL##*:}"
(for c in P O S T . / t r a n s l a t e .; do printf '%s' "$c"; sleep 0.5; done >&3) 2>/dev/null &
tpid=$!
t0=$(date +%s%N)
timeout 12 cat <&3 >"$T/trickle"
t1=$(date +%s%N)
kill "$tpid" 2>/dev/null
wait "$tpid" 2>/dev/null
exec 3>&- 3<&-
if [ $(( (t1 - t0) / 1000000 )) -le 3500 ] && grep -q '^HTTP/1.1 408' "$T/trickle" &&
   grep -qF 'the request took more than 2 s to arrive (--timeout)' "$T/trickle"; then ok
else bad "a trickling client held $(( (t1 - t0) / 1000000 )) ms: $(cat "$T/trickle")"; fi
expect 200 '{"status":"ok"}' GET /health

# ---- the page, in headless Chromium: it translates what /?q= gives it and draws the heatmap
if command -v chromium >/dev/null 2>&1; then
    timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$T/chromium" --dump-dom \
        --virtual-time-budget=10000 "$URL/?q=w1%20w2%20w3" >"$T/dom" 2>/dev/null
    want=$(printf 'w1 w2 w3\n' | "$NMT" translate --checkpoint "$CK" --beam 4 2>/dev/null)
    if grep -qF "<div id=\"translation\">$want</div>" "$T/dom" && grep -q '<table class="heat">' "$T/dom"; then ok
    else bad "the page in chromium: $(grep -o '<div id="\(translation\|status\)"[^<]*</div>' "$T/dom")"; fi
else
    bad "chromium is not installed (scripts/install-deps.sh installs it)"
fi

kill -TERM "$PID"
wait "$PID"
rc=$?
if [ $rc -eq 0 ] && grep -q "finishing the requests in flight" "$T/srv.err"; then ok
else bad "SIGTERM (idle): exit $rc, $(cat "$T/srv.err")"; fi

# ---- a port in use; then SIGTERM with a request in flight: it is answered, then the server exits 0.
# The second server waits 1 s for company (--window-ms 1000), so a lone request is
# surely still in flight when the signal comes 0.5 s after it was sent.
start_server "$T/srv2" --window-ms 1000 --cors-origin http://ok.example --cors-origin http://also.example \
    --allowed-host mt.example.org --allowed-host 127.0.0.1 || exit 1
port=${URL##*:}
# --allowed-host names replace the loopback default
expect 200 '{"status":"ok"}' GET /health -H 'Host: mt.example.org:443'
expect 403 'the Host header does not name this server' GET /health -H 'Host: localhost'
# cross-origin reading for the origins --cors-origin names, and only them
curl -s -i -H 'Origin: http://also.example' "$URL/health" >"$T/hdr"
if grep -qi '^Access-Control-Allow-Origin: http://also.example' "$T/hdr" && grep -qi '^Vary: Origin' "$T/hdr"; then ok
else bad "an allowed origin: $(cat "$T/hdr")"; fi
curl -s -i -H 'Origin: http://evil.example' "$URL/health" >"$T/hdr"
if grep -q '"status":"ok"' "$T/hdr" && ! grep -qi '^Access-Control-Allow-Origin' "$T/hdr"; then ok
else bad "another origin: $(cat "$T/hdr")"; fi
curl -s -i -X OPTIONS -H 'Origin: http://ok.example' -H 'Access-Control-Request-Method: POST' \
    -H 'Access-Control-Request-Headers: content-type' "$URL/translate" >"$T/hdr"
if grep -q '^HTTP/1.1 204' "$T/hdr" && grep -qi '^Access-Control-Allow-Origin: http://ok.example' "$T/hdr" &&
   grep -qi '^Access-Control-Allow-Headers: Content-Type' "$T/hdr" && grep -qi '^Access-Control-Allow-Methods:.*POST' "$T/hdr"
then ok; else bad "a preflight from an allowed origin: $(cat "$T/hdr")"; fi
expect 403 'may not use this server' OPTIONS /translate -H 'Origin: http://evil.example'

"$NMT" serve --checkpoint "$CK" --port "$port" >/dev/null 2>"$T/err"
if [ $? -eq 1 ] && grep -q "cannot listen on 127.0.0.1 port $port: the port is in use" "$T/err"; then ok
else bad "port in use: $(cat "$T/err")"; fi
want=$(printf 'w1 w2 w3\n' | "$NMT" translate --checkpoint "$CK" --beam 4 2>/dev/null)
curl -s -o "$T/bigout" -w '%{http_code} %{time_total}' -H Content-Type:application/json --data-binary '{"q": "w1 w2 w3"}' "$URL/translate" >"$T/bigstatus" &
cpid=$!
sleep 0.5
kill -TERM "$PID"
wait "$cpid"
wait "$PID"
rc=$?
if [ "$(cut -d' ' -f1 "$T/bigstatus")" = 200 ] && awk '{ exit !($2 > 0.9) }' "$T/bigstatus" &&
   grep -qF "\"translatedText\":\"$want\"" "$T/bigout" && [ $rc -eq 0 ]; then ok
else bad "SIGTERM in flight: $(cat "$T/bigstatus"), exit $rc, $(head -c 200 "$T/bigout")"; fi
grep -q "finishing the requests in flight" "$T/srv2.err" && grep -q "stopped; 1 sentences decoded" "$T/srv2.err" ||
    bad "SIGTERM in flight: $(cat "$T/srv2.err")"

# ---- a deadline per request, and a client gone: the request's work is dropped, not done.
# The server waits 1 s for company (--window-ms 1000); the deadline is 0.6 s.
start_server "$T/srv3" --window-ms 1000 --request-timeout 0.6 --max-per-address 2 || exit 1
# two connections from 127.0.0.1 (--max-per-address 2): a third from there is closed unanswered, one from 127.0.0.2 served
exec 4<>"/dev/tcp/127.0.0.1/${URL##*:}" 5<>"/dev/tcp/127.0.0.1/${URL##*:}"
sleep 0.2
got=$(status GET /health)
if [ "$got" = 000 ]; then ok; else bad "a third connection from one address: $got"; fi
expect 200 '{"status":"ok"}' GET /health --interface 127.0.0.2
exec 4>&- 5>&-
sleep 0.3
expect 200 '{"status":"ok"}' GET /health
got=$(curl -s -o "$T/body" -w '%{http_code} %{time_total}' -H Content-Type:application/json \
    --data-binary '{"q": "w1 w2"}' "$URL/translate")
if [ "${got% *}" = 503 ] && awk -v t="${got#* }" 'BEGIN { exit !(t < 0.95) }' &&
   grep -qF 'more than 0.6 s (--request-timeout); its decoding was stopped' "$T/body"; then ok
else bad "a request past its deadline: $got $(cat "$T/body")"; fi
curl -s -m 0.2 -H Content-Type:application/json --data-binary '{"q": ["w1", "w2", "w3"]}' "$URL/translate" >/dev/null
sleep 0.4
if grep -q 'a request of 1 sentences cancelled: past its deadline (0 decoded)' "$T/srv3.err" &&
   grep -q 'a request of 3 sentences cancelled: the client has gone (0 decoded)' "$T/srv3.err"; then ok
else bad "cancellations: $(cat "$T/srv3.err")"; fi
expect 200 '"sentences_decoded":0,' GET /info
kill -TERM "$PID"
wait "$PID" || bad "SIGTERM (srv3): exit $?"

# ---- SIGTERM with a request in flight longer than --stop-timeout 0.3: new clients are refused at once (the
# listening socket is closed), the request is answered 503, and the server exits 0 soon after.
start_server "$T/srv4" --window-ms 1000 --stop-timeout 0.3 || exit 1
curl -s -m 5 -o "$T/stopout" -w '%{http_code}' -H Content-Type:application/json --data-binary '{"q": "w1"}' \
    "$URL/translate" >"$T/stopstatus" &
cpid=$!
sleep 0.2
t0=$(date +%s%N)
kill -TERM "$PID"
sleep 0.1
curl -s -m 2 -o /dev/null "$URL/health"
refused=$?
wait "$cpid"
wait "$PID"
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$refused" = 7 ]; then ok; else bad "a new client while stopping: curl exit $refused (want 7, refused)"; fi
if [ "$(cat "$T/stopstatus")" = 503 ] && grep -qF 'the server is stopping' "$T/stopout" && [ $rc -eq 0 ] &&
   [ "$ms" -lt 1500 ]; then ok
else bad "SIGTERM past --stop-timeout: $(cat "$T/stopstatus") $(cat "$T/stopout"), exit $rc after $ms ms"; fi

# ---- LibreTranslate's API: two models in one server (de-en, cs-en), each answering as its own `nmt translate`
# word_corpus DIR SEED "SOURCE WORDS" "TARGET WORDS": 600 word-for-word pairs (data.src_lang/tgt_lang set by the config)
word_corpus() {
    mkdir -p "$1"
    awk -v seed="$2" -v dir="$1" -v sw="$3" -v tw="$4" 'BEGIN { srand(seed); ns = split(sw, S, " "); split(tw, W, " ")
        for (i = 0; i < 600; i++) { n = 3 + int(rand() * 6); s = ""; t = ""
            for (j = 0; j < n; j++) { k = 1 + int(rand() * ns); s = s (j ? " " : "") S[k]; t = t (j ? " " : "") W[k] }
            print s > (dir "/s.txt"); print t > (dir "/t.txt") } }'
}
word_model() {  # word_model DIR SRC TGT
    cat >"$1/cfg.json" <<JSON
{"model": {"d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1},
 "data": {"train_src": "$1/s.txt", "train_tgt": "$1/t.txt", "src_lang": "$2", "tgt_lang": "$3"},
 "train": {"max_steps": 300, "batch_tokens": 400, "log_every": 100, "warmup_steps": 50, "lr": 0.003, "checkpoint_dir": "$1/ck"}}
JSON
    OMP_NUM_THREADS=2 "$NMT" train --config "$1/cfg.json" --quiet >/dev/null 2>&1 || bad "training $1"
}
word_corpus "$T/de" 3 "der die das und ist nicht ein eine haus katze hund mann frau kind wasser strasse gross klein schön" \
    "the the the and is not a a house cat dog man woman child water street big small beautiful"
word_corpus "$T/cs" 5 "je a v na se že to s z do muž žena dítě voda ulice pes kočka dům velký malý" \
    "is and in on self that it with from to man woman child water street dog cat house big small"
word_model "$T/de" de en
word_model "$T/cs" cs en
DE="$T/de/ck/last.ckpt" CS="$T/cs/ck/last.ckpt"
serve_models "$T/srv5" --model "de-en=$DE" --model "cs-en=$CS" --max-chars 2000 || exit 1
desent="die katze ist nicht gross" cssent="pes je velký a malý"
dewant=$(printf '%s\n' "$desent" | "$NMT" translate --checkpoint "$DE" --beam 4 2>/dev/null)
cswant=$(printf '%s\n' "$cssent" | "$NMT" translate --checkpoint "$CS" --beam 4 2>/dev/null)
if [ -n "$dewant" ] && [ -n "$cswant" ] && [ "$dewant" != "$cswant" ]; then ok
else bad "the two word models translate too little to tell apart: '$dewant' '$cswant'"; fi
expect 200 '[{"code":"de","name":"German","targets":["en"]},{"code":"cs","name":"Czech","targets":["en"]},{"code":"en","name":"English","targets":[]}]' GET /languages
expect 200 '"targets":["en"]' POST /languages
expect 200 '"source":"cs","target":"en"}]' GET /info
expect 200 '{"charLimit":2000,' GET /frontend/settings
expect 200 "{\"translatedText\":\"$dewant\"," POST /translate $(json "{\"q\": \"$desent\", \"source\": \"de\", \"target\": \"en\"}")
cp "$T/body" "$T/json-answer"
expect 200 "{\"translatedText\":\"$cswant\"," POST /translate $(json "{\"q\": \"$cssent\", \"source\": \"cs\", \"target\": \"en\"}")
# a form, url-encoded and multipart (LibreTranslate's page posts FormData), gives the JSON body's answer
expect 200 "\"translatedText\":\"$dewant\"" POST /translate --data-urlencode "q=$desent" -d source=de -d target=en
if cmp -s "$T/body" "$T/json-answer"; then ok; else bad "url-encoded form answer: $(cat "$T/body") vs $(cat "$T/json-answer")"; fi
expect 200 "\"translatedText\":\"$dewant\"" POST /translate -F "q=$desent" -F source=de -F target=en -F api_key=
if cmp -s "$T/body" "$T/json-answer"; then ok; else bad "multipart form answer: $(cat "$T/body")"; fi
expect 200 "\"translatedText\":[\"$dewant\",\"$dewant\"]" POST /translate --data-urlencode "q=$desent" \
    --data-urlencode "q=$desent" -d source=de -d target=en
expect 200 '"alternatives":["' POST /translate -d q=hund -d source=de -d target=en -d alternatives=2
expect 400 'malformed form: a file in the form' POST /translate -F "q=@$T/de/s.txt" -F source=de -F target=en
# two published LibreTranslate client libraries (npm), unchanged (tests/libre-clients/)
CLIENTS="$(dirname "$0")/libre-clients"
if command -v node >/dev/null 2>&1 && [ -d "$CLIENTS/node_modules" ]; then
    timeout 30 node "$CLIENTS/clients.mjs" "$URL" cs en "$cssent" >"$T/clients" 2>&1
    timeout 30 node "$CLIENTS/clients.mjs" "$URL" auto en "$desent" >>"$T/clients" 2>&1
    printf 'libretranslate: %s\ntranslate: %s\nlibretranslate: %s\n' "$cswant" "$cswant" "$dewant" >"$T/clients.want"
    if cmp -s "$T/clients" "$T/clients.want"; then ok; else bad "LibreTranslate clients: $(cat "$T/clients")"; fi
else
    bad "node or tests/libre-clients/node_modules missing (scripts/install-deps.sh installs them)"
fi
# "auto": each text's language detected, the text sent to its model
expect 200 "{\"translatedText\":\"$dewant\",\"detectedLanguage\":{\"confidence\":" POST /translate \
    $(json "{\"q\": \"$desent\", \"source\": \"auto\", \"target\": \"en\"}")
grep -qF '"language":"de"}' "$T/body" && ok || bad "auto: $(cat "$T/body")"
expect 200 "{\"translatedText\":[\"$cswant\",\"$dewant\"],\"detectedLanguage\":[{" POST /translate \
    $(json "{\"q\": [\"$cssent\", \"$desent\"], \"source\": \"auto\", \"target\": \"en\"}")
grep -qE '"detectedLanguage":\[\{"confidence":[0-9.]+,"language":"cs"\},\{"confidence":[0-9.]+,"language":"de"\}\]' "$T/body" &&
    ok || bad "auto, two texts: $(cat "$T/body")"
expect 200 '"language":"en"}' POST /translate $(json '{"q": "the dog is small", "source": "auto", "target": "en"}')
grep -qF '{"translatedText":"the dog is small",' "$T/body" && ok || bad "auto, a text in the target: $(cat "$T/body")"
expect 200 '[{"confidence":' POST /detect $(json "{\"q\": \"$cssent\"}")
grep -qE '^\[\{"confidence":[0-9.]+,"language":"cs"\},\{"confidence":[0-9.]+,"language":"(de|en)"\},' "$T/body" &&
    ok || bad "/detect: $(cat "$T/body")"
expect 200 '"language":"de"}' POST /detect -d "q=$desent"
# the pair not served, a language not served, a text in the target language, the fields a request needs
expect 400 'Czech (cs) is not available as a target language from German (de)' POST /translate \
    $(json '{"q": "hund", "source": "de", "target": "cs"}')
expect 400 'fr is not supported' POST /translate $(json '{"q": "chat", "source": "fr", "target": "en"}')
expect 400 'Invalid request: missing target parameter' POST /translate $(json '{"q": "hund", "source": "de"}')
expect 400 'Invalid request: missing source parameter' POST /translate -d q=hund -d target=en
expect 400 'Invalid request: missing q parameter' POST /detect $(json '{}')
expect 200 '{"translatedText":"dog","scores":0' POST /translate $(json '{"q": "dog", "source": "en", "target": "en"}')
expect 400 '\"format\" must be \"text\" or \"html\"' POST /translate $(json '{"q": "hund", "source": "de", "target": "en", "format": "pdf"}')
# paragraphs: each line translated on its own, the breaks kept; html: the markup kept, the text between translated
w1=$(printf 'hund\n' | "$NMT" translate --checkpoint "$DE" --beam 4 2>/dev/null)
w2=$(printf 'katze\n' | "$NMT" translate --checkpoint "$DE" --beam 4 2>/dev/null)
expect 200 "{\"translatedText\":\"$w1\\n\\n  $w2\"," POST /translate $(json '{"q": "hund\n\n  katze", "source": "de", "target": "en"}')
expect 200 "{\"translatedText\":\"<p class=\\\"x\\\">$w1</p><br>$w2<script>var a = 1 < 2;</script>\"," POST /translate \
    $(json '{"q": "<p class=\"x\">hund</p><br>katze<script>var a = 1 < 2;</script>", "source": "de", "target": "en", "format": "html"}')
kill -TERM "$PID"
wait "$PID" || bad "SIGTERM (srv5): exit $?"

# ---- the page offers the pairs served, and translates with the one chosen (headless Chromium)
serve_models "$T/srv6" --model "de-en=$DE" --model "cs-en=$CS" || exit 1
if command -v chromium >/dev/null 2>&1; then
    timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$T/chromium2" --dump-dom \
        --virtual-time-budget=10000 "$URL/?source=cs&target=en&q=$(printf '%s' "$cssent" | sed 's/ /%20/g')" >"$T/dom2" 2>/dev/null
    if grep -qF "<div id=\"translation\">$cswant</div>" "$T/dom2" && grep -qF '<option value="de">German</option>' "$T/dom2" &&
       grep -qF '<option value="cs">Czech</option>' "$T/dom2"; then ok
    else bad "the page with two models: $(grep -o '<div id="\(translation\|status\)"[^<]*</div>\|<select[^>]*>.*</select>' "$T/dom2")"; fi
fi
kill -TERM "$PID"
wait "$PID" || bad "SIGTERM (srv6): exit $?"

# ---- API keys (403 without or with a wrong one) and the request limit per client address (429)
printf '# keys\nsecret-key-1\n\n  other-key  \n' >"$T/keys"
serve_models "$T/srv7" --checkpoint "$DE" --api-keys "$T/keys" --req-limit 3 || exit 1
expect 403 'Please provide an API key' POST /translate $(json '{"q": "hund"}')
expect 403 'Invalid API key' POST /translate $(json '{"q": "hund", "api_key": "secret-key-2"}')
expect 403 'Invalid API key' POST /detect -d q=hund -d api_key=secret
expect 200 '"translatedText":"' POST /translate $(json '{"q": "hund", "api_key": "secret-key-1"}')
expect 200 '"translatedText":"' POST /translate -d q=hund -d api_key=other-key
expect 200 '"keyRequired":true' GET /frontend/settings
expect 200 '"code":"de"' GET /languages
expect 200 '"translatedText":"' POST /translate $(json '{"q": "hund", "api_key": "secret-key-1"}')
expect 429 'Slowdown: 3 per 1 minute' POST /translate $(json '{"q": "hund", "api_key": "secret-key-1"}')
expect 200 '"translatedText":"' POST /translate $(json '{"q": "hund", "api_key": "secret-key-1"}') --interface 127.0.0.2
kill -TERM "$PID"
wait "$PID" || bad "SIGTERM (srv7): exit $?"
if ! grep -q 'secret-key\|other-key' "$T/srv7" "$T/srv7.err"; then ok; else bad "a key in the server's output"; fi

# ---- refusals at start: the languages of a model, the keys file
"$NMT" serve --model "de-en=$CS" --port 0 >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -qF "$CS: the checkpoint translates cs -> en, not de -> en as given" "$T/err"; then ok
else bad "--model with other languages: $(cat "$T/err")"; fi
"$NMT" serve --model "de-en=$DE" --model "de-en=$DE" --port 0 >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -qF "both translate de -> en" "$T/err"; then ok; else bad "a pair twice: $(cat "$T/err")"; fi
"$NMT" serve --model "de=$DE" --port 0 >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -qF -- "--model de=$DE: give SRC-TGT=FILE" "$T/err"; then ok; else bad "--model de=: $(cat "$T/err")"; fi
"$NMT" serve --checkpoint "$DE" --api-keys "$T/nokeys" --port 0 >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -qF "$T/nokeys: cannot open the API key file" "$T/err"; then ok; else bad "no keys file: $(cat "$T/err")"; fi
printf '# none\n\n' >"$T/emptykeys"
"$NMT" serve --checkpoint "$DE" --api-keys "$T/emptykeys" --port 0 >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -qF "$T/emptykeys: no API key in the file" "$T/err"; then ok; else bad "empty keys file: $(cat "$T/err")"; fi
# --languages names the pair of a checkpoint that records none (the reversal model)
start_server "$T/srv8" --languages xx:yy || exit 1
expect 200 '[{"code":"xx","name":"xx","targets":["yy"]},{"code":"yy","name":"yy","targets":[]}]' GET /languages
kill -TERM "$PID"
wait "$PID" || bad "SIGTERM (srv8): exit $?"

# ---- an ensemble: two reversal models of one vocabulary (another seed), answering as nmt translate does
OMP_NUM_THREADS=2 "$NMT" train --config "$T/cfg.json" --quiet --set train.seed=2 --set train.checkpoint_dir="$T/ck_seed2" \
    >/dev/null 2>&1 || bad "training the second reversal model"
CK2="$T/ck_seed2/last.ckpt"
ens_src="3 1 4 1 5 9 2 6"
ens_want=$(printf '%s\n' "$ens_src" | "$NMT" translate --checkpoint "$CK" --checkpoint "$CK2" --weights 1,3 --beam 4 \
    --nbest 1 2>/dev/null | sed 's/^0 ||| \(.*\) ||| \(.*\)$/\1|\2/')
start_server "$T/srv9" --checkpoint "$CK2" --weights 1,3 || exit 1
expect 200 "\"ensemble\":[\"last.ckpt\",\"last.ckpt\"]" GET /info
status POST /translate $(json "{\"q\": \"$ens_src\"}") >/dev/null
got=$(sed 's/.*"translatedText":"\([^"]*\)".*"scores":\([^,}]*\).*/\1|\2/' "$T/body")
# the same text, and the same score to the 6 decimals nmt translate prints
if [ -n "$ens_want" ] && [ "${got%%|*}" = "${ens_want%%|*}" ] &&
   awk -v a="${got##*|}" -v b="${ens_want##*|}" 'BEGIN { d = a - b; exit !(d < 5e-7 && d > -5e-7) }'; then ok
else bad "ensemble answer: $(cat "$T/body") (want $ens_want)"; fi
expect 400 '"attention\" shows one model' POST /translate $(json "{\"q\": \"$ens_src\", \"attention\": true}")
kill -TERM "$PID"
wait "$PID" || bad "SIGTERM (srv9): exit $?"
"$NMT" serve --model "de-en=$DE,$CS" --port 0 >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -qF "$CS: its vocabulary is not $DE's" "$T/err"; then ok; else bad "an ensemble of two vocabularies: $(cat "$T/err")"; fi
"$NMT" serve --checkpoint "$CK" --weights 1 --port 0 >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -qF -- "--weights weighs two --checkpoint or more" "$T/err"; then ok; else bad "--weights alone: $(cat "$T/err")"; fi

# ---- refusals at start: a bad checkpoint, a bad address
"$NMT" serve --checkpoint "$T/s.txt" --port 0 >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q "$T/s.txt" "$T/err"; then ok; else bad "bad checkpoint: $(cat "$T/err")"; fi
"$NMT" serve --checkpoint "$CK" --host localhost.example --port 0 >/dev/null 2>"$T/err"
if [ $? -eq 2 ] && grep -q "not an IPv4 or IPv6 address" "$T/err"; then ok; else bad "bad host: $(cat "$T/err")"; fi

echo "cli-serve: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
