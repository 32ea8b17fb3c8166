"""async_job as an ansible module, through real ansible-playbook on both controllers."""

from pathlib import Path

PLAYBOOKS = Path(__file__).parent / "playbooks"


def test_job_control_playbook(playbook):
    playbook(PLAYBOOKS / "job_control.yml")
