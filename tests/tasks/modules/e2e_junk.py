#!/usr/bin/python
# -*- coding: utf-8 -*-
# e2e test module: prints junk lines before its JSON result and, unless trailing=false,
# junk after it, as a noisy login shell or a chatty library would.
# WANT_JSON

import json
import sys


def main():
    with open(sys.argv[1]) as handle:
        args = json.load(handle)
    trailing = args.get("trailing", True)
    if isinstance(trailing, str):
        trailing = trailing.lower() in ("1", "true", "yes", "on")
    out = sys.stdout
    out.write("leading junk: Welcome to the e2e host\n")
    out.write("leading junk: } not JSON {\n")
    out.write(json.dumps({"changed": False, "parsed": "yes", "trailing": trailing}) + "\n")
    if trailing:
        out.write("trailing junk: goodbye\n")
    out.flush()
    sys.exit(0)


if __name__ == "__main__":
    main()
