"""assemble.sh, which writes library/ from the programs, the rules and the architecture list:
the same inputs give the same library/, and a list whose names library/async_status could
not find a copy by is refused.

Run after `make build` (it reuses the programs and rules that `make build` made).
"""

import shutil
import subprocess

import pytest

from harness.arches import ARCH_LIST, ARCHES
from harness.paths import LIBRARY, PROGRAMS, REPO

SOURCES = ARCH_LIST.parent
RULES = REPO / "target" / "rules" / "rules.py"
PACK = REPO / "target" / "release" / "payload-pack"
SCRIPTS = ("async_wrapper", "async_status", "async_job")


def assemble(tmp_path, arches_text):
    """assemble.sh from a copy of its sources with `arches_text` as the list, into tmp/library."""
    crate = tmp_path / "ansible-async"
    shutil.copytree(SOURCES / "library", crate / "library")
    (crate / "arches").write_text(arches_text)
    out = tmp_path / "library"
    out.mkdir()
    programs = [f"{arch}={PROGRAMS / f'ansible-async.{arch}'}" for arch in ARCHES]
    return out, subprocess.run(["sh", str(crate / "library" / "assemble.sh"), str(out), f"rules={RULES}", f"pack={PACK}",
                                *programs],
                               capture_output=True, text=True, timeout=120)


def test_the_same_inputs_give_the_library_that_make_build_wrote(tmp_path):
    out, done = assemble(tmp_path, ARCH_LIST.read_text())
    assert done.returncode == 0, done.stderr
    for name in SCRIPTS:
        assert (out / name).read_bytes() == (LIBRARY / name).read_bytes(), name


@pytest.mark.parametrize("line", [
    "amd64    x86_64|amd64    x86_64-unknown-linux-musl",  # the name is not the first spelling
    "x86_64   amd64|x86_64    x86_64-unknown-linux-musl",  # ... nor is the kernel's first
    "X86_64   X86_64          x86_64-unknown-linux-musl",  # not a name uname -m gives
    "x86_64   x86_64",  # no target
])
def test_a_name_that_is_not_the_kernels_own_is_refused(tmp_path, line):
    text = "\n".join(line if row.startswith("x86_64 ") else row for row in ARCH_LIST.read_text().splitlines())
    out, done = assemble(tmp_path, text + "\n")
    assert done.returncode != 0
    assert "arches:" in done.stderr and "want NAME NAME|SPELLING... TARGET" in done.stderr, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [], "a refused list left files behind"
