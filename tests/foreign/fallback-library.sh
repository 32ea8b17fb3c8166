#!/bin/sh
# Builds a library/ whose async_wrapper can only take the portable fallback: a launcher of
# common.sh + fallback/fallback.sh (the Python program in its here-document) that
# calls run_fallback at once, and async_status.sh with an id no cached program has, so the
# script answers by itself. The same inlining as assemble.sh does for @COMMON@ and
# @FALLBACK@; async_job as built. Usage: fallback-library.sh LIBRARY_DIR
set -eu
out=$1
lib=$(cd "$(dirname "$0")/../../crates/ansible-async/library" && pwd)
mkdir -p "$out"

# inline TEMPLATE: the template with @COMMON@ and @FALLBACK@ filled in.
inline() {
    awk -v common="$lib/common.sh" -v fallback="$lib/fallback/fallback.sh" '
        $0 == "@COMMON@" { while ((getline line < common) > 0) print line; next }
        $0 == "@FALLBACK@" { while ((getline line < fallback) > 0) print line; next }
        { print }
    ' "$1" | sed -e 's/@PAYLOAD_SIZE@/0/' -e 's/@PAYLOAD_ID@/no-native-program/'
}

template=$out/.async_wrapper.in
printf '%s\n' '#!/bin/sh' '# async_wrapper that always runs the portable fallback (tests/foreign).' \
    '@COMMON@' '@FALLBACK@' 'run_fallback "$@"' >"$template"
inline "$template" >"$out/async_wrapper"
rm -f "$template"
inline "$lib/async_status.sh" >"$out/async_status"
chmod 0755 "$out/async_wrapper" "$out/async_status"
# Playbooks name async_job even where it cannot run (a task skipped there): ansible must
# find it. The built one, if any, else a stand-in that says so.
if [ -f "$lib/../../../library/async_job" ]; then
    cp "$lib/../../../library/async_job" "$out/async_job"
else
    printf '%s\n' '#!/bin/sh' 'echo "{\"failed\": true, \"msg\": \"no async_job in this library\"}"' >"$out/async_job"
fi
chmod 0755 "$out/async_job"
