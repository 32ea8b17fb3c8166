# --- common.sh: shared by the library/ scripts (assemble.sh puts it in place) ---
# json_string TEXT: TEXT as the inside of a JSON string; a control character (a path may hold
# one) becomes a space.
json_string() {
    printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\001-\037' ' '
}

fail() {
    printf '{"failed": true, "msg": "%s"}\n' "$(json_string "$1")"
    exit 1
}

# expand_dir DIR: sets dir to DIR with a leading ~, ~user, $HOME or ${HOME} expanded, as
# ansible passes the async dir unexpanded. ~, $HOME and ${HOME} are the effective user's
# passwd home (what ansible's own `echo ~user` gives on the host, whatever HOME says), $HOME only
# when the user has no passwd entry; ~user is user's passwd home. What cannot be expanded (no
# such user, no home) stays as it is, as the program leaves it (async_core::user::expand_user).
expand_dir() {
    dir=$1
    # shellcheck disable=SC2088,SC2016 # ~ and $HOME are text here
    case $dir in
    "~" | "~/"*) tail=${dir#"~"} ;;
    '${HOME}' | '${HOME}/'*) tail=${dir#'${HOME}'} ;;
    '$HOME' | '$HOME/'*) tail=${dir#'$HOME'} ;;
    "~"*)
        user=${dir%%/*}
        case $user in *[!A-Za-z0-9._~-]*) return ;; esac
        eval "home=$user"
        dir=$home${dir#"$user"}
        return
        ;;
    *) return ;;
    esac
    home=
    own_user
    case $user in
    "" | *[!A-Za-z0-9._-]*) ;;
    *) eval "home=~$user" ;;
    esac
    case $home in "" | "~"*) home=${HOME:-} ;; esac
    [ -n "$home" ] || return 0
    case $home in */) if [ -n "$tail" ]; then home=${home%/}; fi ;; esac
    dir=$home$tail
}
# own_user: sets user to the effective user's name, as `id -un` gives it. Without a fork where
# that name comes from /etc/passwd (nsswitch.conf's passwd line starts with `files`, or there
# is no nsswitch.conf): the first entry with the effective uid of /proc/self/status, among the
# first 64 (dash reads them a byte a syscall: 40 lines cost about what a fork of `id` costs).
# Else, and where the uid is not there, `id -un`.
own_user() {
    user= euid= first=files n=0
    { while read -r key _ euid _; do case $key in Uid:) break ;; esac; euid=; done </proc/self/status; } 2>/dev/null
    { while read -r key first _; do case $key in passwd:) break ;; esac; first=; done </etc/nsswitch.conf; } 2>/dev/null
    if [ -n "$euid" ] && [ "$first" = files ]; then
        { while IFS=: read -r pw_name _ pw_uid _; do
            case $pw_name in
            [+-]*) break ;; # NIS compat entries: id knows
            "#"*) ;;
            *) [ "$pw_uid" = "$euid" ] && user=$pw_name && return 0 ;;
            esac
            [ "$((n += 1))" -lt 64 ] || break
        done </etc/passwd; } 2>/dev/null
    fi
    user=$(id -un 2>/dev/null) || user=
}

# host_arch: sets host (as `uname -sm` says it, "" if that failed) and host_arch (the NAME of
# its program in crates/ansible-async/arches, "" if none). From /proc/sys/kernel/arch where
# there is one (Linux 6.1+): no fork.
host_arch() {
    { IFS= read -r host </proc/sys/kernel/arch && host="Linux $host"; } 2>/dev/null || host=$(uname -sm 2>/dev/null) || host=
    case $host in
    # @ARCH_CASES@: assemble.sh writes one line per architecture here
    *) host_arch= ;;
    esac
}

# --- cached_program: also in async_status ---
# cached_program DIR ID [any]: sets p to the program async_wrapper keeps in DIR/.bin for this
# host, ansible-async-ID.A; with `any`, else another build's for A. A is the architecture's NAME
# (crates/ansible-async/arches): host_arch's when it ran, else the kernel's own name for it,
# which is that NAME (/proc/sys/kernel/arch, Linux 6.1+: no fork; else `uname -m`). Only a
# regular, non-empty, executable file of the user's own, never through a symlinked .bin; when
# there is none, p is "" and the status 1.
cached_program() {
    a=${host_arch:-}
    [ -n "$a" ] || { read -r a </proc/sys/kernel/arch; } 2>/dev/null || a=$(uname -m 2>/dev/null)
    [ -L "$1/.bin" ] || for p in "$1/.bin/ansible-async-$2.$a" ${3:+"$1/.bin/ansible-async-"*".$a"}; do
        [ -f "$p" ] && [ -s "$p" ] && [ -x "$p" ] && [ -O "$p" ] && return
    done
    p=
    return 1
}
# --- end of cached_program ---
# --- end of common.sh ---
