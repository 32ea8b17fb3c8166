# Top-level tasks. `make demo` and `make test` are the two commands the README starts with.
TARGET  := x86_64-unknown-linux-gnu
RELEASE := target/$(TARGET)/release
# Static glibc: the programs must run on any x86_64 Linux host, whatever its libc.
STATIC  := RUSTFLAGS="-C target-feature=+crt-static"

.PHONY: all build venvs ssh-host test unit e2e demo bench clean

all: build

build:
	mkdir -p library
	$(STATIC) cargo build --release --locked --target $(TARGET) -p ansible-async -p binary-module
	sh crates/ansible-async/library/assemble.sh $(RELEASE)/ansible-async library
	mkdir -p target/e2e-modules
	install -m 0755 $(RELEASE)/binary_sleep target/e2e-modules/binary_sleep

venvs:
	sh tests/setup-venvs.sh

# openssh-server, sudo and the test users for tests/ssh (root; apt-get when missing).
ssh-host:
	bash tests/ssh/setup-host.sh

unit:
	cargo test --workspace --locked

e2e: build venvs ssh-host
	.venv/core-2.19/bin/python -m pytest -v tests/launcher tests/jobctl tests/reliability tests/e2e tests/ssh tests/homedir

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
