# --- fallback.sh: the portable async_wrapper for hosts without a native program ---
# A placeholder until the portable fallback lands: it only says why nothing can run.
# run_fallback ARGS...: never returns. native_why (set by the launcher) says why the
# native program could not run.
run_fallback() {
    printf '{"failed": true, "msg": "%s"}\n' \
        "$(json_string "no native async_wrapper for this host ($(uname -m 2>/dev/null || echo 'uname is missing')) and no fallback: ${native_why:-}")"
    exit 1
}
# --- end of fallback.sh ---
