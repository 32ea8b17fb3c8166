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

# --- find_program: not in async_wrapper ---
# find_program DIR ID [any]: sets native to the program async_wrapper left in DIR/.bin, if
# any: ansible-async-ID, or ansible-async-ID.<arch> for `uname -m`; with `any`, else another
# build's copy for this arch. Only the user's own files, not through a symlinked .bin.
find_program() {
    native= several= native_arch=
    [ -L "$1/.bin" ] && return 0 # a .bin the user does not control
    for candidate in "$1/.bin/ansible-async-$2" "$1/.bin/ansible-async-$2".*; do
        if [ -f "$candidate" ] && [ -x "$candidate" ] && [ -O "$candidate" ]; then
            [ -n "$native" ] && several=1
            native=$candidate
        fi
    done
    # One copy named by architecture may still be another host's (an async dir shared with
    # a host of another kind): only an unsuffixed copy is taken without asking uname.
    if [ -z "$several" ]; then
        case $native in
        */ansible-async-"$2") return 0 ;;
        "") [ -z "${3:-}" ] && return 0 ;;
        esac
    fi
    case $(uname -m 2>/dev/null) in
    x86_64 | amd64) native_arch=x86_64 ;;
    aarch64 | arm64) native_arch=aarch64 ;;
    *) native_arch=unknown ;;
    esac
    native=$1/.bin/ansible-async-$2.$native_arch
    [ -f "$native" ] && [ -x "$native" ] && [ -O "$native" ] && return 0
    native=
    [ -n "${3:-}" ] && [ "$native_arch" != unknown ] || return 0
    for candidate in "$1/.bin/ansible-async-"*".$native_arch"; do
        if [ -f "$candidate" ] && [ -x "$candidate" ] && [ -O "$candidate" ]; then
            native=$candidate
        fi
    done
}
# --- end of find_program ---
# --- end of common.sh ---
