"""The helpers every pytest suite under tests/ shares, one copy of each.

tests/ is on sys.path in every pytest run from the repo root (tests/conftest.py makes sure),
so suites import `harness.<module>`; scripts run on their own put tests/ there themselves.
Nothing here but the pytest parts (ssh_sandbox, ssh_fixtures) imports pytest at import time: the stub script (tests/stub_stock_modules.py) and
tests/tasks/drop_connections.py run with controller venvs that have no pytest.

- paths:       where the build puts what the tests run (library/, the programs).
- controllers: the controller venvs (tests/controllers.txt, made by tests/setup-venvs.sh).
- stubs:       the venvs' stock async modules replaced by stubs that fail loudly; the originals.
- env:         the environment of an ansible-playbook run.
- wait:        waiting for a condition with a deadline (never a bare sleep).
- jobs:        job files in an async dir; waiting for a job to run or finish; ending its processes.
- procs:       procfs checks: alive, command lines, environments, process trees, ending them.
- recap:       ansible-playbook's PLAY RECAP, parsed and checked.
- sshd:        a private OpenSSH server on loopback, free ports.
- users:       a throwaway user whose passwd home is a fresh folder.
- become_users: the become tests' two users and their sudo rule, for one session.
- ssh_sandbox: a test's playbook runs against the private sshd (inventories, marks, clean-up).
- ssh_fixtures: the pytest fixtures over SSH (`sshd`, `ansible`, ...), loaded by tests/conftest.py.
- mounts:      a real home's folder covered by a private one, in a private mount namespace.
- setup-ssh-host.sh, fallback-library.sh: the packages for sshd (make ssh-host); a library
               whose wrapper only takes the portable fallback.
"""
