#!/bin/bash
# Prepares a Debian machine for the tests in tests/ssh (async over a real OpenSSH server, with
# become). Run as root, once, before the tests; running it again changes nothing.
#
#   - installs openssh-server, openssh-client and sudo when missing (apt-get);
#   - creates the user `asyncuser` (with a home directory) and the user `nohomeuser`, whose home
#     directory does not exist and cannot be created by that user (the fault test needs it);
#   - lets root sudo to those two users without a password (/etc/sudoers.d/ansible-async-ssh-tests,
#     checked with visudo -cf before it is put in place).
#
# It neither touches the machine's own sshd configuration nor starts the system sshd: the tests
# run a private sshd of their own on a loopback address and stop it at the end.
set -euo pipefail

log() { printf 'setup-host: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "run me as root"
    exit 1
fi

ASYNC_USER=asyncuser
NOHOME_USER=nohomeuser
# A path under a directory only root can write to: nohomeuser can never create it.
NOHOME_DIR=/nonexistent/$NOHOME_USER
SUDOERS=/etc/sudoers.d/ansible-async-ssh-tests

# --- packages ---------------------------------------------------------------------------------
missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
for pkg in openssh-server openssh-client sudo; do
    have_pkg "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # policy-rc.d: the package must not start (or enable) the system sshd on install.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    trap 'if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
    trap - EXIT
else
    log "openssh-server, openssh-client and sudo are installed"
fi
for cmd in /usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen /usr/bin/sudo /usr/sbin/visudo; do
    [ -x "$cmd" ] || { log "$cmd is missing after installing packages"; exit 1; }
done
# sshd wants its privilege separation directory (normally made by the service unit).
mkdir -p /run/sshd
chmod 755 /run/sshd

# --- users ------------------------------------------------------------------------------------
if ! getent passwd "$ASYNC_USER" >/dev/null; then
    log "creating user $ASYNC_USER"
    useradd --create-home --shell /bin/sh "$ASYNC_USER"
fi
async_home=$(getent passwd "$ASYNC_USER" | cut -d: -f6)
if [ ! -d "$async_home" ]; then
    mkdir -p "$async_home"
    chown "$ASYNC_USER:" "$async_home"
    chmod 755 "$async_home"
fi
# The become user must be able to reach ansible's temporary files in /tmp or /var/tmp and its
# own home; nothing more to do for that on a stock Debian.

if ! getent passwd "$NOHOME_USER" >/dev/null; then
    log "creating user $NOHOME_USER (home $NOHOME_DIR, not created)"
    useradd --no-create-home --home-dir "$NOHOME_DIR" --shell /bin/sh "$NOHOME_USER"
fi
nohome=$(getent passwd "$NOHOME_USER" | cut -d: -f6)
# shellcheck disable=SC2016 # $1 is the inner sh's
if runuser -u "$NOHOME_USER" -- /bin/sh -c 'test -w "$1" || mkdir -p "$1" 2>/dev/null' sh "$nohome"; then
    log "$NOHOME_USER can write to or create its home $nohome: the fault test needs a home it cannot write"
    exit 1
fi

# --- sudo -------------------------------------------------------------------------------------
tmp=$(mktemp /etc/sudoers.d/.ansible-async-ssh-tests.XXXXXX)
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<EOF
# Written by tests/ssh/setup-host.sh (ansible-async-rs): root may run anything as the two test
# users without a password (ansible become_method: sudo).
root ALL=($ASYNC_USER, $NOHOME_USER) NOPASSWD: ALL
EOF
chmod 0440 "$tmp"
visudo -cqf "$tmp"
if [ -f "$SUDOERS" ] && cmp -s "$tmp" "$SUDOERS"; then
    rm -f "$tmp"
else
    mv -f "$tmp" "$SUDOERS"
    log "wrote $SUDOERS"
fi
trap - EXIT
# The main sudoers file must read the drop-in directory (Debian's does); check the whole set.
if [ -f /etc/sudoers ] && ! grep -Eq '^[@#]includedir[[:space:]]+/etc/sudoers.d' /etc/sudoers; then
    log "/etc/sudoers does not include /etc/sudoers.d"
    exit 1
fi
visudo -cq

for user in "$ASYNC_USER" "$NOHOME_USER"; do
    got=$(sudo -n -H -u "$user" /bin/sh -c 'id -un')
    [ "$got" = "$user" ] || { log "sudo -u $user runs as '$got'"; exit 1; }
done
log "ready: $(ssh -V 2>&1), users $ASYNC_USER and $NOHOME_USER"
