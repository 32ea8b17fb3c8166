#!/usr/bin/python
# A test module of tests/secrets: `password` is declared no_log, `echo` is not. It returns what
# it was given, as modules that take a password and report it back do (get_url, uri).
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(password=dict(type="str", no_log=True), echo=dict(type="str")),
        supports_check_mode=True,
    )
    result = {"changed": False}
    if module.params["password"] is not None:
        result["got"] = module.params["password"]
    if module.params["echo"] is not None:
        result["echoed"] = module.params["echo"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
