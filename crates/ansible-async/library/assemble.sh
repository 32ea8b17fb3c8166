#!/bin/sh
# Builds library/ from the ansible-async programs, one per architecture of the list
# crates/ansible-async/arches (the Makefile passes them in its order), and the protocol's rules.
# Usage: assemble.sh LIBRARY_DIR rules=RULES pack=PACK NAME=PROGRAM...   (e.g. x86_64=PROGRAM aarch64=PROGRAM)
#
#   async_wrapper  launcher script (async_wrapper.sh, with the portable fallback's start)
#                  + the programs, gzipped, in the list's order
#                  + the portable fallback's Python, deflated
#   async_status   a JSON-args script (async_status.sh) that runs the program async_wrapper
#                  installed on the host; where it is missing, the host's Python answers
#   async_job      a JSON-args script (async_job.sh) that runs that program, and says what
#                  to do where it is missing
#
# RULES is what `protocol-rules --python` prints: the protocol's texts and bounds as the
# native program has them. Each Python part (fallback/async_wrapper.py, carried as text;
# fallback/async_status.py, carried deflated and base64-encoded) is those rules, a PROGRAM
# line, fallback/common.py and the part itself, packed by fallback/pack.awk (no comments,
# no rules the part does not name). With ASSEMBLE_PYTHON_OUT=DIR set, each part is also
# written there as it is joined and as it is packed (for `make lint`).
#
# PACK is the payload-pack tool (crates/payload-pack): gzip's format and raw deflate, smaller
# than gzip -9's. The output depends only on the inputs: no dates, no paths.
set -eu
library=$1
shift
here=$(dirname "$0")
# The list: NAME SPELLINGS TARGET a line (# comments). arches: the names, in order.
arches=$(awk '!/^#/ && NF { names = names sep $1; sep = " " } END { print names }' "$here/../arches")
# A NAME is also its first spelling, the kernel's own (async_status looks a copy up by it).
awk '!/^#/ && NF && !(NF == 3 && $1 ~ /^[a-z][a-z0-9_]*$/ && $2 ~ /^[a-z0-9_]+(\|[a-z0-9_]+)*$/ &&
    index($2 "|", $1 "|") == 1) {
    print "assemble.sh: " FILENAME ":" FNR ": want NAME NAME|SPELLING... TARGET" > "/dev/stderr"; bad = 1
} END { exit bad }' "$here/../arches"
usage="usage: assemble.sh LIBRARY_DIR rules=RULES pack=PACK$(for a in $arches; do printf ' %s=PROGRAM' "$a"; done)"
rules=
for arg in "$@"; do
    case " rules pack $arches " in
    *" ${arg%%=*} "*) eval "program_${arg%%=*}=\${arg#*=}" ;;
    *) echo "assemble.sh: unknown argument $arg" >&2 && echo "$usage" >&2 && exit 2 ;;
    esac
done
program() { eval "echo \"\${program_$1:-}\""; } # program ARCH: its file
rules=$(program rules)
pack=$(program pack)
for a in rules pack $arches; do
    [ -f "$(program "$a")" ] || { echo "$usage" >&2 && exit 2; }
done

size() { wc -c <"$1" | tr -d ' '; }

# What a failed run leaves behind goes; the finished files are renamed before exit.
trap 'for a in $arches; do rm -f "$library/.$a.gz"; done; rm -f "$library/.async_wrapper.tmp" \
    "$library/.async_job.tmp" "$library/.async_status.tmp" "$library/.async_status.flat" "$library/.programs.tmp" "$library/.arch_cases.tmp" \
    "$library/.async_wrapper.py" "$library/.async_status.py" "$library/.fallback.deflate"' EXIT
