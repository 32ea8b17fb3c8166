#!/bin/sh
@MODULE_KIND@
# @PROGRAM@ - native replacement for ansible-core's @PROGRAM@ module.
#
# ansible copies this file to the managed host and runs it with /bin/sh. This text is
# followed by two native programs, gzipped and statically linked (no Python, no shared
# libraries): ansible-async for x86_64 Linux, then for aarch64 Linux. ansible-async is
# async_wrapper, async_status and async_job in one. The script picks the one for this
# host (`uname -sm`) and keeps one copy per user and architecture, named by the build,
# in a private folder next to the job files:
#
#     <async dir>/.bin/ansible-async-<release id>.<x86_64|aarch64>
#
# where <async dir> is ANSIBLE_ASYNC_DIR (default ~/.ansible_async). A copy is unpacked
# only when it is missing or of the wrong size, and checked to run before it is kept, so
# a normal call costs `uname`, `wc -c` and one exec; library/async_status and
# library/async_job run the same copy. On other hosts async_wrapper runs its portable
# fallback. ansible needs this text to be at least 1 KiB long: it decides whether a module
# is a script or a binary from its first 1024 bytes, and only a script may start with an
# interpreter line. Nothing after the last line of shell code is text.
#
# Debugging on a host: the job files are plain JSON in the async dir, one per job, named
# by the job id that ansible printed, each with a log <job id>.log beside it; the program
# also answers `ansible-async-<release id>.<arch> async_job list` there. See the README.

program=@PROGRAM@
release_id=@PAYLOAD_ID@
# Bytes of each gzipped program at the end of this file (x86_64 first), and unpacked.
x86_64_gz=@X86_64_GZ@ x86_64_size=@X86_64_SIZE@
aarch64_gz=@AARCH64_GZ@ aarch64_size=@AARCH64_SIZE@
self=$0

@COMMON@

@FALLBACK@

# native_failed REASON: what to do when no native program can run here.
native_failed() {
    native_why=$1
    [ "$program" = async_wrapper ] && return 0
    fail "$program: $native_why"
}

# unpack FILE: this host's program from the end of this file into FILE. Succeeds only when
# it is complete and runs here (a noexec mount, a lying uname); sets native_why otherwise.
unpack() {
    if ! tail -c "$((gz + after))" "$self" | head -c "$gz" | gzip -dc >"$1" 2>/dev/null; then
        native_why="could not unpack the $arch program from $self (is the file complete?)"
        return 1
    fi
    if [ "$(($(wc -c <"$1")))" != "$size" ]; then
        native_why="the $arch program unpacked from $self has the wrong size (is the file complete? is $(dirname "$1") full?)"
        return 1
    fi
    chmod 700 "$1" 2>/dev/null || { native_why="could not make $1 executable" && return 1; }
    # Without arguments the program prints its usage and exits 2.
    probe=$("$1" 2>&1 </dev/null)
    case $probe in *"usage: ansible-async"*) return 0 ;; esac
    native_why="the $arch program does not run from $(dirname "$1"): $(printf '%s' "$probe" | head -n 1)"
    return 1
}

native_why=
arch=
if [ "$program" = async_wrapper ] && [ "${ASYNC_WRAPPER_FALLBACK:-}" = 1 ]; then
    native_failed "ASYNC_WRAPPER_FALLBACK=1 asks for the fallback"
else
    host=$(uname -sm 2>/dev/null) || host=
    case $host in
    "Linux x86_64" | "Linux amd64") arch=x86_64 gz=$x86_64_gz size=$x86_64_size after=$aarch64_gz ;;
    "Linux aarch64" | "Linux arm64") arch=aarch64 gz=$aarch64_gz size=$aarch64_size after=0 ;;
    "") native_failed "no native program for this host: uname is missing or failed" ;;
    *) native_failed "no native program for this host ($host)" ;;
    esac
fi

# cache_dirs: makes the async dir and its .bin when missing; sets native_why when they
# cannot be used.
cache_dirs() {
    for d in "$dir" "$bin_dir"; do
        if [ ! -d "$d" ]; then
            # shellcheck disable=SC2174 # umask 077 covers the parents
            err=$(mkdir -p -m 700 "$d" 2>&1) || {
                native_why="could not create directory: $d - ${err#mkdir: }" && return 1
            }
        fi
        if [ -L "$d" ] || [ ! -O "$d" ]; then
            native_why="refusing to use async directory $d: it is a symbolic link or not owned by the running user"
            return 1
        fi
    done
}

if [ -n "$arch" ]; then
    expand_dir "${ANSIBLE_ASYNC_DIR:-"~/.ansible_async"}"
    bin_dir=$dir/.bin
    bin=$bin_dir/ansible-async-$release_id.$arch
    umask 077
    if cache_dirs; then
        # The usual call: the copy is there, of the right size.
        if [ -f "$bin" ] && [ -x "$bin" ] && [ "$(($(wc -c <"$bin")))" = "$size" ]; then
            exec "$bin" "$program" "$@"
        fi
        command -v gzip >/dev/null 2>&1 || fail "$program needs gzip on the host to unpack its program: gzip is not installed or not in PATH"
        tmp=$bin_dir/.ansible-async-$release_id.$arch.$$
        if unpack "$tmp" && mv -f "$tmp" "$bin"; then
            # Drop this architecture's copies of other builds (and unsuffixed ones of older builds).
            for old in "$bin_dir"/ansible-async-* "$bin_dir"/async_wrapper-*; do
                case $old in
                "$bin") ;;
                *.x86_64 | *.aarch64) case $old in *".$arch") rm -f "$old" ;; esac ;;
                *) rm -f "$old" ;;
                esac
            done
            exec "$bin" "$program" "$@"
        fi
        rm -f "$tmp" "$bin"
    elif [ "$program" = async_wrapper ]; then
        fail "$native_why"
    fi
    command -v gzip >/dev/null 2>&1 || fail "$program needs gzip on the host to unpack its program: gzip is not installed or not in PATH"
    # No usable copy in the async dir (noexec mount, full disk):
    # one in a private temp dir, removed when it returns (a job it started runs on from memory).
    cache_why=$native_why native_why=
    if tmp=$(mktemp -d "${TMPDIR:-/tmp}/ansible-async.XXXXXX" 2>/dev/null) && unpack "$tmp/ansible-async"; then
        "$tmp/ansible-async" "$program" "$@"
        status=$?
        rm -rf "$tmp"
        exit "$status"
    fi
    [ -n "$tmp" ] && rm -rf "$tmp"
    native_failed "$cache_why; ${native_why:-could not create a temp dir in ${TMPDIR:-/tmp}}"
fi
# No native program runs here (only async_wrapper gets this far).
run_fallback "$@"
