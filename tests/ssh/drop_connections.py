"""Drops every connection to a (test) sshd at once: SIGKILLs all processes below the sshd
listener whose pid is given, as a network failure or a killed session would. Prints how many
processes it killed. Used by tests/ssh/playbooks/start_job.yml (delegate_to: localhost)."""

import os
import signal
import sys


def children_map():
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(name))
    return children


def main():
    root = int(sys.argv[1])
    children = children_map()
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    # The connection of this very task is local (delegate_to: localhost), never below sshd.
    assert os.getpid() not in found
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    print(len(found))


if __name__ == "__main__":
    main()
