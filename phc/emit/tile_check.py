"""Static checks of the Triton launch configurations that phc renders.

The Triton interpreter accepts tiles a GPU refuses (any `tl.dot` size, any block size), so CPU-only
tests cannot see such mistakes by running kernels. These checks can: they look at the configs
themselves, and `compile_for_gpu` compiles a kernel for an NVIDIA target without any GPU (Triton
ships its own ptxas), which catches what only the real code generator rejects.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

DOT_MIN = 16                 # tl.dot refuses tiles below 16x16x16 on a GPU
FMA_ELEMS_PER_THREAD = 128   # the [BM, BK, BN] product of the tl.sum path lives in registers
SHARED_BYTES = {80: 166912, 90: 232448}   # per-block shared memory limits (A100, H100)


@dataclass(frozen=True, slots=True)
class TileConfig:
    """One triton.Config: block sizes, whether tl.dot is used (None: the kernel has no such switch)."""
    blocks: tuple[tuple[str, int], ...]
    use_dot: bool | None = None
    num_warps: int = 4
    num_stages: int = 2

    def kwargs(self) -> dict[str, int | bool]:
        out: dict[str, int | bool] = dict(self.blocks)
        if self.use_dot is not None:
            out["USE_DOT"] = self.use_dot
        return out


@dataclass(frozen=True, slots=True)
class KernelTiles:
    """The configs of one kernel. `sizes` maps each block name to the size argument it tiles
    (autotune key and clamping); `dot` names the blocks that tl.dot multiplies, M N K order."""
    kernel: str
    sizes: tuple[tuple[str, str], ...]
    dot: tuple[str, ...]
    gpu: tuple[TileConfig, ...]
    interp: tuple[TileConfig, ...]

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(size for _, size in self.sizes))


def is_pow2(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def check_config(cfg: TileConfig, dot: tuple[str, ...]) -> list[str]:
    """Problems of one config for a kernel whose tl.dot blocks are `dot`."""
    blocks = dict(cfg.blocks)
    problems = [f"{k}={v} is not a power of two" for k, v in cfg.blocks if not is_pow2(v)]
    if not is_pow2(cfg.num_warps) or cfg.num_warps > 32:
        problems.append(f"num_warps={cfg.num_warps} is not a power of two <= 32")
    if cfg.num_stages < 1:
        problems.append(f"num_stages={cfg.num_stages} < 1")
    if dot and cfg.use_dot is None:
        problems.append("kernel has a tl.dot path but the config does not set USE_DOT")
    if cfg.use_dot:
        problems += [f"tl.dot tile {k}={blocks[k]} < {DOT_MIN}" for k in dot if blocks[k] < DOT_MIN]
    elif dot:
        elems = blocks[dot[0]] * blocks[dot[1]] * blocks[dot[2]]
        if elems > FMA_ELEMS_PER_THREAD * 32 * cfg.num_warps:
            problems.append(f"tl.sum tile of {elems} elements spills registers")
    return problems


def check_kernel(tiles: KernelTiles) -> list[str]:
    """Problems of every config of one kernel, each prefixed with the kernel and config."""
    problems = []
    if len(tiles.interp) != 1:
        problems.append(f"{tiles.kernel}: the interpreter needs exactly one config (autotuning there is slow)")
    if not tiles.gpu:
        problems.append(f"{tiles.kernel}: no GPU config")
    names = {b for b, _ in tiles.sizes} | set(tiles.dot)
    for cfg in tiles.gpu + tiles.interp:
        missing = names - dict(cfg.blocks).keys()
        found = [f"missing block {m}" for m in sorted(missing)] or check_config(cfg, tiles.dot)
        problems += [f"{tiles.kernel} {cfg.kwargs()}: {p}" for p in found]
    return problems


_TRITON_DTYPES = {"float32": "fp32", "float64": "fp64"}


def gpu_signature(jit_fn, constexprs: dict, dtype: str) -> tuple[dict, dict]:
    """Signature of a phc kernel by its naming convention: `*_ptr` are pointers to `dtype`,
    constexpr parameters take their value from `constexprs`, every other argument is an i32."""
    signature, values = {}, {}
    for param in jit_fn.params:
        if param.is_constexpr:
            signature[param.name] = "constexpr"
            values[param.name] = constexprs[param.name]
        elif param.name.endswith("_ptr"):
            signature[param.name] = "*" + _TRITON_DTYPES[dtype]
        else:
            signature[param.name] = "i32"
    return signature, values


def compile_for_gpu(jit_fn, constexprs: dict, dtype: str = "float32", arch: int = 90):
    """Compiles a (non-interpreted) @triton.jit function for CUDA sm_`arch` without a GPU."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature, values = gpu_signature(jit_fn, constexprs, dtype)
    source = ASTSource(jit_fn, signature=signature, constexprs=values)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32))


