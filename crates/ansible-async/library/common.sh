# --- common.sh: shared by the library/ scripts (assemble.sh puts it in place) ---
json_string() {
    printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n\t\r' '   '
}

fail() {
    printf '{"failed": true, "msg": "%s"}\n' "$(json_string "$1")"
    exit 1
}

# expand_dir DIR: sets dir to DIR with a leading ~, ~user, $HOME or ${HOME} expanded, as
# ansible passes the async dir unexpanded. ~, $HOME and ${HOME} are the effective user's
# passwd home (what ansible's own `echo ~user` gives on the host, whatever HOME says), $HOME only
# when the user has no passwd entry; ~user is user's passwd home.
expand_dir() {
    dir=$1
    # shellcheck disable=SC2088,SC2016 # ~ and $HOME are text here
    case $dir in
    "~" | "~/"*) tail=${dir#"~"} ;;
    '${HOME}' | '${HOME}/'*) tail=${dir#'${HOME}'} ;;
    '$HOME' | '$HOME/'*) tail=${dir#'$HOME'} ;;
    "~"*)
        user=${dir%%/*}
        case $user in *[!A-Za-z0-9._~-]*) fail "cannot expand $dir: not a user name" ;; esac
        eval "home=$user"
        dir=$home${dir#"$user"}
        return
        ;;
    *) return ;;
    esac
    home=
    user=$(id -un 2>/dev/null) || user=
    case $user in
    "" | *[!A-Za-z0-9._-]*) ;;
    *) eval "home=~$user" ;;
    esac
    case $home in "" | "~"*) home=${HOME:-} ;; esac
    [ -n "$home" ] || fail "cannot expand $1: the user has no home directory and HOME is not set"
    case $home in */) if [ -n "$tail" ]; then home=${home%/}; fi ;; esac
    dir=$home$tail
}
# --- end of common.sh ---
