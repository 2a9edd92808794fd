"""Shared fixtures: the seed program ships as examples/cnn_seed.phk (a copy of the normative
../shared/programs/cnn_seed.phk; tests/test_standalone.py checks that they are identical)."""
import os
import sys
from pathlib import Path

# Triton kernels run under the CPU interpreter unless a GPU run says otherwise (TRITON_INTERPRET=0);
# it must be set before triton is first imported.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))      # tests/helpers.py
sys.path.insert(1, str(ROOT))       # the checkout's phc (and the `runtime` alias of phc.runtime)


@pytest.fixture(scope="session")
def seed_path() -> Path:
    return ROOT / "examples" / "cnn_seed.phk"


@pytest.fixture(scope="session")
def seed_source(seed_path) -> str:
    return seed_path.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _verify_ir(monkeypatch):
    """Every program a test lowers goes through the IR verifier."""
    monkeypatch.setenv("PHC_VERIFY", "1")
