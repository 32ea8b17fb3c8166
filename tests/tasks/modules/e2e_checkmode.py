#!/usr/bin/python
# -*- coding: utf-8 -*-
"""e2e test module: creates the file `path` (with `content`), honouring check mode."""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(path=dict(type="path", required=True), content=dict(type="str", default="made by e2e_checkmode\n")),
        supports_check_mode=True,
    )
    path = module.params["path"]
    if os.path.exists(path):
        module.exit_json(changed=False, path=path, check_mode=module.check_mode)
    if module.check_mode:
        module.exit_json(changed=True, path=path, check_mode=True, msg="would create %s" % path)
    with open(path, "w") as handle:
        handle.write(module.params["content"])
    module.exit_json(changed=True, path=path, check_mode=False, msg="created %s" % path)


if __name__ == "__main__":
    main()
