# --- common.sh: shared by the library/ scripts (assemble.sh puts it in place) ---
json_string() {
    printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n\t\r' '   '
}

fail() {
    printf '{"failed": true, "msg": "%s"}\n' "$(json_string "$1")"
    exit 1
}

# expand_dir DIR: sets dir to DIR with a leading ~ or ~user expanded, as ansible's
# async dir setting is passed unexpanded.
expand_dir() {
    dir=$1
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
}
# --- end of common.sh ---
