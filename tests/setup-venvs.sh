#!/bin/sh
# Creates the two controller venvs the end-to-end tests use (`make venvs` runs this from the repo
# root; it works from anywhere):
#
#   .venv/core-2.19  python3      ansible-core 2.19.14 + pytest (runs the test suite)
#   .venv/core-2.21  Python 3.13  ansible-core 2.21.5  (new async_wrapper protocol)
#
# In both, ansible's own async_wrapper and async_status modules are replaced by stubs that fail
# loudly (tests/stub_stock_modules.py; the originals stay beside them as *.py.orig), so a test can
# only pass when this project's native modules ran.
#
# Idempotent: a venv whose .ready marker names the same pins is left alone; any other venv at
# that path is rebuilt from scratch. Needs only python3, Python 3.13 (pyenv's 3.13.0, or
# python3.13 on PATH) and pip's package index.
set -eu

cd "$(dirname "$0")/.."

ANSIBLE_219=2.19.14
ANSIBLE_221=2.21.5
PYTEST=9.2.0

log() { printf 'setup-venvs: %s\n' "$*" >&2; }

python313() {
    if command -v pyenv >/dev/null 2>&1; then
        prefix=$(pyenv prefix 3.13.0 2>/dev/null) || prefix=
        if [ -n "$prefix" ] && [ -x "$prefix/bin/python3" ]; then
            printf '%s\n' "$prefix/bin/python3"
            return 0
        fi
    fi
    if command -v python3.13 >/dev/null 2>&1; then
        command -v python3.13
        return 0
    fi
    log "Python 3.13 not found: install it with pyenv (pyenv install 3.13.0) or put python3.13 on PATH"
    return 1
}

# make_venv DIR PYTHON PACKAGE...
make_venv() {
    dir=$1
    python=$2
    shift 2
    want="$*"
    if [ -f "$dir/.ready" ] && [ "$(cat "$dir/.ready")" = "$want" ] && [ -x "$dir/bin/python" ]; then
        log "$dir is ready ($want)"
        return 0
    fi
    log "creating $dir with $python: $want"
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    "$python" -m venv "$dir"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$dir/bin/python" -m pip install --quiet "$@"
    "$dir/bin/python" tests/stub_stock_modules.py
    printf '%s\n' "$want" >"$dir/.ready"
    log "$dir is ready"
}

make_venv .venv/core-2.19 python3 "ansible-core==$ANSIBLE_219" "pytest==$PYTEST"
py313=$(python313)
make_venv .venv/core-2.21 "$py313" "ansible-core==$ANSIBLE_221"
