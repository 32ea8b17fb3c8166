"""Async jobs whatever HOME says: the wrapper and async_status agree on the job dir (issue 12).

Each test runs the scenario playbook with this project's library/ and (on 2.19) with ansible's
own async_wrapper/async_status (the `.py.orig` the venv set-up kept), and asserts both outcomes:
ours finds every job (poll loop, until-loop, cleanup; async_job list/terminate/gc) and leaves no
trace; stock fails where ansible and its wrapper disagree about `~`. One inventory host per
scenario, so a test is one or two playbook runs. The table these outcomes fill is in docs/HOME.md.

HOME unset is `environment: {HOME: ""}`: a truly unset HOME through ansible would take an
interpreter of `env -u HOME /bin/sh`, which ansible runs as one quoted word for script modules
(async_status then fails with "interpreter not found").
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.paths import LIBRARY as BUILT_LIBRARY
from homedir_support import USER, inventory, kill_marked_jobs, run, stock_library, traces, user_dir

# HOMEDIR_LIBRARY: another library dir to test instead of the repo's library/.
LIBRARY = Path(os.environ.get("HOMEDIR_LIBRARY") or BUILT_LIBRARY)
# Stock runs with 2.19 only (its outcomes were the same on 2.21, measured with
# HOMEDIR_STOCK_ALL=1, which runs it with every controller): it keeps the suite shorter.
STOCK_CONTROLLERS = None if os.environ.get("HOMEDIR_STOCK_ALL") else {"2.19"}


def runs_stock(controller) -> bool:
    return STOCK_CONTROLLERS is None or controller.version in STOCK_CONTROLLERS


BECOME = {"ansible_become": True, "ansible_become_user": USER}


def local_scenarios(base: Path) -> dict[str, dict]:
    other = base / "other-root"
    other.mkdir(exist_ok=True)
    return {
        "local_home_other": {"scn_env": {"HOME": str(other)}},
        "local_home_unwritable": {"scn_env": {"HOME": "/proc"}},
        "local_home_empty": {"scn_env": {"HOME": ""}},
        "local_become_sudo": dict(BECOME),
        "local_become_sudo_E": {**BECOME, "ansible_become_flags": "-E -S -n"},
        "local_become_su_m": {**BECOME, "ansible_become_method": "su", "ansible_become_flags": "-m"},
        "local_dir_absolute": {"ansible_async_dir": str(base / "abs-root")},
        "local_dir_home_var": {**BECOME, "ansible_async_dir": "$HOME/async"},
        "local_dir_tilde_user": {**BECOME, "ansible_async_dir": f"~{USER}/jobs"},
    }


def ssh_scenarios(base: Path) -> dict[str, dict]:
    other = user_dir(base, "other-user")
    as_user = {"ansible_user": USER}
    as_root = {"ansible_user": "root"}
    return {
        "ssh_home_other": {**as_user, "scn_env": {"HOME": str(other)}},
        "ssh_home_unwritable": {**as_user, "scn_env": {"HOME": "/"}},
        "ssh_home_empty": {**as_user, "scn_env": {"HOME": ""}},
        "ssh_become_sudo": {**as_root, **BECOME},
        "ssh_become_sudo_E": {**as_root, **BECOME, "ansible_become_flags": "-E -S -n"},
        "ssh_become_su_m": {**as_root, **BECOME, "ansible_become_method": "su", "ansible_become_flags": "-m"},
        "ssh_dir_absolute": {**as_user, "ansible_async_dir": str(base / "abs-user" / "async")},
        "ssh_dir_home_var": {**as_user, "ansible_async_dir": "$HOME/async"},
        "ssh_dir_tilde_user": {**as_root, **BECOME, "ansible_async_dir": f"~{USER}/jobs"},
    }


# What stock ansible-core (2.19, 2.21) gives in each scenario: "ok" or how the first step fails.
NOT_FOUND = "polled: could not find job"
CANNOT_CREATE = "polled: could not create directory"
STOCK_LOCAL = {
    "local_home_other": NOT_FOUND,
    "local_home_unwritable": CANNOT_CREATE,
    "local_home_empty": NOT_FOUND,
    "local_become_sudo": "ok",
    "local_become_sudo_E": CANNOT_CREATE,
    "local_become_su_m": CANNOT_CREATE,
    "local_dir_absolute": "ok",
    "local_dir_home_var": CANNOT_CREATE,
    "local_dir_tilde_user": "ok",
}

STOCK_SSH = {
    "ssh_home_other": NOT_FOUND,
    "ssh_home_unwritable": CANNOT_CREATE,
    "ssh_home_empty": CANNOT_CREATE,
    "ssh_become_sudo": "ok",
    "ssh_become_sudo_E": CANNOT_CREATE,
    "ssh_become_su_m": CANNOT_CREATE,
    "ssh_dir_absolute": "ok",
    "ssh_dir_home_var": NOT_FOUND,  # it made a folder literally named "$HOME" (#85370)
    "ssh_dir_tilde_user": "ok",
}


def outcome(record: dict) -> str:
    """One word for a scenario's result: `ok`, or the first failure message."""
    for step in ("polled", "started", "until", "cleaned"):
        result = record[step]
        if result.get("failed") or result.get("skipped"):
            return f"{step}: {result.get('msg', 'failed')}"[:100]
    return "ok"


