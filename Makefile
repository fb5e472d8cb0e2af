# weft — build, install, test, benchmark, demo.
PREFIX  ?= /usr/local
DESTDIR ?=
CARGO   ?= cargo
BIN      = target/release/weft

.PHONY: all build install uninstall test unit-test lab-test bench demo clean lint lint-man check-targets

all: build

build:
	$(CARGO) build --release --locked

install: build
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man8 \
	           $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/weftd
	ln -sf ../sbin/weftd $(DESTDIR)$(PREFIX)/bin/weft
	install -m 0644 man/weftd.8 $(DESTDIR)$(PREFIX)/share/man/man8/weftd.8
	install -m 0644 man/weft.1 $(DESTDIR)$(PREFIX)/share/man/man1/weft.1
	install -m 0644 man/weft.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/weft.conf.5

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/weftd $(DESTDIR)$(PREFIX)/bin/weft \
	      $(DESTDIR)$(PREFIX)/share/man/man8/weftd.8 $(DESTDIR)$(PREFIX)/share/man/man1/weft.1 \
	      $(DESTDIR)$(PREFIX)/share/man/man5/weft.conf.5

# Everything: installs what the tests need (apt packages, Go-built Tailscale and Headscale),
# lints the man pages, type-checks and lints every other target OS, then unit tests and the
# namespace labs. A lab that cannot run here fails instead of skipping.
test:
	bash scripts/install-test-deps.sh
	bash tests/interop/build.sh
	$(CARGO) build --release --locked
	WEFT_BIN=$(CURDIR)/$(BIN) bash scripts/lint-man.sh
	bash scripts/check-targets.sh
	WEFT_LAB_REQUIRE=1 $(CARGO) test --release --locked -- --test-threads=1

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
	bash scripts/install-bench-deps.sh
	WEFT_BIN=$(CURDIR)/$(BIN) bash bench/run.sh

demo: build
	bash scripts/install-test-deps.sh
	WEFT_BIN=$(CURDIR)/$(BIN) bash demo/demo.sh

clean:
	$(CARGO) clean
	rm -rf .lab
