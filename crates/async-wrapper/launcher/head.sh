#!/bin/sh
# async_wrapper - native replacement for ansible-core's async_wrapper module.
#
# ansible copies this file to the managed host and runs it with /bin/sh for every task
# that has `async:`. This text is followed by a native program (statically linked,
# x86_64 Linux, no Python needed). The script keeps one copy of that program per user,
# named by its content, in a private folder next to the job files:
#
#     <async dir>/.bin/async_wrapper-<content id>
#
# where <async dir> is ANSIBLE_ASYNC_DIR (default ~/.ansible_async), and runs it with
# the arguments ansible gave. The copy is written only when it is missing, so a normal
# call costs one exec. ansible needs this text to be at least 1 KiB long: it decides
# whether a module is a script or a binary from its first 1024 bytes, and only a script
# may start with an interpreter line. Nothing below the `exec` line is shell code.
#
# Debugging on a host: the job files are plain JSON in the async dir, one per job, named
# by the job id that ansible printed; see the project's README.

payload_size=@PAYLOAD_SIZE@
payload_id=@PAYLOAD_ID@

fail() {
    msg=$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n\t' '  ')
    printf '{"failed": true, "msg": "%s"}\n' "$msg"
    exit 1
}

dir=${ANSIBLE_ASYNC_DIR:-"~/.ansible_async"}
case $dir in
"~" | "~/"*)
    [ -n "${HOME:-}" ] || fail "cannot expand $dir: HOME is not set"
    dir=$HOME${dir#"~"}
    ;;
"~"*)
    user=${dir%%/*}
    case $user in *[!A-Za-z0-9._~-]*) fail "cannot expand $dir: not a user name" ;; esac
    eval "home=$user"
    dir=$home${dir#"$user"}
    ;;
esac

bin_dir=$dir/.bin
bin=$bin_dir/async_wrapper-$payload_id
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
    tmp=$bin_dir/.async_wrapper-$payload_id.$$
    if ! { tail -c "$payload_size" "$0" >"$tmp" && chmod 700 "$tmp" && mv -f "$tmp" "$bin"; }; then
        rm -f "$tmp"
        fail "could not install the async_wrapper program in $bin_dir"
    fi
    for old in "$bin_dir"/async_wrapper-*; do
        [ "$old" = "$bin" ] || rm -f "$old"
    done
fi
exec "$bin" "$@"
