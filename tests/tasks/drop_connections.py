"""Drops every connection to a (test) sshd at once: SIGKILLs the sshd processes below the
listener whose pid is given, as a network failure would (harness.sshd.connection_pids).
Prints how many processes it killed. Used by tests/tasks/playbooks/ssh_start_job.yml
(delegate_to: localhost), run with the controller's python."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared harness

from harness.procs import kill_all  # noqa: E402
from harness.sshd import connection_pids  # noqa: E402


def main():
    found = connection_pids(int(sys.argv[1]))
    # The connection of this very task is local (delegate_to: localhost), never below sshd.
    assert os.getpid() not in found
    kill_all(found)
    print(len(found))


if __name__ == "__main__":
    main()
