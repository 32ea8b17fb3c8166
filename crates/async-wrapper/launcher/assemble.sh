#!/bin/sh
# Builds library/async_wrapper: the launcher script in head.sh with the native program
# appended. Usage: assemble.sh PROGRAM OUTPUT
set -eu
program=$1
output=$2
here=$(dirname "$0")

size=$(wc -c <"$program" | tr -d ' ')
id=$(sha256sum "$program" | cut -c1-16)
sed -e "s/@PAYLOAD_SIZE@/$size/" -e "s/@PAYLOAD_ID@/$id/" "$here/head.sh" >"$output.tmp"

head_size=$(wc -c <"$output.tmp" | tr -d ' ')
if [ "$head_size" -lt 1024 ]; then
    echo "assemble.sh: the launcher text is $head_size bytes; ansible needs at least 1024" >&2
    exit 1
fi
# ansible searches the whole file for these markers (ansible/executor/module_common.py)
# and would treat it as another kind of module if one appeared, in the text or the program.
markers='WANT_JSON|<<INCLUDE_ANSIBLE_MODULE_(COMMON|JSON_ARGS)>>|# POWERSHELL_COMMON'
markers="$markers|(from|import) +(\\.{2,} *module_utils|ansible_collections\\.|ansible\\.module_utils)"
markers="$markers|#Requires -(Module|Version)|#AnsibleRequires -"
if found=$(grep -aoiE -- "$markers" "$output.tmp" "$program"); then
    echo "assemble.sh: ansible would misread the module because of: $found" >&2
    exit 1
fi
cat "$program" >>"$output.tmp"
chmod 0755 "$output.tmp"
mv -f "$output.tmp" "$output"
echo "assembled $output: $head_size bytes of launcher + $size bytes of program ($id)"
