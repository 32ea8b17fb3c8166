#!/bin/sh
# Builds a library/ whose async_wrapper can only take the portable fallback: the text of
# library/async_wrapper as `make build` assembled it (up to its last line of shell code, without
# the programs; then the deflated fallback that ends the file), told at its top to take the fallback (ASYNC_WRAPPER_FALLBACK=1); async_status
# and async_job as built. Usage: fallback-library.sh LIBRARY_DIR (needs `make build`).
set -eu
out=$1
built=$(cd "$(dirname "$0")/../../library" && pwd)
mkdir -p "$out"
{
    head -n 1 "$built/async_wrapper"
    echo 'ASYNC_WRAPPER_FALLBACK=1 # tests/harness/fallback-library.sh: the fallback, always'
    # shellcheck disable=SC2016 # the launcher's own last line, literally
    tail -n +2 "$built/async_wrapper" | sed '/^run_fallback "\$@"$/q'
} >"$out/async_wrapper"
# The fallback's bytes: as many as the launcher's start reads from the end of the file.
size=$(sed -n 's/^    f\.seek(-\([0-9][0-9]*\), 2)$/\1/p' "$out/async_wrapper")
[ -n "$size" ] || {
    echo "fallback-library.sh: no fallback size in $built/async_wrapper" >&2
    exit 1
}
tail -c "$size" "$built/async_wrapper" >>"$out/async_wrapper"
grep -q '^run_fallback "\$@"$' "$out/async_wrapper" || {
    echo "fallback-library.sh: $built/async_wrapper does not end its shell code with run_fallback" >&2
    exit 1
}
cp "$built/async_status" "$built/async_job" "$out/"
chmod 0755 "$out/async_wrapper" "$out/async_status" "$out/async_job"
