#!/bin/sh
# `make lint`'s shell part: shellcheck on every shell script in the repository (as POSIX sh
# unless its #! line names bash), and on library/'s three scripts as assemble.sh puts them
# together: what ansible ships to hosts. .shellcheckrc holds the repository's settings; a
# deliberate pattern gets an inline `# shellcheck disable=SCxxxx # why`. Works from anywhere.
set -eu
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null 2>&1 || {
    echo "shellcheck.sh: shellcheck is not installed (Debian: apt-get install shellcheck)" >&2
    exit 2
}
templates=crates/ansible-async/library
out=target/lint
rm -rf "$out" && mkdir -p "$out/library"
status=0

# The scripts as they are in the tree (.ci/run has no .sh suffix). async_wrapper.sh,
# async_status.sh and async_job.sh are templates that common.sh completes: alone, the variables it sets look
# unassigned (SC2154), which the assembled scripts below check.
find . \( -path ./target -o -path ./.git -o -path ./.venv -o -path ./library \) -prune -o \
    -type f -name '*.sh' -print | sort >"$out/scripts"
echo ./.ci/run >>"$out/scripts"
while IFS= read -r script; do
    case $(head -n 1 "$script") in
    '#!'*bash*) dialect='bash' ;;
    *) dialect='sh' ;;
    esac
    case $script in
    "./$templates/async_wrapper.sh" | "./$templates/async_status.sh" | "./$templates/async_job.sh") set -- -e SC2154 ;;
    *) set -- ;;
    esac
    shellcheck -s "$dialect" "$@" "$script" || status=1
done <"$out/scripts"

# The assembled scripts, with a small stand-in for the program of each architecture of the
# list: async_status and async_job are all text; async_wrapper is checked up to its last line
# of shell code (the programs and the deflated fallback follow it).
set --
while read -r arch _; do
    case $arch in "#"* | "") continue ;; esac
    printf '%s stand-in\n' "$arch" >"$out/$arch"
    set -- "$@" "$arch=$out/$arch"
done <crates/ansible-async/arches
cargo run --locked -q -p protocol-rules -- --python >"$out/rules.py"
cargo build --release --locked -q -p payload-pack
sh "$templates/assemble.sh" "$out/library" rules="$out/rules.py" pack=target/release/payload-pack "$@" >/dev/null
# shellcheck disable=SC2016 # the launcher's own last line, literally
sed '/^run_fallback "\$@"$/q' "$out/library/async_wrapper" >"$out/async_wrapper"
cp "$out/library/async_status" "$out/library/async_job" "$out/"
shellcheck -s sh "$out/async_wrapper" "$out/async_job" "$out/async_status" || status=1

[ "$status" = 0 ] && echo "shellcheck: $(($(wc -l <"$out/scripts") + 3)) scripts clean"
exit "$status"
