"""The stock async modules of the controller venvs, replaced by stubs that fail loudly.

The end-to-end tests put this project's native modules first in the module path; if ansible ever
fell back to its built-in Python modules, the stub answers

    {"failed": true, "msg": "STOCK async_wrapper RAN: the native module was not used"}

and exits 1, so the test fails instead of passing on stock behaviour. tests/setup-venvs.sh runs
tests/stub_stock_modules.py (this module's main()) with the python of each venv it makes.

The original of each file is kept beside it as `<name>.py.orig` (the comparisons with stock
ansible and a benchmark need the stock modules: stock_module_source(), stock_library()).
`--restore` puts the originals back. Running it again is harmless: the stub is always rebuilt
from the `.orig` copy. The stub keeps the module's DOCUMENTATION, EXAMPLES and RETURN blocks, so
`ansible-doc` and anything else that reads the module's documentation keep working.
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
# In every stub; the venvs made so far carry this very text, so it stays as it is.
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
    """ansible's modules folder of the python running this."""
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


def venv_modules_dir(python: Path) -> Path:
    """ansible's modules folder in the venv of `python` (another interpreter than this one)."""
    run = subprocess.run(
        [str(python), "-c", "import ansible.modules, os; print(os.path.dirname(ansible.modules.__file__))"],
        capture_output=True, text=True, check=True,
    )
    return Path(run.stdout.strip())


def is_stub(path: Path) -> bool:
    return path.exists() and STUB_MARK in path.read_text(errors="replace")


def stock_module_source(python: Path, name: str) -> Path | None:
    """ansible's own module `name` (async_wrapper, async_status) in the venv of `python`: the
    `.py.orig` the venv set-up kept, or the module itself when it was not replaced by a stub."""
    modules = venv_modules_dir(python)
    for candidate in (modules / f"{name}.py.orig", modules / f"{name}.py"):
        if candidate.exists() and not is_stub(candidate):
            return candidate
    return None


def stock_library(python: Path, into: Path) -> Path:
    """A library folder `into` holding ansible's own async_wrapper.py and async_status.py (of the
    venv of `python`): in ANSIBLE_LIBRARY it comes before the stubs inside the venv."""
    into.mkdir(exist_ok=True)
    for name in NAMES:
        source = stock_module_source(python, name)
        if source is None:
            raise AssertionError(f"{python}: no stock {name}.py(.orig) in the venv")
        shutil.copyfile(source, into / f"{name}.py")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Replace ansible-core's own async_wrapper and async_status modules with stubs that fail loudly.")
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
