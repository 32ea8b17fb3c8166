#!/bin/sh
# async_status - native replacement for ansible-core's async_status module.
#
# ansible runs this small script for every status check of an async job (each `poll:`
# round, each async_status task, each cleanup). It is a JSON-args module: ansible writes the
# task's arguments into it, as one line of JSON, where the here-document below says, and
# with pipelining on feeds the whole text to /bin/sh over stdin in a single SSH command (no
# temp dir, no upload). So nothing here reads stdin: the rest of this text may still be in it.
#
# It runs the native program that library/async_wrapper left on the host,
# <async dir>/.bin/ansible-async-<release id>[.<arch>], so a check costs one exec. Where that
# copy is missing (the cache was wiped, or the job was started by ansible's own
# async_wrapper), the script answers by itself: the job file is JSON that only needs a key
# or two added. The arguments are only ever data here: parsed by the shell functions below,
# never evaluated.

payload_id=@PAYLOAD_ID@

@COMMON@

LC_ALL=C # bytes, whatever the host's locale
export LC_ALL
nl='
'
tab='	'

json=
IFS= read -r json <<'ANSIBLE_ASYNC_STATUS_ARGS' || :
<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>
ANSIBLE_ASYNC_STATUS_ARGS

# --- a JSON reader: $rest is the text still to read --------------------------------------

j_ws() {
    while :; do
        case $rest in
        " "* | "$tab"* | "$nl"*) rest=${rest#?} ;;
        *) return 0 ;;
        esac
    done
}

# j_string: reads a string ($rest starts at its opening quote) into $str, decoded.
j_string() {
    rest=${rest#\"}
    raw=
    while :; do
        case $rest in *\"*) ;; *) return 1 ;; esac
        raw=$raw${rest%%\"*}
        rest=${rest#*\"}
        # That quote ends the string unless an odd number of backslashes precedes it.
        t=$raw odd=
        while :; do
            case $t in
            *\\) t=${t%\\} && case $odd in "") odd=1 ;; *) odd= ;; esac ;;
            *) break ;;
            esac
        done
        [ -z "$odd" ] && break
        raw=$raw\"
    done
    j_unescape
}

# j_byte N: appends the byte N to $str.
j_byte() {
    # shellcheck disable=SC2059 # an octal escape: digits only
    case $1 in
    10) str=$str$nl ;;
    0) return 1 ;; # a shell string cannot hold NUL
    *) str=$str$(printf "\\$(($1 >> 6 & 7))$(($1 >> 3 & 7))$(($1 & 7))") ;;
    esac
}

j_unescape() {
    s=$raw str=
    case $s in *[[:cntrl:]]*) return 1 ;; esac # JSON escapes control characters
    while :; do
        case $s in
        *\\*) ;;
        *) str=$str$s && return 0 ;;
        esac
        str=$str${s%%\\*}
        s=${s#*\\}
        case $s in
        [\"\\/]*) str=$str${s%"${s#?}"} ;;
        n*) str=$str$nl ;;
        t*) str=$str$tab ;;
        r*) j_byte 13 ;;
        b*) j_byte 8 ;;
        f*) j_byte 12 ;;
        u[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]*)
            hex=${s#u}
            hex=${hex%"${hex#????}"}
            s=${s#?????}
            c=$((0x$hex))
            if [ "$c" -ge 55296 ] && [ "$c" -le 57343 ]; then # a UTF-16 surrogate pair
                case $s in
                \\u[Dd][C-Fc-f][0-9A-Fa-f][0-9A-Fa-f]*) ;;
                *) return 1 ;;
                esac
                [ "$c" -le 56319 ] || return 1
                hex=${s#??}
                hex=${hex%"${hex#????}"}
                s=${s#??????}
                c=$(((c - 55296) * 1024 + 0x$hex - 56320 + 65536))
            fi
            if [ "$c" -lt 128 ]; then
                j_byte "$c" || return 1
            elif [ "$c" -lt 2048 ]; then
                j_byte $((192 | c >> 6)) && j_byte $((128 | c & 63))
            elif [ "$c" -lt 65536 ]; then
                j_byte $((224 | c >> 12)) && j_byte $((128 | c >> 6 & 63)) && j_byte $((128 | c & 63))
            else
                j_byte $((240 | c >> 18)) && j_byte $((128 | c >> 12 & 63)) &&
                    j_byte $((128 | c >> 6 & 63)) && j_byte $((128 | c & 63))
            fi
            continue
            ;;
        *) return 1 ;;
        esac
        s=${s#?}
    done
}

# j_number: reads a number into $str (its text).
j_number() {
    str=${rest%%[!0-9eE.+-]*}
    rest=${rest#"$str"}
    n=${str#-}
    case $n in
    0*) n=${n#0} ;;
    [1-9]*) n=${n#"${n%%[!0-9]*}"} ;;
    *) return 1 ;;
    esac
    case $n in .[0-9]*) n=${n#.} && n=${n#"${n%%[!0-9]*}"} ;; esac
    case $n in [eE]*)
        n=${n#?}
        n=${n#[+-]}
        case $n in [0-9]*) n=${n#"${n%%[!0-9]*}"} ;; *) return 1 ;; esac
        ;;
    esac
    [ -z "$n" ]
}

# j_value: reads one value; $type says which kind, $str holds a string's or number's text.
j_value() {
    j_ws
    case $rest in
    \"*) type=string && j_string ;;
    true*) type=true rest=${rest#true} ;;
    false*) type=false rest=${rest#false} ;;
    null*) type=null rest=${rest#null} ;;
    [-0-9]*) type=number && j_number ;;
    \[* | \{*) j_container ;;
    *) return 1 ;;
    esac
}

# j_container: reads an array or an object, nested ones too (their contents are not kept).
# $stack holds the closing brackets of the containers being read, innermost first.
j_container() {
    case $rest in \[*) stack=]$stack ;; *) stack=\}$stack ;; esac
    rest=${rest#?}
    j_ws
    case $rest in "${stack%"${stack#?}"}"*) rest=${rest#?} && stack=${stack#?} && type=container && return 0 ;; esac
    while :; do
        case $stack in
        \}*)
            j_ws
            case $rest in \"*) j_string || return 1 ;; *) return 1 ;; esac
            j_ws
            case $rest in :*) rest=${rest#:} ;; *) return 1 ;; esac
            ;;
        esac
        j_value || return 1
        j_ws
        case $rest in
        ,*) rest=${rest#,} ;;
        "${stack%"${stack#?}"}"*) rest=${rest#?} && stack=${stack#?} && type=container && return 0 ;;
        *) return 1 ;;
        esac
    done
}

