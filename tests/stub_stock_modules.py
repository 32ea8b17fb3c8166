"""Replace ansible-core's own async_wrapper and async_status modules with stubs that fail loudly.

Run with the python of a controller venv (tests/setup-venvs.sh does):

    .venv/core-2.19/bin/python tests/stub_stock_modules.py

The end-to-end tests put this project's native modules first in the module path; if ansible ever
fell back to its built-in Python modules, the stub answers

    {"failed": true, "msg": "STOCK async_wrapper RAN: the native module was not used"}

and exits 1, so the test fails instead of passing on stock behaviour.

The original of each file is kept beside it as `<name>.py.orig` (a benchmark needs the stock
modules). `--restore` puts the originals back. Running it again is harmless: the stub is always
rebuilt from the `.orig` copy. The stub keeps the module's DOCUMENTATION, EXAMPLES and RETURN
blocks, so `ansible-doc` and anything else that reads the module's documentation keep working.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

NAMES = ("async_wrapper", "async_status")
STUB_MARK = "STUB installed by tests/stub_stock_modules.py"
DOC_BLOCKS = ("DOCUMENTATION", "EXAMPLES", "RETURN")

STUB_TEMPLATE = '''\
# -*- coding: utf-8 -*-
# {mark}: the stock {name} module must never run in
# this project's end-to-end tests. The original is {name}.py.orig beside this file.

from __future__ import annotations

{docs}
import json
import sys

# A module_utils import keeps this a "new-style" module, shipped and run exactly like the original.
from ansible.module_utils.common.text.converters import to_text


def main():
    print(json.dumps({{"failed": True, "msg": to_text("STOCK {name} RAN: the native module was not used")}}))
    sys.stdout.flush()
    sys.exit(1)


if __name__ == "__main__":
    main()
'''


def modules_dir() -> Path:
    spec = importlib.util.find_spec("ansible.modules")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("stub_stock_modules: ansible is not installed for %s" % sys.executable)
    return Path(list(spec.submodule_search_locations)[0])


def doc_blocks(source: str) -> str:
    """The module's top-level DOCUMENTATION/EXAMPLES/RETURN assignments, verbatim."""
    blocks = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id in DOC_BLOCKS for target in node.targets
        ):
            blocks.append(ast.get_source_segment(source, node))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def stub_source(name: str, original: str) -> str:
    return STUB_TEMPLATE.format(mark=STUB_MARK, name=name, docs=doc_blocks(original))


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    shutil.copymode(path, tmp)
    os.replace(tmp, path)


def stub(directory: Path) -> None:
    for name in NAMES:
        module = directory / (name + ".py")
        orig = directory / (name + ".py.orig")
        if not orig.exists():
            current = module.read_text(encoding="utf-8")
            if STUB_MARK in current:
                sys.exit("stub_stock_modules: %s is a stub and %s is missing: reinstall ansible-core" % (module, orig))
            shutil.copy2(module, orig)
        original = orig.read_text(encoding="utf-8")
        source = stub_source(name, original)
        compile(source, str(module), "exec")
        write_atomically(module, source)
        print("stubbed %s (original kept as %s)" % (module, orig.name))


def restore(directory: Path) -> None:
    for name in NAMES:
        orig = directory / (name + ".py.orig")
        if orig.exists():
            os.replace(orig, directory / (name + ".py"))
            print("restored %s" % (directory / (name + ".py")))


def check(directory: Path) -> None:
    """ansible must still load the stubs: documentation parses, and each stub fails loudly."""
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    if ansible_doc.exists():
        out = subprocess.run(
            [str(ansible_doc), "-j", "ansible.builtin.async_status"],
            capture_output=True, text=True, check=False,
        )
        try:
            doc = json.loads(out.stdout)["ansible.builtin.async_status"]["doc"]
        except (ValueError, KeyError, TypeError):
            sys.exit("stub_stock_modules: ansible-doc cannot read the stubbed async_status:\n%s%s"
                     % (out.stdout, out.stderr))
        if "jid" not in doc.get("options", {}):
            sys.exit("stub_stock_modules: ansible-doc lost async_status's options")
    for name in NAMES:
        # run_path, not `python FILE`: the modules dir must not shadow the stdlib (copy, tempfile...)
        code = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
        run = subprocess.run([sys.executable, "-c", code, str(directory / (name + ".py"))],
                             capture_output=True, text=True, check=False)
        reply = json.loads(run.stdout)
        expected = "STOCK %s RAN: the native module was not used" % name
        if run.returncode != 1 or reply != {"failed": True, "msg": expected}:
            sys.exit("stub_stock_modules: the %s stub does not fail as it should: rc=%s %r"
                     % (name, run.returncode, run.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restore", action="store_true", help="put the stock modules back")
    args = parser.parse_args()
    directory = modules_dir()
    if args.restore:
        restore(directory)
    else:
        stub(directory)
        check(directory)


if __name__ == "__main__":
    main()