def check_ours(records: dict[str, dict], roots: list[Path]) -> None:
    jids = []
    for host, r in records.items():
        assert outcome(r) == "ok", (host, r)
        assert r["polled"]["finished"] and r["polled"]["rc"] == 0, (host, r["polled"])
        assert r["until"]["finished"] and r["until"]["rc"] == 0, (host, r["until"])
        long_jid = r["long"]["ansible_job_id"]
        assert long_jid in [j["jid"] for j in r["listed"]["jobs"]], (host, r["listed"])
        assert r["terminated"]["changed"] is True, (host, r["terminated"])
        assert r["long_status"]["finished"] is True, (host, r["long_status"])
        assert r["collected"].get("failed") is not True, (host, r["collected"])
        assert r["gone"]["failed"] is True, (host, r["gone"])
        assert r["gone"]["msg"] == "could not find job" and r["gone"]["searched"], (host, r["gone"])
        jids += [r["polled"]["ansible_job_id"], r["started"]["ansible_job_id"], long_jid]
    # Scenarios that share a job dir collect each other's jobs: together they collect all.
    removed = {jid for r in records.values() for jid in r["collected"]["removed"]}
    assert {r["long"]["ansible_job_id"] for r in records.values()} <= removed
    assert traces(roots, jids) == [], "job files left behind"


@pytest.fixture
def cleanup():
    yield
    kill_marked_jobs()


def test_local_connection(controller, world, tmp_path, cleanup):
    base = world / f"local-{controller.version}"
    base.mkdir(mode=0o755)
    root_async = tmp_path / "root-async"  # root's ~/.ansible_async inside the runs
    root_async.mkdir(mode=0o700)
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", **v}
             for name, v in local_scenarios(base).items()}
    inv = inventory(tmp_path / "inventory.yml", hosts)

    ours = run(controller, inv, tmp_path, LIBRARY, stock=False, private_root=root_async, label="ours")
    check_ours(ours, [world, root_async, Path("/.ansible_async")])
    if not runs_stock(controller):
        return

    stock_root = tmp_path / "stock-root-async"
    stock_root.mkdir(mode=0o700)
    before = set(os.listdir("/.ansible_async")) if Path("/.ansible_async").is_dir() else None
    try:
        stock = run(controller, inv, tmp_path, stock_library(controller, tmp_path / "stock"), stock=True,
                    private_root=stock_root, label="stock")
    finally:
        # Stock with HOME="" (as root) writes to /.ansible_async: remove what it wrote there.
        if Path("/.ansible_async").is_dir():
            for name in set(os.listdir("/.ansible_async")) - (before or set()):
                (Path("/.ansible_async") / name).unlink(missing_ok=True)
            if before is None:
                shutil.rmtree("/.ansible_async", ignore_errors=True)
    got = {host: outcome(r) for host, r in stock.items()}
    print("stock outcomes:", got)
    assert {h: w[:len(STOCK_LOCAL[h])] for h, w in got.items()} == STOCK_LOCAL


def test_over_ssh(controller, world, sshd, tmp_path, cleanup):
    base = user_dir(world, f"ssh-{controller.version}")
    user_dir(base, "abs-user")
    common = {
        "ansible_host": sshd.address,
        "ansible_port": sshd.port,
        "ansible_ssh_private_key_file": str(sshd.key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    hosts = {name: {**common, **v} for name, v in ssh_scenarios(base).items()}
    inv = inventory(tmp_path / "inventory.yml", hosts)
    ours = run(controller, inv, tmp_path, LIBRARY, stock=False, private_root=None, label="ours")
    check_ours(ours, [world])
    if not runs_stock(controller):
        return

    stock = run(controller, inv, tmp_path, stock_library(controller, tmp_path / "stock"), stock=True,
                private_root=None, label="stock")
    got = {host: outcome(r) for host, r in stock.items()}
    print("stock outcomes:", got)
    assert {h: w[:len(STOCK_SSH[h])] for h, w in got.items()} == STOCK_SSH