# --- the arguments -------------------------------------------------------------------------

# read_args: the arguments ansible wrote into $json. Sets jid, mode and async_dir, with
# their kinds in jid_kind, mode_kind, async_dir_kind (string, number, null, true, false,
# container; empty when absent), and unsupported (other keys); fails with $args_error when
# the text is not a JSON object.
read_args() {
    jid= mode= async_dir= jid_kind= mode_kind= async_dir_kind= unsupported= stack=
    rest=$json
    j_ws
    case $rest in
    \{*) ;;
    *)
        if j_value && j_ws && [ -z "$rest" ]; then
            args_error="the module arguments are not a JSON object"
        else
            args_error="the module arguments are not valid JSON"
        fi
        return 1
        ;;
    esac
    args_error="the module arguments are not valid JSON"
    j_container || return 1 # the whole object first; then its keys, one by one
    j_ws
    [ -z "$rest" ] || return 1
    rest=${json#*\{}
    j_ws
    case $rest in \}*) return 0 ;; esac
    while :; do
        j_ws
        j_string
        key=$str
        j_ws
        rest=${rest#:}
        j_value
        case $type in string | number) value=$str ;; *) value= ;; esac
        case $key in
        jid) jid=$value jid_kind=$type ;;
        mode) mode=$value mode_kind=$type ;;
        _async_dir) async_dir=$value async_dir_kind=$type ;;
        _ansible_*) ;;
        *) unsupported=${unsupported:+"$unsupported, "}$key ;;
        esac
        j_ws
        case $rest in ,*) rest=${rest#,} ;; *) return 0 ;; esac
    done
}

# check_args: fails with $args_error, as the program does, when the arguments are wrong.
check_args() {
    if [ -n "$unsupported" ]; then
        args_error="Unsupported parameters for (async_status) module: $unsupported. Supported parameters include: jid, mode."
        return 1
    fi
    for key in jid mode _async_dir; do
        case $key in jid) kind=$jid_kind ;; mode) kind=$mode_kind ;; *) kind=$async_dir_kind ;; esac
        case $kind in
        "" | string | number | null) ;;
        container) args_error="argument '$key' must be a string, not a list or an object" && return 1 ;;
        *) args_error="argument '$key' must be a string, not $kind" && return 1 ;;
        esac
        case $key$kind in
        jid | jidnull) args_error="missing required arguments: jid" && return 1 ;;
        esac
    done
    case $mode in
    "" | status | cleanup) ;;
    *) args_error="value of mode must be one of: cleanup, status, got: $mode" && return 1 ;;
    esac
}

# json_quote TEXT: sets $quoted to TEXT as the inside of a JSON string.
json_quote() {
    s=$1 quoted=
    while [ -n "$s" ]; do
        rest=${s#?}
        c=${s%"$rest"}
        s=$rest
        case $c in
        \\ | \") quoted=$quoted\\$c ;;
        "$nl") quoted=$quoted'\n' ;;
        "$tab") quoted=$quoted'\t' ;;
        [[:cntrl:]]) quoted=$quoted$(printf '\\u%04x' "'$c") ;;
        *) quoted=$quoted$c ;;
        esac
    done
}

