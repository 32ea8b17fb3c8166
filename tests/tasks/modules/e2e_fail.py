#!/usr/bin/python
# -*- coding: utf-8 -*-
"""e2e test module: fails gracefully through fail_json, with the given msg."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(msg=dict(type="str", default="e2e_fail failed on purpose")),
        supports_check_mode=True,
    )
    module.fail_json(msg=module.params["msg"], e2e_marker="graceful")


if __name__ == "__main__":
    main()
