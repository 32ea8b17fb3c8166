"""A module whose output is not UTF-8, through real ansible-playbook with this library and with
ansible-core's own async modules side by side, on 2.19, 2.21 and 2.22, with
MODULE_STRICT_UTF8_RESPONSE off (what stock's own error message advises) and on.

Off, stock reports the task changed and the text with its byte replaced; so must ours, and the
job file must hold the lone surrogate escape Python's json wrote (`caf\\udce9`), byte for byte.
On, the controller refuses every async_status answer that holds it, for stock and ours alike,
with the same message ("Refusing to deserialize an invalid UTF8 string value"): the job itself
ran and its job file holds its result, but no poll can deliver it."""

from __future__ import annotations

import json

import pytest
from tasks_support import PLAYBOOKS, Play
from harness.controllers import controller as find_controller
from harness.controllers import versions_from_env

CONTROLLERS = versions_from_env("E2E_UTF8_CONTROLLERS", ("2.19", "2.21", "2.22"))


class Side(Play):
    """A Play with either this library or ansible's own async modules (from the venv's
    `.py.orig` copies) first in the library path."""

    def __init__(self, controller, tmp, stock: bool, strict: bool):
        super().__init__(controller, tmp)
        self.stock, self.strict = stock, strict

    def env(self):
        env = super().env()
        if self.stock:
            env["ANSIBLE_LIBRARY"] = str(self.controller.stock_library(self.tmp / "stocklib"))
        env["ANSIBLE_MODULE_STRICT_UTF8_RESPONSE"] = str(self.strict)
        return env


def seen(controller, tmp_path, stock: bool, strict: bool) -> tuple[dict, bytes, bool]:
    side = Side(controller, tmp_path / ("stock" if stock else "ours"), stock, strict)
    # With strict on, both sides poll until the limit: keep it short.
    side.run("not_utf8.yml", extra_vars={"e2e_limit": 3 if strict else 10})
    report = json.loads((side.tmp / "seen.json").read_text())
    job = side.async_dir / report["jid"]
    has_log = job.with_name(job.name + ".log").exists()
    return report, job.read_bytes(), has_log


@pytest.mark.parametrize("strict", [False, True], ids=["strict-off", "strict-on"])
@pytest.mark.parametrize("version", CONTROLLERS, ids=lambda v: f"core-{v}")
def test_output_that_is_not_utf8_as_stock_reports_it(version, strict, tmp_path):
    controller = find_controller(version)
    stock, stock_file, stock_log = seen(controller, tmp_path, stock=True, strict=strict)
    ours, ours_file, ours_log = seen(controller, tmp_path, stock=False, strict=strict)
    print(json.dumps({"stock": stock, "ours": ours}, indent=1))
    assert ours_log and not stock_log, "our wrapper ran for ours (it keeps a job log), stock's for stock"
    # The job file keeps what Python's json wrote for the byte: the same escape as stock's.
    assert b'"stdout": "caf\\udce9"' in stock_file, stock_file
    assert b'"stdout":"caf\\udce9"' in ours_file, ours_file
    # What the play saw is the same, message for message.
    for key in ("polled", "collected"):
        assert ours[key] == stock[key], (key, ours, stock)
    if not strict:
        assert ours["polled"]["changed"] and not ours["polled"]["failed"], ours
        assert ours["collected"]["finished"] and not ours["collected"]["failed"], ours
        assert ours["collected"]["stdout"] == "caf\udce9", ours
    else:
        # The controller refuses the answer that holds the byte (the job itself succeeded).
        for key in ("polled", "collected"):
            assert ours[key]["failed"] and "invalid UTF8" in ours[key]["msg"], ours
