#!/bin/sh
# `make repro-check`: builds the release (`make dist`) twice, in two copies of this checkout
# in folders of different names and depths, each with its own target dir, and checks that
# library/, SHA256SUMS and the tarball come out byte for byte the same. The copies hold the
# working tree's files as they are (committed or not), less what git ignores.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ansible-async-repro.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR
first=$work/a
second=$work/second-checkout/of-ansible-async-rs
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
tarball=target/releases/ansible-async-rs-$version.tar.gz

# Both copies first, so that they hold the same files.
for dest in "$first" "$second"; do
    mkdir -p "$dest"
    git -C "$repo" ls-files -z --cached --others --exclude-standard |
        (cd "$repo" && tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$dest"
done
for dest in "$first" "$second"; do
    start=$(date +%s)
    make -C "$dest" dist >"$dest.log" 2>&1 || {
        tail -n 30 "$dest.log" >&2
        echo "repro-check: make dist failed in $dest" >&2
        exit 1
    }
    echo "repro-check: make dist in a fresh copy took $(($(date +%s) - start)) s"
done

status=0
for file in library/async_wrapper library/async_status library/async_job \
    "target/releases/ansible-async-rs-$version/SHA256SUMS" "$tarball"; do
    if cmp "$first/$file" "$second/$file"; then
        echo "repro-check: same $file ($(wc -c <"$first/$file" | tr -d ' ') bytes)"
    else
        echo "repro-check: $file differs between the two builds" >&2
        status=1
    fi
done
for dest in "$first" "$second"; do
    if grep -a -l -F -e "$dest" -e "$HOME/.cargo" -e "$HOME/.rustup" "$dest"/library/*; then
        echo "repro-check: a build path is in the files above" >&2
        status=1
    fi
done
[ "$status" = 0 ] && echo "repro-check: the two builds are identical"
exit "$status"