# python_part NAME OUTPUT: the Python part NAME (async_wrapper or async_status), packed.
python_part() {
    {
        cat "$rules"
        printf 'PROGRAM = "%s"\n' "$1"
        cat "$here/fallback/common.py" "$here/fallback/$1.py"
    } >"$2.joined"
    awk -f "$here/fallback/pack.awk" "$2.joined" "$2.joined" >"$2"
    if [ -n "${ASSEMBLE_PYTHON_OUT:-}" ]; then
        mkdir -p "$ASSEMBLE_PYTHON_OUT"
        cp "$2.joined" "$ASSEMBLE_PYTHON_OUT/$1.py"
        cp "$2" "$ASSEMBLE_PYTHON_OUT/$1.packed.py"
    fi
    rm -f "$2.joined"
}
# One id for the whole build: the programs' content. Every script gets the same.
id=$(for a in $arches; do cat "$(program "$a")"; done | sha256sum | cut -c1-16)
python_part async_wrapper "$library/.async_wrapper.py"
python_part async_status "$library/.async_status.py"
# The fallback's Python comes last in async_wrapper, after the programs.
"$pack" deflate "$library/.async_wrapper.py" >"$library/.fallback.deflate"
total=$(size "$library/.fallback.deflate")
for a in $arches; do
    "$pack" gzip "$(program "$a")" >"$library/.$a.gz"
    total=$((total + $(size "$library/.$a.gz")))
done

# From the list, for the scripts. The launcher's payload cases: the bytes of each program
# gzipped, unpacked, and the bytes after it (they follow the launcher text in order, then the
# fallback).
after=$total
for a in $arches; do
    gz=$(size "$library/.$a.gz")
    after=$((after - gz))
    printf '    %s) gz=%s size=%s after=%s ;;\n' "$a" "$gz" "$(size "$(program "$a")")" "$after"
done >"$library/.programs.tmp"
# common.sh's host_arch: the `uname -sm` of each architecture (Linux and its spellings).
awk '!/^#/ && NF { s = $2; gsub(/\|/, "|\"Linux \"", s); print "    \"Linux \"" s ") host_arch=" $1 " ;;" }' \
    "$here/../arches" >"$library/.arch_cases.tmp"

# Raw deflate, base64.
status_py=$("$pack" deflate "$library/.async_status.py" | base64 | tr -d '\n')

# strip_comments: a script without its comment lines but the opening block (what the file
# is, for a person who finds it on a host) and shellcheck's directives (`make lint` checks
# the scripts as shipped): every call ships the script, and comments were half of its text.
# No script's here-document or string holds a line that starts with #.
strip_comments() {
    awk 'NR == 1 { head = 1 } head && /^#/ { print; next } { head = 0 } !/^[ \t]*#/ || /^[ \t]*# shellcheck /'
}

