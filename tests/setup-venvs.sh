#!/bin/sh
# Creates the controller venvs the end-to-end tests use (`make venvs` runs this from the repo
# root; it works from anywhere): one per ansible-core minor, at its latest patch, as listed in
# tests/controllers.txt (`name python pins...`, one a line; tests/harness reads the same file):
#
#   .venv/core-2.19            python3      ansible-core 2.19 + pytest (runs the test suites)
#   .venv/core-2.21            Python 3.13  ansible-core 2.21 (new async_wrapper protocol)
#   .venv/core-2.14 ... 2.18   python3
#   .venv/core-2.20, core-2.22 Python 3.13
#
# 2.14 and 2.15 need Python <= 3.11, 2.20 and later Python >= 3.12 (2.22: 3.13). Most suites use
# 2.19 and 2.21; tests/tasks/test_controllers.py and tests/release run every one. `tests/setup-venvs.sh core-2.19
# core-2.21` makes only the venvs named.
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

CONTROLLERS=tests/controllers.txt

log() { printf 'setup-venvs: %s\n' "$*" >&2; }

python3_13() {
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

# own_scripts DIR: whether DIR's scripts (pip's, for one) start DIR's own python. They name it
# by the path the venv was made through: its physical path (pwd -P: .venv reached through a
# symlink to a venv made elsewhere) or, for one made through that symlink, the logical one.
own_scripts() {
    interpreter=$(head -n 1 "$1/bin/pip" 2>/dev/null) || return 1
    case ${interpreter#"#!"} in
    "$(cd "$1" && pwd -P)"/bin/python*) return 0 ;;
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

# Each line of the list, comments and blank lines aside: name python pins... (read from fd 3:
# pip and the stub script keep the caller's stdin)
while read -r name kind pins <&3; do
    case $name in '' | '#'*) continue ;; esac
    asked "$name" "$@" || continue
    case $kind in
        python3.13) python=$(python3_13) ;;
        *) python=$kind ;;
    esac
    # shellcheck disable=SC2086 # the pins are separate words
    make_venv ".venv/$name" "$python" $pins
done 3<"$CONTROLLERS"
