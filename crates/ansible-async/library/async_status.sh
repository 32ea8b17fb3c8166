#!/bin/sh
# WANT_JSON - tells ansible to hand this module its arguments as a JSON file.
#
# async_status - native replacement for ansible-core's async_status module.
#
# ansible copies this small script to the host for every status check of an async job
# (each `poll:` round, each async_status task). It runs the native program that
# library/async_wrapper left on the host, <async dir>/.bin/ansible-async-<content id>, so
# a check ships a few kilobytes instead of a whole program. Where that copy is missing
# (the cache was wiped, or the job was started by ansible's own async_wrapper), the script
# answers by itself: the job file is JSON that only needs a key or two added.

payload_id=@PAYLOAD_ID@

@COMMON@

args=${1:-}
[ -n "$args" ] && [ -r "$args" ] ||
    fail "async_status is an ansible module: ansible runs it as async_status ARGS_FILE"

# arg KEY: a string argument from ansible's flat JSON arguments file.
arg() {
    sed -n 's/.*"'"$1"'": *"\([^"\\]*\)".*/\1/p' "$args" | head -n 1
}

# The async dir from the arguments without starting a process: ansible writes them as one
# line of json.dumps output. (Anything unusual falls through to the slower path below.)
IFS= read -r json <"$args" || :
case $json in
*'"_async_dir": "'*)
    async_dir=${json#*\"_async_dir\": \"}
    async_dir=${async_dir%%\"*}
    ;;
*) async_dir= ;;
esac
expand_dir "${async_dir:-${ANSIBLE_ASYNC_DIR:-"~/.ansible_async"}}"
# One copy per architecture (<id>.x86_64, <id>.aarch64); where an async dir holds both
# (shared by hosts of both), this host's.
bin=
for candidate in "$dir/.bin/ansible-async-$payload_id".*; do
    [ -f "$candidate" ] && [ -x "$candidate" ] || continue
    if [ -n "$bin" ]; then
        case $(uname -m 2>/dev/null) in
        x86_64 | amd64) bin=$dir/.bin/ansible-async-$payload_id.x86_64 ;;
        aarch64 | arm64) bin=$dir/.bin/ansible-async-$payload_id.aarch64 ;;
        *) bin= ;;
        esac
        break
    fi
    bin=$candidate
done
if [ -n "$bin" ] && [ -f "$bin" ] && [ -x "$bin" ] && [ -O "$bin" ] && [ ! -L "$dir/.bin" ]; then
    exec "$bin" async_status "$args"
fi

# No native program on this host: the same answers, from the job file as it is.
async_dir=$(arg _async_dir)
expand_dir "${async_dir:-${ANSIBLE_ASYNC_DIR:-"~/.ansible_async"}}"
job_dir=$dir
jid=$(arg jid)
mode=$(arg mode)
case $jid in
"" | .* | *[!A-Za-z0-9._-]*)
    fail "invalid job id \"$jid\": only letters, digits, '.', '_' and '-' are allowed, not starting with '.'"
    ;;
esac
case ${mode:=status} in
status | cleanup) ;;
*) fail "value of mode must be one of: cleanup, status, got: $mode" ;;
esac
job=$job_dir/$jid
if [ ! -e "$job" ] && [ ! -L "$job" ]; then
    printf '{"failed": true, "msg": "could not find job", "ansible_job_id": "%s", "started": true, "finished": true}\n' "$jid"
    exit 1
fi
if [ "$mode" = cleanup ]; then
    rm -f "$job" "$job.log" || fail "could not remove job file $job"
    printf '{"ansible_job_id": "%s", "erased": "%s"}\n' "$jid" "$(json_string "$job")"
    exit 0
fi
[ -L "$job" ] && fail "refusing to read job file $job: it is a symbolic link"
content=$(sed 's/[[:space:]]*$//' "$job" 2>/dev/null)
if [ -z "$(printf '%s' "$content" | tr -d '[:space:]')" ]; then
    # Being written: the job runs.
    printf '{"results_file": "%s", "ansible_job_id": "%s", "started": true, "finished": false}\n' \
        "$(json_string "$job")" "$jid"
    exit 0
fi
case $content in
"{"*"}") ;;
*)
    printf '{"failed": true, "msg": "Could not parse job output: %s", "ansible_job_id": "%s", "started": true, "finished": true}\n' \
        "$(json_string "$content")" "$jid"
    exit 1
    ;;
esac
# A running job's file is the small marker the wrappers write, with "started" true.
if printf '%s' "$content" | grep -Eq '"started": ?(true|1)[,}]'; then
    if printf '%s' "$content" | grep -q '"finished"'; then
        printf '%s\n' "$content"
    else
        printf '%s, "finished": false}\n' "${content%\}}"
    fi
    exit 0
fi
case $content in
"{}") printf '{"finished": true, "ansible_job_id": "%s"}\n' "$jid" ;;
*) printf '%s, "finished": true, "ansible_job_id": "%s"}\n' "${content%\}}" "$jid" ;;
esac
