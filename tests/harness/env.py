"""The environment of an ansible-playbook run: nothing of the caller's ANSIBLE_* settings (a
test must not depend on who runs it), no colours, no retry files; each suite adds its own."""

from __future__ import annotations

import os


def ansible_env(**settings: str) -> dict[str, str]:
    """This process's environment less every ANSIBLE_* variable, with ANSIBLE_NOCOLOR=1 and
    ANSIBLE_RETRY_FILES_ENABLED=0, then `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    env.update(settings)
    return env
