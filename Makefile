# weft — build, install, test, benchmark, demo.
PREFIX  ?= /usr/local
DESTDIR ?=
CARGO   ?= cargo
BIN      = target/release/weft

.PHONY: all build install install-files uninstall test unit-test lab-test bench demo clean lint lint-man check-targets fuzz fuzz-smoke fuzz-build

all: build

build:
	$(CARGO) build --release --locked

# install: build, then install sbin/weftd, bin/weft (a link to it), the man pages and the
# service file of this OS (`uname -s`; see platform/install.sh for where each goes), with
# PREFIX filled in. install-files does the same without building, from an existing BIN
# (packaging, tests). SERVICE_OS=none skips the service file; SERVICE_OS=FreeBSD etc. picks
# another OS's. DESTDIR is honoured throughout; uninstall removes exactly those files.
SERVICE_OS     ?=
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL_ENV     = DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" BIN="$(BIN)" \
                  SERVICE_OS="$(SERVICE_OS)" SYSTEMDUNITDIR="$(SYSTEMDUNITDIR)"

install: build
	$(INSTALL_ENV) sh platform/install.sh install

install-files:
	$(INSTALL_ENV) sh platform/install.sh install

uninstall:
	$(INSTALL_ENV) sh platform/install.sh uninstall

# Everything: installs what the tests need (apt packages, Go-built Tailscale and Headscale),
# lints the man pages, type-checks and lints every other target OS, then unit tests, the
# namespace labs and a few seconds of every fuzz target. A lab that cannot run here fails
# instead of skipping.
test:
	bash scripts/install-test-deps.sh
	bash tests/interop/build.sh
	$(CARGO) build --release --locked
	WEFT_BIN=$(CURDIR)/$(BIN) bash scripts/lint-man.sh
	bash scripts/check-targets.sh
	WEFT_LAB_REQUIRE=1 $(CARGO) test --release --locked -- --test-threads=1
	$(MAKE) fuzz-smoke

# mandoc -Tlint on every man page; with a built binary, also every weftd flag documented.
lint-man:
	bash scripts/lint-man.sh

# cargo clippy --all-targets for the BSDs, macOS, illumos and musl, with Debian's toolchain
# (installed by the script); the target directory is cached in ~/.cache/weft-check-targets.
check-targets:
	bash scripts/check-targets.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

bench: build
	$(CARGO) build --release --locked --features bench --example scale
	bash scripts/install-bench-deps.sh
	WEFT_BIN=$(CURDIR)/$(BIN) SCALE_BIN=$(CURDIR)/target/release/examples/scale bash bench/run.sh

demo: build
	bash scripts/install-test-deps.sh
	WEFT_BIN=$(CURDIR)/$(BIN) bash demo/demo.sh

# Fuzzing (docs/security.md, "Fuzzing"): one cargo-fuzz target per parser of outside bytes,
# all built at once, then run one after another, each for FUZZ_SECONDS. A crash stops the run
# and leaves its input in fuzz/artifacts/<target>/.
FUZZ_SECONDS  ?= 60
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_CARGO    ?= cargo +nightly
FUZZ_TARGETS   = $(sort $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs))))

fuzz-build:
	bash scripts/install-fuzz-deps.sh
	$(FUZZ_CARGO) fuzz build

fuzz: fuzz-build
	@set -e; ran=0; for target in $(FUZZ_TARGETS); do \
	    echo "== fuzz $$target ($(FUZZ_SECONDS) s)"; \
	    $(FUZZ_CARGO) fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS); \
	    ran=$$((ran + 1)); \
	done; \
	echo "fuzz: $$ran passed, 0 failed"

# A few seconds each: catches a parser change that panics on the seeds or near them.
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

clean:
	$(CARGO) clean
	rm -rf .lab fuzz/target
