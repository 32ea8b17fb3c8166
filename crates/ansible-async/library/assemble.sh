#!/bin/sh
# Builds library/ from the ansible-async program. Usage: assemble.sh PROGRAM LIBRARY_DIR
#
#   async_wrapper  launcher script (async_wrapper.sh) + the program, gzipped
#   async_status   a small script (async_status.sh) that runs the program async_wrapper
#                  installed on the host, and answers by itself where it is missing
#   async_job      the program itself, run by ansible as a binary module
set -eu
program=$1
library=$2
here=$(dirname "$0")

id=$(sha256sum "$program" | cut -c1-16)
gzip -9 -n -c "$program" >"$library/.payload.gz"
size=$(wc -c <"$library/.payload.gz" | tr -d ' ')

# script TEMPLATE OUTPUT: the template with common.sh and the ids filled in.
script() {
    awk -v common="$here/common.sh" '
        $0 == "@COMMON@" { while ((getline line < common) > 0) print line; next }
        { print }
    ' "$here/$1" | sed -e "s/@PAYLOAD_SIZE@/$size/" -e "s/@PAYLOAD_ID@/$id/" >"$2"
}

script async_wrapper.sh "$library/.async_wrapper.tmp"
script async_status.sh "$library/.async_status.tmp"

head_size=$(wc -c <"$library/.async_wrapper.tmp" | tr -d ' ')
if [ "$head_size" -lt 1024 ]; then
    echo "assemble.sh: the launcher text is $head_size bytes; ansible needs at least 1024" >&2
    exit 1
fi
# ansible searches a whole module file for these markers (ansible/executor/module_common.py)
# and would treat it as another kind of module if one appeared. async_status carries
# <<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>> on purpose, once: ansible writes the arguments there.
markers='<<INCLUDE_ANSIBLE_MODULE_(COMMON|JSON_ARGS)>>|# POWERSHELL_COMMON'
markers="$markers|(from|import) +(\\.{2,} *module_utils|ansible_collections\\.|ansible\\.module_utils)"
markers="$markers|#Requires -(Module|Version)|#AnsibleRequires -"
json_args='<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>'
for file in "$library/.async_wrapper.tmp" "$library/.payload.gz" "$library/.async_status.tmp"; do
    found=$(grep -aoiE -- "$markers" "$file") || :
    [ "$file" = "$library/.async_status.tmp" ] && [ "$found" = "$json_args" ] && found=
    if [ -n "$found" ] || { [ "$file" = "$library/.async_status.tmp" ] && grep -aq WANT_JSON "$file"; }; then
        echo "assemble.sh: ansible would misread $file because of: ${found:-WANT_JSON}" >&2
        exit 1
    fi
done
if grep -aq WANT_JSON "$library/.async_wrapper.tmp" "$library/.payload.gz"; then
    echo "assemble.sh: WANT_JSON in async_wrapper would change how ansible runs it" >&2
    exit 1
fi

cat "$library/.payload.gz" >>"$library/.async_wrapper.tmp"
rm -f "$library/.payload.gz"
chmod 0755 "$library/.async_wrapper.tmp" "$library/.async_status.tmp"
mv -f "$library/.async_wrapper.tmp" "$library/async_wrapper"
mv -f "$library/.async_status.tmp" "$library/async_status"
install -m 0755 "$program" "$library/async_job"
echo "assembled $library: async_wrapper $(wc -c <"$library/async_wrapper" | tr -d ' ') bytes" \
    "($head_size of launcher + $size of gzipped program $id)," \
    "async_status $(wc -c <"$library/async_status" | tr -d ' ') bytes," \
    "async_job $(wc -c <"$library/async_job" | tr -d ' ') bytes"
