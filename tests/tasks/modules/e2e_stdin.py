#!/usr/bin/python
# -*- coding: utf-8 -*-
"""e2e test module: reads its standard input to the end and returns what it read.

Under async_wrapper, stdin must be closed or /dev/null: the module gets '' at once instead of
hanging until the time limit.
"""

from __future__ import annotations

import sys

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(), supports_check_mode=True)
    data = sys.stdin.read()
    module.exit_json(changed=False, stdin=data, stdin_length=len(data))


if __name__ == "__main__":
    main()
