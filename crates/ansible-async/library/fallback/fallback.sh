# --- fallback.sh: the portable async_wrapper (assemble.sh puts it in place) ---
# run_fallback ARGS...: runs the job with the portable fallback, where no native program
# runs on the host: a Python program that the interpreter reads from the last
# @FALLBACK_SIZE@ bytes of this file, raw deflate (never a file on the host of its own).
# assemble.sh puts it there: the rules protocol-rules prints, then fallback/common.py and
# fallback/async_wrapper.py, packed. Every Python that runs ansible's modules has zlib
# (ansible's own payloads are zip files).
# ARGS are the wrapper's own arguments, either protocol. Never returns. Python: the one
# the module's #! line names when that is a python (the interpreter ansible chose for
# this host), else python3, python, python2 from PATH. Needs common.sh's fail() and the
# launcher's $self (this file); the launcher's $native_why, if set, goes to the job's log
# as the reason.
fallback_interpreter() {
    case ${1:-} in
    env | */env) fallback_py=${2:-} ;;
    *) fallback_py=${1:-} ;;
    esac
}

run_fallback() {
    fallback_py=
    # The module's interpreter: the first word of CMD (>= 2.21) or of the module's #! line.
    case ${3:-} in
    [Tt][Rr][Uu][Ee] | [Ff][Aa][Ll][Ss][Ee]) [ $# -ge 5 ] && fallback_py=$5 ;;
    *)
        if [ -n "${3:-}" ] && [ -r "$3" ] && IFS= read -r fallback_py <"$3"; then
            case $fallback_py in
            "#!"*) fallback_py=${fallback_py#"#!"} ;;
            *) fallback_py= ;;
            esac
        fi
        ;;
    esac
    # "/usr/bin/env python3 -u" -> python3; "/usr/bin/python3 -u" -> /usr/bin/python3
    set -f
    # shellcheck disable=SC2086 # split on purpose (no globbing)
    fallback_interpreter $fallback_py
    set +f
    case ${fallback_py##*/} in
    python*) ;;
    *) fallback_py= ;;
    esac
    # The launcher's reason for the fallback (its native_why), for the job's log.
    ASYNC_WRAPPER_FALLBACK_REASON=${native_why:-}
    export ASYNC_WRAPPER_FALLBACK_REASON
    # Python 2.7 and 3: reads the program from this file's end, then runs it with this file's
    # name gone from its sys.argv.
    fallback_start='import sys, zlib
with open(sys.argv.pop(1), "rb") as f:
    f.seek(-@FALLBACK_SIZE@, 2)
    program = compile(zlib.decompress(f.read(), -15), "async_wrapper", "exec")
del f
exec(program)'
    for fallback_try in $fallback_py python3 python python2; do
        # shellcheck disable=SC2015 # skip it when either test fails
        case $fallback_try in
        */*) [ -f "$fallback_try" ] && [ -x "$fallback_try" ] || continue ;;
        *) command -v "$fallback_try" >/dev/null 2>&1 || continue ;;
        esac
        # shellcheck disable=SC2093 # the first python found runs the job
        # shellcheck disable=SC2154 # self: set by the launcher (async_wrapper.sh)
        exec "$fallback_try" -c "$fallback_start" "$self" "$@"
    done
    [ -n "${native_why:-}" ] || native_why="no native program for this host ($(uname -sm 2>/dev/null || echo 'uname failed'))"
    fail "async_wrapper found no python to run its portable fallback ($native_why): install python3, or run the task without async"
}
# --- end of fallback.sh ---
