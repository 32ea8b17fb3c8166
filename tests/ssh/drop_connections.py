"""Drops every connection to a (test) sshd at once: SIGKILLs all processes below the sshd
listener whose pid is given, as a network failure or a killed session would. Prints how many
processes it killed. Used by tests/ssh/playbooks/start_job.yml (delegate_to: localhost), run
with the controller's python."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared harness

from harness.procs import descendants, kill_all  # noqa: E402


def main():
    found = descendants(int(sys.argv[1]))
    # The connection of this very task is local (delegate_to: localhost), never below sshd.
    assert os.getpid() not in found
    kill_all(found)
    print(len(found))


if __name__ == "__main__":
    main()
