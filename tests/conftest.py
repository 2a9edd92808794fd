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


GPU_SKIP_REASON = ("gpu marker: no CUDA device on this machine (the only tests allowed to skip; "
                   "run them with `python benchmarks/gpu_suite.py` on a CUDA machine)")


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` are skipped, saying why, where no CUDA device exists; nothing else may
    skip. With a device they run, and fail loudly unless TRITON_INTERPRET=0 (see tests/test_gpu.py)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch
    if not torch.cuda.is_available():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=GPU_SKIP_REASON))
