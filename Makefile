# Top-level tasks. `make demo` and `make test` are the two commands the README starts with.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

# The programs shipped to managed hosts: static musl programs for each architecture, built by
# one pinned compiler so that two builds of a commit are byte for byte the same. The machine's
# stable toolchain is used when it is that version; otherwise rustup installs it.
RUST_VERSION := 1.95.0
TOOLCHAIN    := $(shell rustc +stable -V 2>/dev/null | grep -q '^rustc $(RUST_VERSION) ' && echo stable || echo $(RUST_VERSION))
# The architectures and their Rust targets: one line each in ARCH_LIST (see that file).
ARCH_LIST    := crates/ansible-async/arches
ARCHES       := $(shell awk '!/^\#/ && NF { print $$1 }' $(ARCH_LIST))
MUSL_TARGETS := $(shell awk '!/^\#/ && NF { print $$3 }' $(ARCH_LIST))
PROGRAMS     := target/programs
CARGO_HOME   ?= $(HOME)/.cargo
# Size: std rebuilt from source for size (-Z build-std), panics abort without unwinding code or
# messages, so no unwind tables either (.eh_frame was 56 KB of 381), no file/line locations. -Z flags are unstable: RUSTC_BOOTSTRAP=1 lets this pinned
# stable compiler take them, so no nightly is needed. Reproducibility: the build's own paths
# (checkout, cargo registry, rust-src) are remapped to fixed names; release builds embed no time.
DIST_CARGO   = RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(DIST_RUSTFLAGS)" cargo +$(TOOLCHAIN) build --locked --profile dist \
	$(MUSL_TARGETS:%=--target %) -p ansible-async \
	-Z build-std=std,panic_abort -Z build-std-features=optimize_for_size
DIST_RUSTFLAGS = -Z unstable-options -C panic=immediate-abort -Z location-detail=none -C force-unwind-tables=no \
	-C linker=rust-lld \
	--remap-path-prefix=$(CURDIR)=/ansible-async \
	--remap-path-prefix=$(CARGO_HOME)/registry/src=/cargo/registry/src \
	--remap-path-prefix=$(shell rustc +$(TOOLCHAIN) --print sysroot 2>/dev/null)/lib/rustlib/src/rust=/rustc/$(RUST_VERSION)

# Test-only module for the e2e suites: a static glibc binary for this machine.
HOST_TARGET := x86_64-unknown-linux-gnu
STATIC      := RUSTFLAGS="-C target-feature=+crt-static"

