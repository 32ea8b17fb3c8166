#!/usr/bin/python
# -*- coding: utf-8 -*-
"""e2e test module: succeeds, and writes lines to stderr on the way."""

from __future__ import annotations

import sys

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(text=dict(type="str", default="e2e_stderr says hello")),
                           supports_check_mode=True)
    sys.stderr.write("%s\nsecond stderr line\n" % module.params["text"])
    sys.stderr.flush()
    module.exit_json(changed=False, wrote="stderr")


if __name__ == "__main__":
    main()
