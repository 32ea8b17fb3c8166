#!/bin/bash
# Prepares a Debian machine for the tests over SSH (tests/tasks, tests/polling, and every suite
# that asks for the private sshd: async over a real OpenSSH server, with become). Run as root, once, before the tests; running it again changes nothing.
#
#   - installs openssh-server, openssh-client and sudo when missing (apt-get).
#
# The become users and their sudo rule are not made here: each test session makes its own and
# removes them at its end (tests/harness/become_users.py).
#
# It neither touches the machine's own sshd configuration nor starts the system sshd: the tests
# run a private sshd of their own on a loopback address and stop it at the end.
set -euo pipefail

log() { printf 'setup-host: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "run me as root"
    exit 1
fi

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

# The become users (asyncuser, nohomeuser) and their sudo rule are made by the tests for one
# session and removed at its end (tests/harness/become_users.py). An earlier version of this
# script made them for good: what it left goes.
for user in asyncuser nohomeuser; do
    if getent passwd "$user" >/dev/null; then
        log "removing user $user (the tests now make it for each run)"
        pkill -KILL -u "$user" 2>/dev/null || :
        userdel "$user" 2>/dev/null || log "could not remove user $user"
    fi
done
rm -f /etc/sudoers.d/ansible-async-ssh-tests
# The main sudoers file must read the drop-in directory the tests write to (Debian's does).
if [ -f /etc/sudoers ] && ! grep -Eq '^[@#]includedir[[:space:]]+/etc/sudoers.d' /etc/sudoers; then
    log "/etc/sudoers does not include /etc/sudoers.d"
    exit 1
fi
log "ready: $(ssh -V 2>&1)"
