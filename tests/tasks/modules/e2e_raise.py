#!/usr/bin/python
# -*- coding: utf-8 -*-
# e2e test module: crashes like a broken interpreter would. It prints a line of plain text on
# stdout, then raises: Python writes the traceback to stderr and exits 1, and no JSON is ever
# printed. (A WANT_JSON module, not AnsiballZ: ansible-core >= 2.19 would turn an exception in an
# AnsibleModule-based module into a JSON result.)
# WANT_JSON

import json
import sys


def main():
    with open(sys.argv[1]) as handle:
        args = json.load(handle)
    word = args.get("word", "kaboom")
    sys.stdout.write("e2e_raise: about to explode\n")
    sys.stdout.flush()
    raise RuntimeError("e2e_raise exploded: %s" % word)


if __name__ == "__main__":
    main()
