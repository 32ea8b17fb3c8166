#!/bin/sh
# Runs the async demo on localhost with this repo's native async modules:
# site.yml (migration, fire-and-forget, parallel, fan-out-wait, job control), then
# check-mode.yml with --check.
# `make demo` calls it after `make build` and `make venvs`.
#
# Environment:
#   ANSIBLE_PLAYBOOK  ansible-playbook to run (default: .venv/core-2.19/bin/ansible-playbook)
#   DEMO_LIBRARY      module folder handed to ansible (default: library/ of this repo);
#                     point it at an empty folder to run the demo on ansible's own modules
#   DEMO_KEEP=1       keep the temp dir (work files, async dir) for a look afterwards
set -u

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(dirname -- "$here")

ANSIBLE_PLAYBOOK=${ANSIBLE_PLAYBOOK:-$repo/.venv/core-2.19/bin/ansible-playbook}
DEMO_LIBRARY=${DEMO_LIBRARY:-$repo/library}

if [ ! -x "$ANSIBLE_PLAYBOOK" ]; then
    echo "run-demo: no ansible-playbook at $ANSIBLE_PLAYBOOK (run 'make venvs', or set ANSIBLE_PLAYBOOK)" >&2
    exit 2
fi
if [ ! -d "$DEMO_LIBRARY" ]; then
    echo "run-demo: no module folder $DEMO_LIBRARY (run 'make build', or set DEMO_LIBRARY)" >&2
    exit 2
fi
DEMO_LIBRARY=$(CDPATH='' cd -- "$DEMO_LIBRARY" && pwd)

# Everything the demo writes goes into one private temp dir, removed at the end.
demo_tmp=$(mktemp -d "${TMPDIR:-/tmp}/ansible-async-demo.XXXXXX") || exit 2
# shellcheck disable=SC2317 # run by the trap below
cleanup() {
    if [ "${DEMO_KEEP:-0}" = 1 ]; then
        echo "run-demo: kept $demo_tmp"
    else
        rm -rf -- "$demo_tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

async_dir=$demo_tmp/async   # left for async_wrapper to create, as on any host
work_dir=$demo_tmp/work

# ansible looks for a module in the module path (ANSIBLE_LIBRARY, library/ beside the
# playbook, `library =` in ansible.cfg) before its built-in modules. So async_wrapper
# and async_status in DEMO_LIBRARY replace ansible-core's own for every async task,
# every `poll:` check and every async_status task; the playbooks are unchanged.
export ANSIBLE_LIBRARY="$DEMO_LIBRARY"
# The async_job action (action_plugins/ of a release, or of this repo) hands async_job the
# play's async dir, as ansible's own action does for async_status.
export ANSIBLE_ACTION_PLUGINS="$repo/action_plugins"
# A config of our own (empty) so no ansible.cfg of the user's changes the run,
# and private temp dirs on the controller and the "remote" (which is this host).
: > "$demo_tmp/ansible.cfg"
export ANSIBLE_CONFIG="$demo_tmp/ansible.cfg"
export ANSIBLE_LOCAL_TEMP="$demo_tmp/local-tmp"
export ANSIBLE_REMOTE_TMP="$demo_tmp/remote-tmp"
export ANSIBLE_RETRY_FILES_ENABLED=false

status=0
results=''

# run TITLE ARGS... : one ansible-playbook run, timed; a failure makes the demo fail.
run() {
    title=$1
    shift
    echo
    echo "=== $title"
    start=$(date +%s)
    "$ANSIBLE_PLAYBOOK" -i "$here/inventory.ini" \
        -e "ansible_async_dir=$async_dir" -e "demo_dir=$work_dir" "$@"
    rc=$?
    took=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ]; then
        results="$results
  $title: ok (${took} s)"
    else
        results="$results
  $title: FAILED, ansible-playbook exit code $rc (${took} s)"
        status=1
    fi
}

demo_start=$(date +%s)
run "site.yml" "$here/site.yml"
run "check-mode.yml --check" --check "$here/check-mode.yml"
demo_took=$(($(date +%s) - demo_start))

echo
echo "=== Summary"
echo "ansible-playbook: $ANSIBLE_PLAYBOOK ($("$ANSIBLE_PLAYBOOK" --version 2>/dev/null | head -n 1))"
echo "module path (ANSIBLE_LIBRARY): $DEMO_LIBRARY"
if [ -f "$DEMO_LIBRARY/async_wrapper" ]; then
    echo "  async_wrapper: $DEMO_LIBRARY/async_wrapper, $(wc -c < "$DEMO_LIBRARY/async_wrapper" | tr -d ' ') bytes, head line: $(head -n 1 "$DEMO_LIBRARY/async_wrapper")"
else
    echo "  async_wrapper: none there, ansible-core's built-in one was used"
fi
if [ -f "$DEMO_LIBRARY/async_status" ]; then
    magic=$(head -c 4 "$DEMO_LIBRARY/async_status" | od -An -c | tr -d ' ')
    case $magic in
        177ELF) kind="native ELF binary module" ;;
        *) kind="head line: $(head -n 1 "$DEMO_LIBRARY/async_status")" ;;
    esac
    echo "  async_status:  $DEMO_LIBRARY/async_status, $(wc -c < "$DEMO_LIBRARY/async_status" | tr -d ' ') bytes, $kind"
else
    echo "  async_status:  none there, ansible-core's built-in one was used"
fi
echo "async dir (ansible_async_dir): $async_dir"
if [ -d "$async_dir" ]; then
    # Job files are named by job id; names starting with '.' are never jobs.
    left=$(find "$async_dir" -mindepth 1 -maxdepth 1 ! -name '.*' -print)
    if [ -n "$left" ]; then
        echo "  job files left (not cleaned up):"
        find "$async_dir" -mindepth 1 -maxdepth 1 ! -name '.*' -exec ls -l {} + | sed 's/^/    /'
        status=1
    else
        echo "  job files left: none (the poll: loops and the cleanup tasks removed them all)"
    fi
    # The native launcher keeps its program in .bin/ of the async dir: seeing it
    # there shows our async_wrapper ran (ansible-core's own leaves nothing like it).
    other=$(cd "$async_dir" && find . -mindepth 1 -path './.*' -print | sed 's|^\./||' | sort)
    if [ -n "$other" ]; then
        echo "  other entries (not jobs):"
        echo "$other" | sed 's/^/    /'
    fi
else
    echo "  (never created: no async task ran)"
    status=1
fi
echo "runs:$results"
echo "total: ${demo_took} s"
if [ "$status" -eq 0 ]; then
    echo "demo: OK"
else
    echo "demo: FAILED"
fi
exit "$status"