DIST_NAME := ansible-async-rs-$(VERSION)
DIST_DIR  := target/releases/$(DIST_NAME)
# The release's documentation: every docs/ page, and the charts the README and the pages show.
DIST_DOCS   := $(sort $(wildcard docs/*.md))
DIST_CHARTS := tests/bench/results/chart.png tests/bench/results/ssh-chart.svg tests/bench/results/ssh-collect-chart.svg

.PHONY: all toolchain programs rules pack library build dist repro-check venvs ssh-host lint test unit e2e demo bench clean

all: build

# Installs the pinned toolchain's parts the programs need, when missing (a fresh machine has
# the compiler but not the musl targets or std's sources).
toolchain:
	@rustup run $(TOOLCHAIN) rustc -V >/dev/null 2>&1 || rustup toolchain install $(TOOLCHAIN) --profile minimal
	@rustup component list --toolchain $(TOOLCHAIN) --installed | grep -q '^rust-src' || \
		rustup component add --toolchain $(TOOLCHAIN) rust-src
	@for t in $(MUSL_TARGETS); do \
		rustup target list --toolchain $(TOOLCHAIN) --installed | grep -qx $$t || \
		rustup target add --toolchain $(TOOLCHAIN) $$t || exit 1; \
	done

programs: toolchain
	$(DIST_CARGO)
	mkdir -p $(PROGRAMS)
	awk '!/^#/ && NF { print $$1, $$3 }' $(ARCH_LIST) | while read -r arch target; do \
		cp target/$$target/dist/ansible-async $(PROGRAMS)/ansible-async.$$arch || exit 1; \
	done

# The protocol's texts and bounds as the Python parts of library/ take them, printed from the
# Rust code by protocol-rules (a build-machine tool, not shipped).
RULES := target/rules/rules.py
rules:
	mkdir -p $(dir $(RULES))
	cargo run --locked -q -p protocol-rules -- --python >$(RULES).tmp && mv $(RULES).tmp $(RULES)

# The compressor of library/'s payloads (zopfli: smaller than gzip -9, read by any gzip), a
# build-machine tool, not shipped.
PACK := target/release/payload-pack
pack:
	cargo build --release --locked -q -p payload-pack

# library/: what users drop into their playbooks (see the README).
library: programs rules pack
	mkdir -p library
	sh crates/ansible-async/library/assemble.sh library rules=$(RULES) pack=$(PACK) \
		$(foreach a,$(ARCHES),$(a)=$(PROGRAMS)/ansible-async.$(a))

build: library
	$(STATIC) cargo build --release --locked --target $(HOST_TARGET) -p binary-module
	mkdir -p target/e2e-modules
	install -m 0755 target/$(HOST_TARGET)/release/binary_sleep target/e2e-modules/binary_sleep

# A release: target/releases/ansible-async-rs-VERSION.tar.gz with library/, action_plugins/,
# callback_plugins/, README, LICENSE, docs/, the benchmark charts and SHA256SUMS; fixed order,
# owners and times, so equal inputs give an equal tarball. It is also a role (meta/main.yml from
# crates/ansible-async/role/): `ansible-galaxy role install` takes it, and a play that names the
# role gets its modules and action plugin.
dist: library
	rm -rf $(DIST_DIR) && mkdir -p $(DIST_DIR)/library $(DIST_DIR)/action_plugins $(DIST_DIR)/callback_plugins $(DIST_DIR)/meta
	cp library/async_wrapper library/async_status library/async_job $(DIST_DIR)/library/
	cp action_plugins/async_job.py action_plugins/async_status.py $(DIST_DIR)/action_plugins/
	cp callback_plugins/async_progress.py $(DIST_DIR)/callback_plugins/
	cp crates/ansible-async/role/meta/main.yml $(DIST_DIR)/meta/
	mkdir -p $(DIST_DIR)/docs $(DIST_DIR)/tests/bench/results
	cp README.md LICENSE $(DIST_DIR)/
	cp $(DIST_DOCS) $(DIST_DIR)/docs/
	cp $(DIST_CHARTS) $(DIST_DIR)/tests/bench/results/
	chmod 0755 $(DIST_DIR) $(DIST_DIR)/library $(DIST_DIR)/library/* $(DIST_DIR)/docs $(DIST_DIR)/action_plugins \
		$(DIST_DIR)/callback_plugins $(DIST_DIR)/meta $(DIST_DIR)/tests $(DIST_DIR)/tests/bench $(DIST_DIR)/tests/bench/results
	chmod 0644 $(DIST_DIR)/README.md $(DIST_DIR)/LICENSE $(DIST_DOCS:%=$(DIST_DIR)/%) $(DIST_CHARTS:%=$(DIST_DIR)/%) \
		$(DIST_DIR)/action_plugins/async_job.py $(DIST_DIR)/action_plugins/async_status.py \
		$(DIST_DIR)/callback_plugins/async_progress.py $(DIST_DIR)/meta/main.yml
	cd $(DIST_DIR) && sha256sum action_plugins/async_job.py action_plugins/async_status.py \
		callback_plugins/async_progress.py library/async_job library/async_status \
		library/async_wrapper LICENSE README.md $(DIST_DOCS) meta/main.yml $(DIST_CHARTS) >SHA256SUMS
	chmod 0644 $(DIST_DIR)/SHA256SUMS
	LC_ALL=C tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
		-C target/releases -cf - $(DIST_NAME) | gzip -9 -n >target/releases/$(DIST_NAME).tar.gz
	@echo "wrote target/releases/$(DIST_NAME).tar.gz"; cat $(DIST_DIR)/SHA256SUMS

# Two release builds in two copies of this checkout, in folders of different names: their
# library/ files and tarballs must be identical.
repro-check:
	sh tests/repro/check.sh

venvs:
	sh tests/setup-venvs.sh

# openssh-server, sudo and the test users for the suites over SSH (root; apt-get when missing).
ssh-host:
	bash tests/harness/setup-ssh-host.sh

# Formatting, clippy and rustdoc with warnings as errors, shellcheck on every shell script
# (tests/shellcheck.sh), and the Python parts of library/ compiled by every Python they run on
# and checked by pyflakes (tests/lint-python.sh). `.ci/run` runs it before the tests.
lint:
	@cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
	sh tests/shellcheck.sh
	sh tests/lint-python.sh

unit:
	cargo test --workspace --locked

e2e: build venvs ssh-host
	.venv/core-2.19/bin/python -m pytest -v tests/docs tests/protocol tests/launcher tests/tasks tests/polling tests/jobctl tests/lease tests/secrets tests/homedir tests/progress tests/fallback tests/arches tests/release tests/upstream

test: unit e2e

demo: build venvs
	sh playbooks/run-demo.sh

# Stock ansible-core modules against ours, side by side; writes target/bench/.
bench: build venvs
	@command -v /usr/bin/time >/dev/null || { apt-get update && apt-get install -y --no-install-recommends time; }
	sh tests/bench/run.sh

clean:
	cargo clean
	rm -f library/async_wrapper library/async_status library/async_job
