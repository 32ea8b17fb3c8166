#!/bin/sh
# Builds (once) and prints the path of a Debian root of a foreign architecture, runnable on
# this machine through qemu-user and binfmt_misc. Run as root. Usage: build-root.sh ARCH
#
#   ARCH   a Debian architecture: arm64 (we ship a native program for it) or armhf (we do
#          not: async tasks there go through the portable fallback)
#
# The root is a `debootstrap --variant=minbase` bookworm with python3 (ansible's modules)
# and gzip (the launcher), and nothing of this project. It is cached outside the clone, so
# CI's fresh clones and every worktree share it: in $ANSIBLE_ASYNC_ROOTS, default
# /var/cache/ansible-async-tests/roots, as ARCH-<hash of the recipe below>; a changed
# recipe builds a new root. The mirror is the one apt uses on this machine (its sources), so
# whatever proxy or mirror apt is set up with, debootstrap uses too.
#
# Also registers qemu's binfmt handlers (with the F flag, so programs inside a chroot run
# without qemu in the root) when they are not registered yet: see ensure_binfmt.
set -eu

arch=${1:?usage: build-root.sh arm64|armhf}
case $arch in
arm64) qemu=aarch64 ;;
armhf) qemu=arm ;;
*) echo "build-root.sh: unsupported architecture $arch" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "build-root.sh: run me as root" >&2; exit 1; }

log() { printf 'build-root: %s\n' "$*" >&2; }

ensure_packages() {
    missing=
    for pkg in debootstrap qemu-user-static; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        log "installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086 # $missing: package names, one word each
        apt-get install -y -q --no-install-recommends $missing >&2 ||
            { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends $missing >&2; }
    fi
}

ensure_binfmt() {
    misc=/proc/sys/fs/binfmt_misc
    [ -e "$misc/register" ] || mount -t binfmt_misc binfmt_misc "$misc"
    if [ ! -e "$misc/qemu-$qemu" ]; then
        conf=/usr/lib/binfmt.d/qemu-$qemu.conf
        case $(cat "$conf") in
        *:*F*) ;;
        *) log "$conf lacks the F flag: programs in a chroot would not find qemu"; exit 1 ;;
        esac
        cat "$conf" >"$misc/register"
        log "registered qemu-$qemu with binfmt_misc"
    fi
}

# The Debian mirror apt uses here (deb822 .sources or one-line sources.list).
apt_mirror() {
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        case $f in
        *.sources) awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' "$f" ;;
        *) awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' "$f" ;;
        esac
    done | head -n 1
}

ensure_packages
ensure_binfmt

# What the root is made of: change it (or bump the last word) to build roots anew.
suite=bookworm
include=python3,gzip
recipe="$arch $suite minbase $include 1"

cache=${ANSIBLE_ASYNC_ROOTS:-/var/cache/ansible-async-tests/roots}
key=$(printf '%s\n' "$recipe" | sha256sum | cut -c1-12)
root=$cache/$arch-$key
if [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi
# sshd's ChrootDirectory wants every component of the path root-owned and not writable by
# others: true of the default; a folder of your own must be too (not under /tmp).
mkdir -p "$cache"
chmod 755 "$cache"
# One build per architecture at a time (parallel test runs): wait, then look again.
exec 9>"$cache/.$arch.lock"
flock 9
if [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi
mirror=$(apt_mirror)
[ -n "$mirror" ] || { log "no Debian mirror found in apt's sources"; exit 1; }
rm -rf --one-file-system "$root.tmp"
log "debootstrap $arch into $root (a few minutes: the second stage runs under qemu)"
start=$(date +%s)
debootstrap --arch="$arch" --variant=minbase --include="$include" "$suite" "$root.tmp" "$mirror" >&2
# sshd's ChrootDirectory wants every component root-owned and not writable by others.
chmod 755 "$root.tmp"
# Nothing in it runs but what the tests start; apt's downloads are not needed.
rm -rf "$root.tmp/var/cache/apt/archives/"*.deb "$root.tmp/var/lib/apt/lists/"* 2>/dev/null || :
rm -rf --one-file-system "$root"
mv "$root.tmp" "$root"
date +%s >"$root/.complete"
log "built $root in $(($(date +%s) - start)) s ($(du -sh "$root" | cut -f1))"
# Older roots of this architecture (an earlier script) are no longer used.
for old in "$cache/$arch-"*; do
    # --one-file-system: a root may still have a proc mounted inside.
    [ "$old" = "$root" ] || [ ! -d "$old" ] || rm -rf --one-file-system "$old"
done
echo "$root"