# script TEMPLATE OUTPUT PROGRAM FALLBACK MODULE_KIND: the template with common.sh, the
# fallback fragment (a file, or /dev/null; the deflated fallback's size at @FALLBACK_SIZE@), the
# tables from the list and the ids filled in. async_status, which must stay small, gets only
# common.sh's sections marked "also in async_status".
script() {
    awk -v common="$here/common.sh" -v fallback="$4" -v kind="$5" -v program="$3" \
        -v programs="$library/.programs.tmp" -v arch_cases="$library/.arch_cases.tmp" '
        $0 == "@COMMON@" {
            # async_status gets only the sections marked for it.
            skip = program == "async_status"
            while ((getline line < common) > 0) {
                if (line ~ /^# --- .*: also in async_status ---$/) skip = 0
                if (skip) {
                } else if (line ~ /^ *# @ARCH_CASES@/) {
                    while ((getline case_line < arch_cases) > 0) print case_line
                    close(arch_cases)
                } else print line
                if (line ~ /^# --- end of /) skip = program == "async_status"
            }
            next
        }
        $0 == "@FALLBACK@" {
            while ((getline line < fallback) > 0) print line
            next
        }
        $0 == "@MODULE_KIND@" { print kind; next }
        /^ *# @PROGRAMS@/ { while ((getline line < programs) > 0) print line; next }
        { print }
    ' "$here/$1" | strip_comments | sed -e "s/@PAYLOAD_ID@/$id/" -e "s/@PROGRAM@/$3/g" -e "s|@STATUS_PY@|$status_py|" \
        -e "s/@FALLBACK_SIZE@/$(size "$library/.fallback.deflate")/" >"$2"
}

script async_wrapper.sh "$library/.async_wrapper.tmp" async_wrapper "$here/fallback/fallback.sh" \
    "# ansible runs this as an old-style module: the arguments come on the command line."
script async_status.sh "$library/.async_status.tmp" async_status /dev/null ""
# Every poll ships async_status, which must fit in 4 KB: no indentation, no blank lines (its one
# here-document is indented by nothing).
sed -e 's/^ *//' -e '/^$/d' "$library/.async_status.tmp" >"$library/.async_status.flat"
mv -f "$library/.async_status.flat" "$library/.async_status.tmp"
script async_job.sh "$library/.async_job.tmp" async_job /dev/null ""

head_size=$(size "$library/.async_wrapper.tmp")
if [ "$head_size" -lt 1024 ]; then
    echo "assemble.sh: the launcher text async_wrapper is $head_size bytes; ansible needs at least 1024" >&2
    exit 1
fi
# ansible searches a whole module file for these markers (ansible/executor/module_common.py)
# and would treat it as another kind of module if one appeared. async_status and async_job
# carry <<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>> on purpose, once: ansible writes the arguments
# there and pipelines them; WANT_JSON would make ansible pass an arguments file instead.
markers='<<INCLUDE_ANSIBLE_MODULE_(COMMON|JSON_ARGS)>>|# POWERSHELL_COMMON'
markers="$markers|(from|import) +(\\.{2,} *module_utils|ansible_collections\\.|ansible\\.module_utils)"
markers="$markers|#Requires -(Module|Version)|#AnsibleRequires -"
json_args='<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>'
set -- "$library/.async_wrapper.tmp"
for a in $arches; do set -- "$@" "$library/.$a.gz"; done
set -- "$@" "$library/.fallback.deflate"
for file in "$@" "$library/.async_status.tmp" "$library/.async_job.tmp"; do
    found=$(grep -aoiE -- "$markers" "$file") || :
    json_args_script=
    case $file in "$library/.async_status.tmp" | "$library/.async_job.tmp") json_args_script=1 ;; esac
    [ -n "$json_args_script" ] && [ "$found" = "$json_args" ] && found=
    if [ -n "$found" ] || { [ -n "$json_args_script" ] && grep -aq WANT_JSON "$file"; }; then
        echo "assemble.sh: ansible would misread $file because of: ${found:-WANT_JSON}" >&2
        exit 1
    fi
done
if grep -aq WANT_JSON "$@"; then
    echo "assemble.sh: WANT_JSON in async_wrapper would change how ansible runs it" >&2
    exit 1
fi

head_size=$(size "$library/.async_wrapper.tmp")
for a in $arches; do cat "$library/.$a.gz"; done >>"$library/.async_wrapper.tmp"
cat "$library/.fallback.deflate" >>"$library/.async_wrapper.tmp"
chmod 0755 "$library/.async_wrapper.tmp" "$library/.async_job.tmp" "$library/.async_status.tmp"
for name in async_wrapper async_job async_status; do
    mv -f "$library/.$name.tmp" "$library/$name"
done
gzipped= unpacked=
for a in $arches; do
    gzipped="$gzipped + $a $(size "$library/.$a.gz")"
    unpacked="${unpacked:+$unpacked, }$a $(size "$(program "$a")")"
done
echo "assembled $library (release $id):" \
    "async_wrapper $(size "$library/async_wrapper") bytes ($head_size of launcher$gzipped gzipped" \
    "+ fallback $(size "$library/.fallback.deflate") deflated)," \
    "async_job $(size "$library/async_job") bytes, async_status $(size "$library/async_status") bytes;" \
    "programs unpacked: $unpacked bytes"
