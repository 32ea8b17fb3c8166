#!/bin/sh
# async_job - job control for ansible async jobs on this host: list, terminate, gc, wait.
#
# A JSON-args module, like library/async_status: ansible writes the task's arguments into it,
# as one line of JSON, where the here-document below says, and with pipelining on feeds the
# whole text to /bin/sh over stdin in a single SSH command (no temp dir, no upload). So nothing
# here reads stdin: the rest of this text may still be in it.
#
# It runs the native program that library/async_wrapper unpacked on the host the first time
# an async task ran there as this user, <async dir>/.bin/ansible-async-<release id>.<arch>
# (this release's copy, else another release's for this architecture), as
# `ansible-async async_job --args-json JSON`. It looks in the async dir the arguments name,
# then in ANSIBLE_ASYNC_DIR and ~/.ansible_async. Where there is no copy, the answer is a failed
# result that says so. The arguments are only ever data here, never evaluated.
#
# Run by hand on a host (`sh async_job list`), it passes its command line to that program:
# the same as `<async dir>/.bin/ansible-async-<release id>.<arch> async_job list`.

payload_id=@PAYLOAD_ID@

@COMMON@

json=
IFS= read -r json <<'ANSIBLE_ASYNC_JOB_ARGS' || :
<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>
ANSIBLE_ASYNC_JOB_ARGS

# The async dirs to look in for the program: the one asked for, then the usual ones.
candidates=
by_hand=
case $json in
"<<"*)
    # Not written into by ansible: a person runs it; --async-dir DIR names the dir.
    by_hand=1
    next=
    for arg in "$@"; do
        if [ -n "$next" ]; then
            candidates=$arg next=
            break
        fi
        case $arg in
        --async-dir=*) candidates=${arg#--async-dir=} && break ;;
        --async-dir) next=1 ;;
        esac
    done
    ;;
*'"async_dir": "'*)
    # ansible's json.dumps: an unescaped '"' only delimits strings, so this is the value.
    candidates=${json#*\"async_dir\": \"}
    candidates=${candidates%%\"*}
    case $candidates in *\\*) candidates= ;; esac
    ;;
esac

host_arch
searched=
# shellcheck disable=SC2088 # ~ is expanded by expand_dir
for candidate in "$candidates" "${ANSIBLE_ASYNC_DIR:-}" "~/.ansible_async"; do
    [ -n "$candidate" ] || continue
    expand_dir "$candidate"
    case " $searched " in *" $dir/.bin "*) continue ;; esac
    searched=${searched:+"$searched "}$dir/.bin
    if [ -n "$host_arch" ] && cached_program "$dir" "$payload_id" any; then
        [ -n "$by_hand" ] && exec "$p" async_job "$@"
        exec "$p" async_job --args-json "$json" </dev/null
    fi
done

if [ -z "$host_arch" ]; then
    why="no native program for this host (${host:-uname failed})"
else
    why="the ansible-async program is not on this host for this user yet (looked in $searched). \
library/async_wrapper puts it there the first time an async task runs on the host as this user: \
run one first (e.g. ansible.builtin.command: /bin/true with \
async: 10 and poll: 0)"
fi
if [ -n "$by_hand" ]; then
    printf 'async_job: %s\n' "$why" >&2
    exit 1
fi
fail "async_job: $why"
