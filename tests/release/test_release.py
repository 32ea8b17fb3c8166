"""The release tarball (`make dist`) as a user gets it: its sums check, a role whose
library/ holds its three files runs async tasks, and the tarball itself, installed as a role by
`ansible-galaxy role install -r roles/requirements.yml` (as AWX does for a project), makes the
async tasks of a play that uses it run through ours; on every controller of
tests/controllers.txt (the venvs tests/setup-venvs.sh makes; a missing one fails its test).
MATRIX_CONTROLLERS=2.14,2.22 runs only those, as in tests/tasks/test_controllers.py.

The venvs' stock async modules are stubs that fail loudly, so a passing play proves that
ours ran; the test also finds the program the launcher cached.
"""

import json
import os
import re
import subprocess
import tarfile
import textwrap

import pytest

from harness.arches import HOST_ARCH
from harness.controllers import VERSIONS, controller as find_controller, versions_from_env
from harness.env import ansible_env
from harness.paths import LIBRARY, REPO
from harness.recap import assert_recap_ok, parse_recap

VERSION = re.search(r'^version = "(.*)"', (REPO / "Cargo.toml").read_text(), re.M).group(1)
NAME = f"ansible-async-rs-{VERSION}"
# The documentation make dist ships: every docs/ page, and the charts the README shows.
DOCS = [f"docs/{page.name}" for page in sorted((REPO / "docs").glob("*.md"))]
CHARTS = ["tests/bench/results/chart.png", "tests/bench/results/ssh-chart.svg",
          "tests/bench/results/ssh-collect-chart.svg"]
CONTROLLERS = versions_from_env("MATRIX_CONTROLLERS", VERSIONS)

# The async tasks both plays start with: a polled task, and a poll: 0 one collected by an
# until-loop.
ASYNC_TASKS = """\
- name: Polled
  ansible.builtin.command: echo polled
  async: 30
  poll: 1
  register: polled

- name: Fire and forget
  ansible.builtin.command: echo later
  async: 30
  poll: 0
  register: started

- name: Status until done
  ansible.builtin.async_status:
    jid: "{{ started.ansible_job_id }}"
  register: done
  until: done.finished
  retries: 50
  delay: 0.2

"""

ROLE_TASKS = ASYNC_TASKS + """\
- name: Job list (the role's action plugin passes the play's async dir)
  async_job:
    mode: list
  register: listed

- name: Fan out
  ansible.builtin.command: "echo {{ item }}"
  async: 30
  poll: 0
  loop: [one, two]
  register: fanned

- name: Wait for them
  async_job:
    mode: wait
    jid: "{{ fanned.results | map(attribute='ansible_job_id') | list }}"
    timeout: 30
    cleanup: true
  register: waited

- name: Cleanup
  ansible.builtin.async_status:
    jid: "{{ started.ansible_job_id }}"
    mode: cleanup

- ansible.builtin.assert:
    that:
      - polled.stdout == "polled"
      - done.stdout == "later"
      - started.ansible_job_id in (listed.jobs | map(attribute='jid'))
      - listed.async_dir == ansible_async_dir
      - waited.results | map(attribute='stdout') | list == ['one', 'two']
      - waited.removed | length == 2
"""


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The tarball `make dist` writes, unpacked."""
    subprocess.run(["make", "-C", str(REPO), "dist"], check=True, capture_output=True, timeout=1800)
    tarball = REPO / "target" / "releases" / f"{NAME}.tar.gz"
    where = tmp_path_factory.mktemp("release")
    with tarfile.open(tarball) as tar:
        members = tar.getmembers()
        assert {m.name for m in members if m.isfile()} == {
            f"{NAME}/{f}" for f in ("README.md", "LICENSE", "SHA256SUMS", "meta/main.yml",
                                    "library/async_wrapper", "library/async_status", "library/async_job",
                                    "action_plugins/async_job.py", "action_plugins/async_status.py",
                                    "callback_plugins/async_progress.py", *DOCS, *CHARTS)}
        assert all(m.uid == 0 and m.gid == 0 and m.mtime == 0 for m in members)
        tar.extractall(where)
    return where / NAME


@pytest.fixture(scope="module")
def tarball(release):
    return REPO / "target" / "releases" / f"{NAME}.tar.gz"


def test_sums_check_and_the_library_is_what_make_build_writes(release):
    subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=release, check=True, capture_output=True)
    for name in ("async_wrapper", "async_status", "async_job"):
        shipped = release / "library" / name
        assert shipped.read_bytes() == (LIBRARY / name).read_bytes()
        assert os.access(shipped, os.X_OK)


@pytest.mark.parametrize("version", CONTROLLERS, ids=lambda v: f"core-{v}")
def test_a_role_with_the_release_library_runs_async_tasks(release, version, tmp_path):
    controller = find_controller(version, need_library=False)
    role = tmp_path / "roles" / "native_async"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text(ROLE_TASKS)
    (role / "library").mkdir()
    for name in ("async_wrapper", "async_status", "async_job"):
        (role / "library" / name).write_bytes((release / "library" / name).read_bytes())
        (role / "library" / name).chmod(0o755)
    (role / "action_plugins").mkdir()
    for name in ("async_job.py", "async_status.py"):
        (role / "action_plugins" / name).write_bytes((release / "action_plugins" / name).read_bytes())
    env = ansible_env(ANSIBLE_LOCAL_TEMP=str(tmp_path / "local"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "remote"))
    run_play(controller, tmp_path, "- hosts: all\n  gather_facts: false\n  roles: [native_async]\n", env)


# A play that names the installed role and runs its own async tasks: the role's library/ comes
# before ansible's modules for the whole play. The poll: 0 job is left for the test to look at.
ROLE_PLAY = """\
- hosts: all
  gather_facts: false
  roles:
    - ansible_async_rs
  tasks:
""" + textwrap.indent(ASYNC_TASKS, "    ") + """\
    - name: Job list (async_job is only in the role)
      async_job:
        mode: list
        async_dir: "{{ ansible_async_dir }}"
      register: listed

    - ansible.builtin.copy:
        content: "{{ started.ansible_job_id }}"
        dest: "{{ playbook_dir }}/jid"
        mode: "0644"

    - ansible.builtin.assert:
        that:
          - polled.stdout == "polled"
          - done.stdout == "later"
          - started.ansible_job_id in (listed.jobs | map(attribute='jid'))
"""


def test_meta_makes_the_release_a_role(release):
    meta = release / "meta" / "main.yml"
    text = meta.read_text()
    for line in ("role_name: ansible_async_rs", "license: GPL-3.0-or-later", 'min_ansible_version: "2.14"',
                 "- name: GenericLinux"):
        assert line in text, line
    assert "GNU GENERAL PUBLIC LICENSE" in (release / "LICENSE").read_text()


def run_play(controller, tmp_path, play, env):
    """Runs `play` on localhost with a private async dir, which it returns; the play must pass
    and leave this host's program (the launcher's cache) in the async dir."""
    (tmp_path / "play.yml").write_text(play)
    async_dir = tmp_path / "async"
    (tmp_path / "inventory").write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={controller.python}"
        f" ansible_async_dir={async_dir}\n")
    run = subprocess.run([str(controller.ansible_playbook), "-i", str(tmp_path / "inventory"),
                          str(tmp_path / "play.yml")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = run.stdout[-5000:] + run.stderr[-3000:]
    assert run.returncode == 0, output
    assert_recap_ok(parse_recap(run.stdout), hosts=1, see=output)
    assert [p.name.rsplit(".", 1)[1] for p in (async_dir / ".bin").iterdir()] == [HOST_ARCH]
    return async_dir


@pytest.mark.parametrize("version", CONTROLLERS, ids=lambda v: f"core-{v}")
def test_ansible_galaxy_installs_the_release_as_a_role(tarball, version, tmp_path):
    controller = find_controller(version, need_library=False)
    roles = tmp_path / "roles"
    roles.mkdir()
    (roles / "requirements.yml").write_text(f"- src: file://{tarball}\n  name: ansible_async_rs\n")
    env = ansible_env(ANSIBLE_LOCAL_TEMP=str(tmp_path / "local"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "remote"),
                      ANSIBLE_GALAXY_CACHE_DIR=str(tmp_path / "galaxy-cache"), HOME=str(tmp_path))
    install = subprocess.run([str(controller.bin / "ansible-galaxy"), "role", "install",
                              "-r", str(roles / "requirements.yml"), "-p", str(roles)],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "ansible_async_rs was installed successfully" in install.stdout, install.stdout
    role = roles / "ansible_async_rs"
    for name in ("async_wrapper", "async_status", "async_job"):
        assert (role / "library" / name).read_bytes() == (LIBRARY / name).read_bytes(), name

    # Ours ran (the venv's own modules are stubs that fail loudly besides): the launcher's
    # program in the cache, and our supervisor's log and job record beside the job file.
    async_dir = run_play(controller, tmp_path, ROLE_PLAY, env)
    jid = (tmp_path / "jid").read_text().strip()
    assert (async_dir / f"{jid}.log").exists()
    assert json.loads((async_dir / jid).read_text())["stdout"] == "later"