# --- run the program, or answer from the job file ------------------------------------------

# The usual case first, without reading the whole JSON: an async dir without escapes (an
# unescaped '"' in ansible's json.dumps output only delimits strings, so this is the key).
case $json in
*'"_async_dir": "'*)
    async_dir=${json#*\"_async_dir\": \"}
    async_dir=${async_dir%%\"*}
    case $async_dir in
    "" | *\\*) ;;
    *)
        expand_dir "$async_dir"
        find_program "$dir" "$payload_id"
        [ -n "$native" ] && exec "$native" async_status --args-json "$json" </dev/null
        ;;
    esac
    ;;
esac
read_args
parsed=$?
if [ "$parsed" = 0 ] && [ -n "$async_dir" ] && [ "$async_dir_kind" != container ]; then
    expand_dir "$async_dir"
else
    expand_dir "${ANSIBLE_ASYNC_DIR:-"~/.ansible_async"}"
fi
find_program "$dir" "$payload_id"
if [ -n "$native" ]; then
    exec "$native" async_status --args-json "$json" </dev/null
fi

# No native program on this host: the same answers, from the job file as it is.
case $json in
"<<"*) fail "async_status is an ansible module: ansible writes its arguments into it and runs it" ;;
esac
[ "$parsed" = 0 ] || fail "$args_error"
check_args || fail "$args_error"
job_dir=$dir
if [ -z "$jid" ]; then
    why="it is empty"
elif [ "${#jid}" -gt 128 ]; then
    why="it is longer than 128 characters"
else
    case $jid in
    .*) why="it starts with '.'" ;;
    */*) why="it contains '/'" ;;
    *[!A-Za-z0-9._-]*) why="only letters, digits, '.', '_' and '-' are allowed" ;;
    *) why= ;;
    esac
fi
if [ -n "$why" ]; then
    json_quote "$jid"
    id=$quoted
    json_quote "invalid job id \"$id\": $why"
    printf '{"failed": true, "msg": "%s", "ansible_job_id": "%s"}\n' "$quoted" "$id"
    exit 1
fi
# Without the program only _async_dir is searched (the program also looks in the user's own
# re-anchored dirs); the answer names it as the program does.
json_quote "$dir"
searched=$quoted
not_found() {
    printf '{"failed": true, "msg": "could not find job", "searched": ["%s"], "ansible_job_id": "%s", "started": true, "finished": true}\n' \
        "$searched" "$jid"
    exit 1
}
case $job_dir in -*) job_dir=./$job_dir ;; esac
[ -e "$job_dir" ] || [ -L "$job_dir" ] || not_found
json_quote "$job_dir"
if [ -L "$job_dir" ]; then
    fail "refusing to use async directory $job_dir: it is a symbolic link"
elif [ ! -d "$job_dir" ]; then
    fail "refusing to use async directory $job_dir: it is not a directory"
elif [ ! -O "$job_dir" ]; then
    fail "refusing to use async directory $job_dir: it is not owned by the running user"
fi
case $(ls -ldn "$job_dir") in
?????w* | ????????w*) fail "refusing to use async directory $job_dir: other users can write to it" ;;
esac
job=$job_dir/$jid
json_quote "$job"
path=$quoted
[ -e "$job" ] || [ -L "$job" ] || not_found
if [ "${mode:-status}" = cleanup ]; then
    rm -f "$job" "$job.log" || fail "could not remove job file $job"
    printf '{"ansible_job_id": "%s", "erased": "%s"}\n' "$jid" "$path"
    exit 0
fi
[ -L "$job" ] && fail "refusing to read job file $job: it is a symbolic link"
content=$(sed 's/[[:space:]]*$//' "$job" 2>/dev/null)
if [ -z "$(printf '%s' "$content" | tr -d '[:space:]')" ]; then
    # Being written: the job runs.
    printf '{"results_file": "%s", "ansible_job_id": "%s", "started": true, "finished": false}\n' "$path" "$jid"
    exit 0
fi
case $content in
"{"*"}") ;;
*)
    json_quote "$content"
    printf '{"failed": true, "msg": "Could not parse job output: %s", "ansible_job_id": "%s", "results_file": "%s", "started": true, "finished": true}\n' \
        "$quoted" "$jid" "$path"
    exit 1
    ;;
esac
# A running job's file is the small marker the wrappers write, with "started" true.
if printf '%s' "$content" | grep -Eq '"started": ?(true|1)[,}]'; then
    # Asked for: a job with a lease has it renewed (its file's time is now).
    case $content in *'"lease":'*) touch -c "$job" 2>/dev/null ;; esac
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
