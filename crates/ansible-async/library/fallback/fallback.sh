# --- fallback.sh: the portable async_wrapper (assemble.sh puts it in place) ---
# run_fallback ARGS...: runs the job with the portable fallback, the Python program in the
# here-document below (piped to the interpreter: never a file on the host), where no
# native program runs on the host. assemble.sh writes the program there: the rules
# protocol-rules prints, then fallback/common.py and fallback/async_wrapper.py.
# ARGS are the wrapper's own arguments, either protocol. Never returns. Python: the one
# the module's #! line names when that is a python (the interpreter ansible chose for
# this host), else python3, python, python2 from PATH. Needs common.sh's fail(); the
# launcher's $native_why, if set, goes to the job's log as the reason.
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
    for fallback_try in $fallback_py python3 python python2; do
        # shellcheck disable=SC2015 # skip it when either test fails
        case $fallback_try in
        */*) [ -f "$fallback_try" ] && [ -x "$fallback_try" ] || continue ;;
        *) command -v "$fallback_try" >/dev/null 2>&1 || continue ;;
        esac
        # shellcheck disable=SC2093 # the first python found runs the job
        exec "$fallback_try" - "$@" <<'ASYNC_WRAPPER_FALLBACK_PY'
@FALLBACK_PY@
ASYNC_WRAPPER_FALLBACK_PY
    done
    [ -n "${native_why:-}" ] || native_why="no native program for this host ($(uname -sm 2>/dev/null || echo 'uname failed'))"
    fail "async_wrapper found no python to run its portable fallback ($native_why): install python3, or run the task without async"
}
# --- end of fallback.sh ---
