#!/bin/sh
# Creates the controller venvs the end-to-end tests use (`make venvs` runs this from the repo
# root; it works from anywhere): one per ansible-core minor, at its latest patch.
#
#   .venv/core-2.19            python3      ansible-core 2.19.14 + pytest (runs the test suites)
#   .venv/core-2.21            Python 3.13  ansible-core 2.21.5  (new async_wrapper protocol)
#   .venv/core-2.14 ... 2.18   python3      2.14.18 2.15.13 2.16.19 2.17.14 2.18.19
#   .venv/core-2.20            Python 3.13  2.20.6
#
# 2.14 and 2.15 need Python <= 3.11, 2.20 and 2.21 Python >= 3.12. tests/launcher ... tests/ssh
# use 2.19 and 2.21; tests/matrix runs every one. `tests/setup-venvs.sh core-2.19 core-2.21`
# makes only the venvs named.
#
# In each, ansible's own async_wrapper and async_status modules are replaced by stubs that fail
# loudly (tests/stub_stock_modules.py; the originals stay beside them as *.py.orig), so a test can
# only pass when this project's native modules ran.
#
# Idempotent: a venv whose .ready marker names the same pins is left alone; any other venv at
# that path is rebuilt from scratch. Needs only python3, Python 3.13 (pyenv's 3.13.0, or
# python3.13 on PATH) and pip's package index.
set -eu

cd "$(dirname "$0")/.."

PYTEST=9.2.0

# name python pins...: every controller, in the order they are made.
CONTROLLERS="
core-2.19 python3   ansible-core==2.19.14 pytest==$PYTEST
core-2.21 python313 ansible-core==2.21.5
core-2.14 python3   ansible-core==2.14.18
core-2.15 python3   ansible-core==2.15.13
core-2.16 python3   ansible-core==2.16.19
core-2.17 python3   ansible-core==2.17.14
core-2.18 python3   ansible-core==2.18.19
core-2.20 python313 ansible-core==2.20.6
"

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

# own_scripts DIR: whether DIR's scripts (pip's, for one) start DIR's own python.
own_scripts() {
    interpreter=$(head -n 1 "$1/bin/pip" 2>/dev/null) || return 1
    case ${interpreter#"#!"} in
    "$(cd "$1" && pwd)"/bin/python*) return 0 ;;
    *) return 1 ;;
    esac
}

# make_venv DIR PYTHON PACKAGE...
make_venv() {
    dir=$1
    python=$2
    shift 2
    want="$*"
    # A venv's scripts name its python by absolute path: one copied or made in another
    # checkout (a git worktree since removed) has scripts that cannot start. Made anew then.
    if [ -f "$dir/.ready" ] && [ "$(cat "$dir/.ready")" = "$want" ] && [ -x "$dir/bin/python" ] &&
        own_scripts "$dir"; then
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

# asked NAME ARGS...: true when NAME is among ARGS, or ARGS is empty (make them all).
asked() {
    name=$1
    shift
    [ "$#" -eq 0 ] && return 0
    for arg in "$@"; do
        [ "$arg" = "$name" ] && return 0
    done
    return 1
}

printf '%s\n' "$CONTROLLERS" | while read -r name kind pins; do
    [ -n "$name" ] || continue
    asked "$name" "$@" || continue
    case $kind in
        python313) python=$(python313) ;;
        *) python=$kind ;;
    esac
    # shellcheck disable=SC2086 # the pins are separate words
    make_venv ".venv/$name" "$python" $pins
done
