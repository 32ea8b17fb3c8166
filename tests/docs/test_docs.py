"""The documents name only what exists: every file or folder of the source tree that README.md,
docs/*.md and the suites' READMEs name in backquotes (`crates/...`, `tests/...`, ...) is there,
relative to the repository or to the document's own folder. A renamed or removed file whose
documents were not updated fails here. (The job file keys the documents must name are held by
async-core's `the_docs_name_every_key_a_record_writes`.)
"""

import re

import pytest

from harness.paths import REPO

DOCUMENTS = sorted([REPO / "README.md", REPO / "tests" / "README.md", *(REPO / "docs").glob("*.md"),
                    *(REPO / "tests").glob("*/README.md")])
# A path of the tree: starts with one of its top folders, no wildcard or placeholder in it.
PATH = re.compile(r"`((?:crates|tests|action_plugins|callback_plugins|library|playbooks|docs|\.ci)/[A-Za-z0-9_./-]*)`")


def named_paths(document):
    for match in PATH.finditer(document.read_text()):
        path = match.group(1).rstrip("/")
        if not path.endswith("..."):  # `tests/...`: a kind of path, not one
            yield path


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_path_a_document_names_exists(document):
    missing = [path for path in named_paths(document)
               if not (REPO / path).exists() and not (document.parent / path).exists()]
    assert missing == [], f"{document.relative_to(REPO)} names what is not in the tree: {missing}"
