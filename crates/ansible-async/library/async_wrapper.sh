#!/bin/sh
# async_wrapper - native replacement for ansible-core's async_wrapper module.
#
# ansible copies this file to the managed host and runs it with /bin/sh for every task
# that has `async:`. This text is followed by a native program, gzipped (statically
# linked, x86_64 Linux, no Python needed): ansible-async, which is async_wrapper,
# async_status and async_job in one. The script keeps one copy of that program per user,
# named by its content, in a private folder next to the job files:
#
#     <async dir>/.bin/ansible-async-<content id>
#
# where <async dir> is ANSIBLE_ASYNC_DIR (default ~/.ansible_async), and runs it with
# the arguments ansible gave. The copy is unpacked only when it is missing, so a normal
# call costs one exec; library/async_status runs the same copy. ansible needs this text
# to be at least 1 KiB long: it decides whether a module is a script or a binary from
# its first 1024 bytes, and only a script may start with an interpreter line. Nothing
# below the `exec` line is shell code.
#
# Debugging on a host: the job files are plain JSON in the async dir, one per job, named
# by the job id that ansible printed, each with a log <job id>.log beside it; the program
# also answers `ansible-async async_job list` there. See the project's README.

payload_size=@PAYLOAD_SIZE@   # bytes of gzipped program at the end of this file
payload_id=@PAYLOAD_ID@       # content id of the unpacked program

@COMMON@

expand_dir "${ANSIBLE_ASYNC_DIR:-"~/.ansible_async"}"
bin_dir=$dir/.bin
bin=$bin_dir/ansible-async-$payload_id
umask 077
for d in "$dir" "$bin_dir"; do
    if [ ! -d "$d" ]; then
        err=$(mkdir -p -m 700 "$d" 2>&1) || fail "could not create directory: $d - ${err#mkdir: }"
    fi
    if [ -L "$d" ] || [ ! -O "$d" ]; then
        fail "refusing to use async directory $d: it is a symbolic link or not owned by the running user"
    fi
done
if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
    command -v gzip >/dev/null 2>&1 || fail "async_wrapper needs gzip on the host to unpack its program"
    tmp=$bin_dir/.ansible-async-$payload_id.$$
    if ! { tail -c "$payload_size" "$0" | gzip -dc >"$tmp" && chmod 700 "$tmp" && mv -f "$tmp" "$bin"; }; then
        rm -f "$tmp"
        fail "could not install the async_wrapper program in $bin_dir"
    fi
    for old in "$bin_dir"/ansible-async-* "$bin_dir"/async_wrapper-*; do
        [ "$old" = "$bin" ] || rm -f "$old"
    done
fi
exec "$bin" async_wrapper "$@"
