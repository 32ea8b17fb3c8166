#!/bin/sh
@MODULE_KIND@
# @PROGRAM@ - native replacement for ansible-core's @PROGRAM@ module.
#
# ansible copies this file to the managed host and runs it with /bin/sh. This text (the
# launcher, a few KB) is followed by native programs, gzipped and statically linked (no
# Python, no shared libraries): ansible-async for Linux on each architecture of the list
# crates/ansible-async/arches, in its order (`payload` below); then the portable fallback's
# Python, deflated.
# ansible-async is async_wrapper, async_status and async_job in one. The script picks the
# one for this host's architecture and keeps one copy per user and architecture, named by
# the build (the release id is a hash of the programs), in a private folder next to the job
# files:
#
#     <async dir>/.bin/ansible-async-<release id>.<arch>
#
# where <async dir> is ANSIBLE_ASYNC_DIR (default ~/.ansible_async). A copy is unpacked
# only when it is missing (or empty, or not executable), and gets its name only once it is
# complete and ran here, so a copy under that name needs no check: a normal call costs one
# exec and no other process where the kernel names its architecture in /proc/sys/kernel/arch
# (else `uname`); library/async_status and library/async_job run the same copy. On other
# hosts async_wrapper runs its portable fallback. ansible needs this text to be at least
# 1 KiB long: it decides whether a module is a script or a binary from its first 1024 bytes,
# and only a script may start with an interpreter line. Nothing after the last line of shell
# code is text.
#
# Debugging on a host: the job files are plain JSON in the async dir, one per job, named
# by the job id that ansible printed, each with a log <job id>.log beside it; the program
# also answers `ansible-async-<release id>.<arch> async_job list` there. See the README.

program=@PROGRAM@
release_id=@PAYLOAD_ID@
# payload ARCH: sets gz, size and after for ARCH's program at the end of this file (they
# follow this text in the order of the list): its bytes gzipped, unpacked, and the gzipped
# bytes after it.
payload() {
    case $1 in
    # @PROGRAMS@: assemble.sh writes one line per architecture here
    esac
}
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
    host_arch
    case $host_arch:$host in
    :) native_failed "no native program for this host: uname is missing or failed" ;;
    :*) native_failed "no native program for this host ($host)" ;;
    *) arch=$host_arch && payload "$arch" ;;
    esac
fi

# cache_dirs: makes the async dir and its .bin when missing; sets native_why when they
# cannot hold the program. Whether the async dir may hold jobs is the program's to say: it
# runs from a temp dir then, and refuses the dir in its own words.
cache_dirs() {
    for d in "$dir" "$bin_dir"; do
        if [ ! -d "$d" ]; then
            # shellcheck disable=SC2174 # umask 077 covers the parents
            err=$(mkdir -p -m 700 "$d" 2>&1) || {
                native_why="cannot keep the program in $d: ${err#mkdir: }" && return 1
            }
        fi
        if [ -L "$d" ] || [ ! -O "$d" ]; then
            native_why="cannot keep the program in $d: a symbolic link, or not the running user's"
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
        # The usual call: the copy is there. It got its name only once complete and run (below),
        # and the name is the programs' content: no need to read it.
        if cached_program "$dir" "$release_id"; then
            exec "$p" "$program" "$@"
        fi
        command -v gzip >/dev/null 2>&1 || fail "$program needs gzip on the host to unpack its program: gzip is not installed or not in PATH"
        tmp=$bin_dir/.ansible-async-$release_id.$arch.$$
        if unpack "$tmp" && mv -f "$tmp" "$bin"; then
            # Drop this architecture's copies of other builds (another host's architecture may
            # share the async dir: those stay).
            for old in "$bin_dir"/ansible-async-*".$arch"; do
                [ "$old" = "$bin" ] || rm -f "$old"
            done
            exec "$bin" "$program" "$@"
        fi
        rm -f "$tmp" "$bin"
    fi
    command -v gzip >/dev/null 2>&1 || fail "$program needs gzip on the host to unpack its program: gzip is not installed or not in PATH"
    # No usable copy in the async dir (noexec mount, full disk, a dir the program will refuse):
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
