"""Static checks of the Triton launch configurations that phc renders.

The Triton interpreter accepts tiles a GPU refuses (any `tl.dot` size, any block size), so CPU-only
tests cannot see such mistakes by running kernels. These checks can: they look at the configs
themselves, and `compile_for_gpu` compiles a kernel for an NVIDIA target without any GPU (Triton
ships its own ptxas), which catches what only the real code generator rejects.
"""
from __future__ import annotations

from dataclasses import dataclass

DOT_MIN = 16                 # tl.dot refuses tiles below 16x16x16 on a GPU
FMA_ELEMS_PER_THREAD = 128   # the [BM, BK, BN] product of the tl.sum path lives in registers


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