def _representative_specs():
    from phc.select.plan import Conv2dSpec, LinearSpec, Pool2dSpec
    return [Conv2dSpec(1, 0, True), Conv2dSpec(2, 1, False), Pool2dSpec("max", 2, 2),
            Pool2dSpec("min", 2, 2), Pool2dSpec("avg", 2, 2), Pool2dSpec("max", 3, 2),
            LinearSpec(True), LinearSpec(False)]


def _largest(configs):
    return max(configs, key=lambda c: sorted(dict(c.blocks).values(), reverse=True))


def compile_cases(tiles: KernelTiles, full: bool) -> list[tuple[TileConfig, str]]:
    """(config, dtype) pairs to compile: every GPU config in both dtypes when `full`, else the
    largest tl.sum config in float32 and the largest tl.dot config in float32 and float64."""
    if full:
        return [(c, d) for c in tiles.gpu for d in ("float32", "float64")]
    dots = [c for c in tiles.gpu if c.use_dot]
    sums = [c for c in tiles.gpu if not c.use_dot]
    return [(_largest(sums), "float32")] + [(_largest(dots), d) for d in ("float32", "float64") if dots]


def _import_compiled(source: str) -> dict:
    """Imports rendered source as generated modules are imported (@triton.jit reads its source
    from the module's file), as compiled kernels."""
    from phc.loader import load_module
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise RuntimeError("TRITON_INTERPRET=1: kernels would be interpreted, not compiled")
    return vars(load_module(source, "phc_tile_check_ops")[0])


def compile_rendered(specs, arch: int = 90, full: bool = False,
                     configs: list[TileConfig] | None = None) -> tuple[int, list[str]]:
    """Renders `specs`, compiles their kernels for sm_`arch`; (compiles done, failures).
    `configs` replaces the rendered configs (float32) of the kernels with the same block names.
    Run it in a process that has not interpreted kernels: the interpreter patches triton.language."""
    from phc.emit.triton_backend import all_tiles, render_ops
    namespace = _import_compiled(render_ops(specs))
    done, failures = 0, []
    for tiles in all_tiles(specs):
        names = {b for b, _ in tiles.sizes}
        cases = ([(c, "float32") for c in configs if set(dict(c.blocks)) == names]
                 if configs else compile_cases(tiles, full))
        for cfg, dtype in cases:
            constexprs = {**cfg.kwargs(), "KH": 5, "KW": 3, "ADD_BIAS": True}
            try:
                compiled = compile_for_gpu(namespace[tiles.kernel].fn, constexprs, dtype, arch)
                done += 1
            except Exception as e:  # noqa: BLE001 - every compile error is a finding
                failures.append(f"{tiles.kernel} {cfg.kwargs()} {dtype}: {str(e).strip()[:400]}")
                continue
            if compiled.metadata.shared > SHARED_BYTES.get(arch, compiled.metadata.shared):
                failures.append(f"{tiles.kernel} {cfg.kwargs()} {dtype}: needs "
                                f"{compiled.metadata.shared} bytes of shared memory")
    return done, failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phc.emit.tile_check",
                                     description="Check and GPU-compile (no GPU needed) phc's Triton kernels.")
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability, e.g. 80, 90")
    parser.add_argument("--full", action="store_true", help="every GPU config in both dtypes")
    args = parser.parse_args(argv)
    os.environ["TRITON_INTERPRET"] = "0"
    from phc.emit.triton_backend import all_tiles
    specs = _representative_specs()
    problems = [p for t in all_tiles(specs) for p in check_kernel(t)]
    done, failures = compile_rendered(specs, args.arch, args.full)
    for line in problems + failures:
        print(line)
    print(f"{done} kernels compiled for sm_{args.arch}, {len(problems)} config problems, "
          f"{len(failures)} compile failures")
    return 1 if problems or failures else 0


if __name__ == "__main__":
    sys.exit(main())
