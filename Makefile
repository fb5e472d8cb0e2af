# weft — build, install, test, benchmark, demo.
PREFIX  ?= /usr/local
DESTDIR ?=
CARGO   ?= cargo
BIN      = target/release/weft

.PHONY: all build install install-files uninstall test unit-test lab-test bench demo clean lint

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
# then unit tests and the namespace labs. A lab that cannot run here fails instead of skipping.
test:
	bash scripts/install-test-deps.sh
	bash tests/interop/build.sh
	$(CARGO) build --release --locked
	WEFT_LAB_REQUIRE=1 $(CARGO) test --release --locked -- --test-threads=1

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

bench: build
	bash scripts/install-bench-deps.sh
	WEFT_BIN=$(CURDIR)/$(BIN) bash bench/run.sh

demo: build
	bash scripts/install-test-deps.sh
	WEFT_BIN=$(CURDIR)/$(BIN) bash demo/demo.sh

clean:
	$(CARGO) clean
	rm -rf .lab
