# nmt — build, test, run. `make help` lists the targets.
CC      ?= gcc
ARCH    ?= native
SANITIZE ?= 0
THREADS ?= 2

CFLAGS  := -std=c11 -Wall -Wextra -fno-math-errno -fopenmp -march=$(ARCH) -D_GNU_SOURCE -MMD -MP
LDLIBS  := -lcjson -lstb -lm
BUILD   := build

# Open MPI: when mpicc (libopenmpi-dev) is found, src/comm.c is built with it
# and `mpirun -np N ./nmt train` trains on N processes; MPI=0 builds without
# it (then nmt is one process, as it is anyway when not started by mpirun).
MPI ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
  MPI_CFLAGS := -DNMT_MPI $(shell mpicc --showme:compile)
  MPI_LIBS   := $(shell mpicc --showme:link)
endif

ifeq ($(SANITIZE),1)
  # float-cast-overflow is not part of "undefined": a NaN or out-of-range float
  # converted to an integer (the int8 quantizers) is caught too.
  CFLAGS += -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow \
            -fno-sanitize-recover=undefined,float-cast-overflow
  LDFLAGS += -fsanitize=address,undefined,float-cast-overflow
  BUILD := build/san
else
  CFLAGS += -O3 -g
endif

# The library is src/<room>/*.c (README "Design"); the command line
# (src/cli/, which the library never includes) links on top of it. The tests
# link the library only, plus the option parser that tests/test_options.c checks.
ROOMS   := common kernels text model data optim io decode eval train bench
LIB_SRC := $(foreach r,$(ROOMS),$(wildcard src/$(r)/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/float/%.o)
CLI_SRC := $(wildcard src/cli/*.c)
CLI_OBJ := $(CLI_SRC:src/%.c=$(BUILD)/float/%.o)
# The HTTP server (nmt serve) is part of the program only, with its page
# (src/serve/page.html) compiled in as a string.
SERVE_SRC := $(wildcard src/serve/*.c)
SERVE_OBJ := $(SERVE_SRC:src/%.c=$(BUILD)/float/%.o) $(BUILD)/float/serve/page.o
SERVE_LIBS := -lmicrohttpd -lpthread
OPT_OBJ := $(BUILD)/float/cli/options.o
# bench/gemm.c times the float kernel against OpenBLAS: not part of the double build.
DBL_OBJ := $(patsubst src/%.c,$(BUILD)/double/%.o,$(filter-out src/bench/gemm.c,$(LIB_SRC)))
TEST_SRC := $(wildcard tests/test_*.c)
GRAD_SRC := $(wildcard tests/grad_*.c)
TEST_OBJ := $(TEST_SRC:tests/%.c=$(BUILD)/float/tests/%.o)
GRAD_OBJ := $(GRAD_SRC:tests/%.c=$(BUILD)/double/tests/%.o)
NMT_BIN := $(if $(filter 1,$(SANITIZE)),$(BUILD)/nmt,nmt)

.PHONY: all deps test-deps run test test-suite bench bench-translate bench-window bench-mpi serve-load loadgen clean help fuzz fuzz-deps fuzz-run
all: $(NMT_BIN)

help:
	@echo "make            build ./nmt"
	@echo "make run        install missing packages, build, train the toy model, translate, score"
	@echo "make test       install what the tests need, build and run the test suite (SANITIZE=1 for ASan+UBSan)"
	@echo "make bench      build ./nmt, then time training steps beside PyTorch (scripts/bench.sh; BENCH_SHAPES=\"tiny small\")"
	@echo "make bench-translate  translation speed and BLEU: nmt float and int8 beside PyTorch float and int8 (scripts/bench-translate.sh)"
	@echo "make bench-window  local attention (model.attention_window) against full attention at lengths 128, 512, 2048"
	@echo "make bench-mpi  2 processes under mpirun against 1 process with 2 threads (scripts/bench-mpi.sh)"
	@echo "make serve-load  nmt serve against hostile clients on loopback: the delay they cause, SIGTERM under load"
	@echo "make loadgen    build build/serve-loadgen, the C load generator of scripts/bench-serve.sh (not part of ./nmt)"
	@echo "make fuzz       build the libFuzzer harnesses (clang, ASan+UBSan) into build/fuzz/ (fuzz/README.md)"
	@echo "make fuzz-run   build and run each harness FUZZ_SECONDS (default 30), or FUZZ_RUNS executions, on fuzz/corpus/"
	@echo "make clean      remove build outputs"

deps:
	@sh scripts/install-deps.sh
test-deps:
	@sh scripts/install-deps.sh test

$(NMT_BIN): $(CLI_OBJ) $(SERVE_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MPI_LIBS) $(SERVE_LIBS)

# Only train/comm.c sees MPI's headers. Its objects are rebuilt when MPI
# changes (a build made before `make test` installed Open MPI gains it).
MPI_STAMP := $(BUILD)/mpi-$(MPI).stamp
$(MPI_STAMP):
	@mkdir -p $(@D)
	@rm -f $(BUILD)/mpi-*.stamp
	@touch $@
$(BUILD)/float/train/comm.o $(BUILD)/double/train/comm.o: CFLAGS += $(MPI_CFLAGS)
$(BUILD)/float/train/comm.o $(BUILD)/double/train/comm.o: $(MPI_STAMP)

# Objects depend on this file too: a changed flag rebuilds them. Every file
# includes by room: "model/model.h".
$(BUILD)/float/%.o: src/%.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc -c -o $@ $<
# The page as a C string: backslashes and quotes escaped, one line per line.
$(BUILD)/float/serve/page.c: src/serve/page.html Makefile
	@mkdir -p $(@D)
	{ echo '// generated from src/serve/page.html by the Makefile'; echo 'const char SERVE_PAGE[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; echo ';'; } >$@
$(BUILD)/float/serve/page.o: $(BUILD)/float/serve/page.c
	$(CC) $(CFLAGS) -c -o $@ $<
$(BUILD)/double/%.o: src/%.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DNMT_DOUBLE -Isrc -c -o $@ $<
$(BUILD)/float/tests/%.o: tests/%.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc -c -o $@ $<
$(BUILD)/double/tests/%.o: tests/%.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DNMT_DOUBLE -Isrc -c -o $@ $<

# The serve queue and its translation job kind need pthreads only (no
# libmicrohttpd), and so does the request reader: the tests link them too
# (tests/test_queue.c, test_translate_job.c, test_request.c).
SERVE_TEST_OBJ := $(BUILD)/float/serve/queue.o $(BUILD)/float/serve/translate_job.o $(BUILD)/float/serve/request.o $(BUILD)/float/serve/host.o \
                  $(BUILD)/float/serve/segments.o $(BUILD)/float/serve/access.o
$(BUILD)/tests: $(TEST_OBJ) $(LIB_OBJ) $(OPT_OBJ) $(SERVE_TEST_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MPI_LIBS) -lcriterion -lpthread
$(BUILD)/tests-double: $(GRAD_OBJ) $(DBL_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MPI_LIBS) -lcriterion

# The suite: the rooms' include direction and function lengths (tests/check-*.sh),
# unit and gradient tests (Criterion), then the command-line tests.
# The test binaries get the short OpenMP spin ./nmt uses: Criterion runs tests side by side.
# (A second make after deps: it finds the packages deps installed, Open MPI's mpicc among them.)
test: test-deps
	$(MAKE) test-suite
test-suite: $(NMT_BIN) $(BUILD)/tests $(BUILD)/tests-double
	sh tests/check-rooms.sh
	sh tests/check-function-length.sh
	OMP_NUM_THREADS=$(THREADS) GOMP_SPINCOUNT=20000 $(BUILD)/tests-double
	OMP_NUM_THREADS=$(THREADS) GOMP_SPINCOUNT=20000 $(BUILD)/tests
	NMT=./$(NMT_BIN) sh tests/cli.sh
	NMT=./$(NMT_BIN) sh tests/cli-checkpoint.sh
	NMT=./$(NMT_BIN) sh tests/cli-finetune.sh
	NMT=./$(NMT_BIN) sh tests/cli-mpi.sh
	NMT=./$(NMT_BIN) bash tests/cli-serve.sh
	$(if $(filter 1,$(SANITIZE)),@echo "skipping tests/toy-bf16.sh under the sanitizers (its code runs in the unit tests)",OMP_NUM_THREADS=$(THREADS) NMT=./$(NMT_BIN) sh tests/toy-bf16.sh)
	@if [ -d ../shared/data/multi30k ]; then NMT=./$(NMT_BIN) DATA=../shared/data/multi30k sh scripts/check-bpe-multi30k.sh; \
	else echo "skipping the Multi30k BPE round trip: ../shared/data/multi30k not found"; fi

run: deps
	$(MAKE) $(NMT_BIN)
	OMP_NUM_THREADS=$(THREADS) ./nmt train --config configs/toy.json
	sh scripts/toy-eval.sh ./nmt checkpoints/toy/last.ckpt data/toy/test
	sh scripts/plot-log.sh checkpoints/toy/train_log.jsonl checkpoints/toy/train-curve.png

bench: $(NMT_BIN)
	sh scripts/install-deps.sh bench
	NMT=./$(NMT_BIN) sh scripts/bench.sh

# The load generator scripts/bench-serve.sh runs (a thread per client, keep-alive
# connections: it leaves the cores to the server); not part of ./nmt.
loadgen: build/serve-loadgen
build/serve-loadgen: scripts/serve-loadgen.c Makefile
	@mkdir -p $(@D)
	$(CC) -std=c11 -Wall -Wextra -O2 -g -D_GNU_SOURCE -o $@ $< -lpthread

# nmt serve against hostile clients on loopback (about a minute; not part of the suite):
# the largest request the limits allow and 256 trickling connections must delay a
# one-sentence request by at most a few seconds, and SIGTERM end the server in bounded time.
serve-load: $(NMT_BIN)
	NMT=./$(NMT_BIN) bash scripts/serve-load.sh

# 2 processes (mpirun) against one with 2 threads and accum_steps 2 (SHAPE=small).
# Local attention against full attention at lengths 128, 512, 2048 (scripts/bench-window.sh).
bench-window: $(NMT_BIN)
	NMT=./$(NMT_BIN) sh scripts/bench-window.sh

bench-translate: $(NMT_BIN)
	sh scripts/install-deps.sh bench
	NMT=./$(NMT_BIN) sh scripts/bench-translate.sh

bench-mpi: $(NMT_BIN)
	NMT=./$(NMT_BIN) sh scripts/bench-mpi.sh

# Fuzzing: libFuzzer harnesses (fuzz/fuzz_*.c) on the library built with clang,
# -fsanitize=fuzzer-no-link,address,undefined into build/fuzz/ (fuzz/README.md).
# fuzz_checkpoint_crc is fuzz_checkpoint.c with -DFUZZ_FIX_CRC.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_RUNS    ?=
FUZZ_RSS_MB  ?= 2048
FUZZ_BUILD   := build/fuzz
FUZZ_CFLAGS  := -std=c11 -Wall -Wextra -fno-math-errno -fopenmp -march=$(ARCH) -D_GNU_SOURCE -MMD -MP \
                -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_NAMES   := checkpoint checkpoint_crc config bpe tokenizer corpus bleu safetensors request
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIB_OBJ := $(LIB_SRC:src/%.c=$(FUZZ_BUILD)/lib/%.o) $(FUZZ_BUILD)/lib/serve/request.o $(FUZZ_BUILD)/lib/serve/segments.o

fuzz: fuzz-deps $(FUZZ_BINS)

fuzz-deps:
	@sh scripts/install-deps.sh fuzz

$(FUZZ_BUILD)/lib/%.o: src/%.c Makefile
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -Isrc -c -o $@ $<
$(FUZZ_BUILD)/fuzz_checkpoint_crc.o: fuzz/fuzz_checkpoint.c Makefile | $(FUZZ_BUILD)/lib
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -DFUZZ_FIX_CRC -Isrc -c -o $@ $<
$(FUZZ_BUILD)/fuzz_%.o: fuzz/fuzz_%.c Makefile | $(FUZZ_BUILD)/lib
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -DFUZZ_DATA_DIR='"$(CURDIR)/fuzz/data"' -Isrc -c -o $@ $<
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/fuzz_%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)
.SECONDARY: $(FUZZ_BINS:=.o)
$(FUZZ_BUILD)/lib:
	mkdir -p $@

# Each harness FUZZ_SECONDS (or, when FUZZ_RUNS is set, FUZZ_RUNS executions:
# the long run) on a scratch corpus (build/fuzz/corpus/NAME) seeded from the
# committed one; findings go to build/fuzz/crashes/NAME/ and fail the target.
FUZZ_LIMIT = $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS))
fuzz-run: fuzz
	@set -e; for n in $(FUZZ_NAMES); do \
	    s=$$(case $$n in checkpoint_crc) echo checkpoint;; *) echo $$n;; esac); \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$n $(FUZZ_BUILD)/crashes/$$n; \
	    echo "fuzz-run: fuzz_$$n $(FUZZ_LIMIT)"; \
	    OMP_NUM_THREADS=1 $(FUZZ_BUILD)/fuzz_$$n $(FUZZ_LIMIT) -timeout=10 \
	        -rss_limit_mb=$(FUZZ_RSS_MB) -dict=fuzz/dict/$$s.dict -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/crashes/$$n/ $(FUZZ_BUILD)/corpus/$$n fuzz/corpus/$$s \
	        2>$(FUZZ_BUILD)/fuzz_$$n.log || { tail -n 60 $(FUZZ_BUILD)/fuzz_$$n.log; exit 1; }; \
	    grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' $(FUZZ_BUILD)/fuzz_$$n.log | tr -s ' \n' ' '; echo; \
	done

clean:
	rm -rf build nmt

-include $(shell find build -name '*.d' 2>/dev/null)
