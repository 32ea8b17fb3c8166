"""What every conformance test runs: each implementation of the wrapper, as a library/ folder."""

import subprocess

import pytest

from harness.paths import LIBRARY, TESTS


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    """{"native": library/ as make build writes it, "fallback": one whose async_wrapper can only
    take the portable fallback (tests/foreign/fallback-library.sh)}."""
    fallback = tmp_path_factory.mktemp("fallback-library")
    subprocess.run(["sh", str(TESTS / "foreign" / "fallback-library.sh"), str(fallback)], check=True)
    return {"native": LIBRARY, "fallback": fallback}
