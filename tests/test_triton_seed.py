"""The seed program compiled with --backend triton runs under the Triton interpreter (CPU) and
trains exactly like the torch backend: same losses to 1e-5 on a few samples."""
import json
import os
import subprocess
import sys
from pathlib import Path

from test_seed import short_seed

SCRIPT = r"""
import json, os, sys
os.environ["TRITON_INTERPRET"] = "1"          # before triton is imported anywhere
sys.path.insert(0, {tests!r})
from helpers import compile_module
src = open({src!r}, encoding="utf-8").read()
out = {{}}
for backend in ("triton", "torch"):
    r = compile_module(src, backend, "seed_" + backend).main()
    out[backend] = {{"loss": float(r["loss"]), "kernel": r["cnn_object"].kernel.detach().flatten().tolist(),
                    "w": r["cnn_object"].w.detach().flatten()[:50].tolist(), "accuracy": float(r["accuracy"])}}
print(json.dumps(out))
"""


def test_seed_with_triton_kernels_matches_torch_backend(seed_source, tmp_path):
    src = tmp_path / "seed_short.phk"
    src.write_text(short_seed(seed_source, steps=3), encoding="utf-8")
    code = SCRIPT.format(tests=str(Path(__file__).parent), src=str(src))
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    t, ref = res["triton"], res["torch"]
    assert abs(t["loss"] - ref["loss"]) < 1e-5
    assert max(abs(a - b) for a, b in zip(t["kernel"], ref["kernel"])) < 1e-5
    assert max(abs(a - b) for a, b in zip(t["w"], ref["w"])) < 1e-5
    assert t["accuracy"] == ref["accuracy"]
