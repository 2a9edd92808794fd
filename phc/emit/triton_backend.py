"""Kernel specs -> Python source of Triton kernels with torch.autograd.Function glue.

One Jinja template per op kind in the repo's `templates/` folder. Stride, padding, pool size and
bias are baked into the source from the spec; block sizes are `tl.constexpr` arguments chosen by
`triton.autotune` from the configs below (one small config under the interpreter). The configs
live here, as data, so that `tile_check` checks exactly what is rendered.
"""
from __future__ import annotations

from functools import cache

import jinja2

from phc.resources import templates_dir

from phc.emit.tile_check import KernelTiles, TileConfig
from phc.select.plan import Conv2dSpec, KernelSpec, LinearSpec, Pool2dSpec


_GEMM_BLOCKS = ("BLOCK_M", "BLOCK_N", "BLOCK_K")


def _gemm(m: int, n: int, k: int, dot: bool, warps: int = 4, stages: int = 2) -> TileConfig:
    return TileConfig(tuple(zip(_GEMM_BLOCKS, (m, n, k))), dot, warps, stages)


def _block(warps: int = 4, **blocks: int) -> TileConfig:
    return TileConfig(tuple(blocks.items()), None, warps)


# Tall and wide tiles for the tl.sum path (tiny channel counts: the seed has one output
# channel), square ones for tl.dot; pruning at run time drops those far larger than the problem.
_GEMM_GPU = (
    _gemm(128, 4, 8, False), _gemm(64, 16, 8, False), _gemm(16, 64, 8, False),
    _gemm(16, 16, 32, False),
    _gemm(16, 64, 32, True, 4, 3), _gemm(64, 16, 32, True, 4, 3), _gemm(64, 64, 32, True, 4, 3),
    _gemm(128, 32, 32, True, 4, 3), _gemm(128, 64, 32, True, 8, 3),
)
_GEMM_INTERP = (_gemm(16, 16, 16, True),)
_POOL_GPU = tuple(_block(BLOCK=b) for b in (128, 256, 512, 1024))
_POOL_INTERP = (_block(BLOCK=32),)
_BIAS_GPU = (_block(BLOCK_O=1, BLOCK_P=1024), _block(BLOCK_O=4, BLOCK_P=256),
             _block(BLOCK_O=16, BLOCK_P=64))
_BIAS_INTERP = (_block(BLOCK_O=4, BLOCK_P=16),)


def _gemm_tiles(kernel: str, m: str, n: str, k: str) -> KernelTiles:
    return KernelTiles(kernel, tuple(zip(_GEMM_BLOCKS, (m, n, k))), _GEMM_BLOCKS,
                       _GEMM_GPU, _GEMM_INTERP)


def _pool_tiles(kernel: str, size: str) -> KernelTiles:
    return KernelTiles(kernel, (("BLOCK", size),), (), _POOL_GPU, _POOL_INTERP)


PRELUDE_TILES = {
    "bias_grad": KernelTiles("_phc_bias_grad_kernel", (("BLOCK_O", "O"), ("BLOCK_P", "NP")), (),
                             _BIAS_GPU, _BIAS_INTERP),
}


def kernel_tiles(spec: KernelSpec) -> dict[str, KernelTiles]:
    """The configs of every kernel that `render_op(spec)` defines, by role."""
    p = spec.symbol
    if isinstance(spec, Conv2dSpec):
        return {"fwd": _gemm_tiles(f"{p}_fwd_kernel", "M", "N", "R"),
                "bwd_input": _gemm_tiles(f"{p}_bwd_input_kernel", "M", "N", "R"),
                "bwd_weight": _gemm_tiles(f"{p}_bwd_weight_kernel", "M", "N", "NP")}
    if isinstance(spec, Pool2dSpec):
        return {"fwd": _pool_tiles(f"{p}_fwd_kernel", "NOUT"),
                "bwd": _pool_tiles(f"{p}_bwd_kernel", "NIN")}
    if isinstance(spec, LinearSpec):
        return {"mm": _gemm_tiles(f"{p}_mm_kernel", "M", "N", "K")}
    raise TypeError(f"no Triton template for {spec!r}")


def _config_source(cfg: TileConfig) -> str:
    args = ", ".join(f'"{k}": {v}' for k, v in cfg.kwargs().items())
    return f"triton.Config({{{args}}}, num_warps={cfg.num_warps}, num_stages={cfg.num_stages})"


def autotune_decorator(tiles: KernelTiles) -> str:
    """Template hook: the @triton.autotune line of one kernel, from its configs."""
    def listing(configs: tuple[TileConfig, ...]) -> str:
        return "".join(f"            {_config_source(c)},\n" for c in configs)

    sizes = ", ".join(f'"{b}": "{s}"' for b, s in tiles.sizes)
    key = ", ".join(f'"{k}"' for k in tiles.key)
    return (
        "@triton.autotune(\n"
        "    configs=_phc_configs(\n"
        f"        gpu=[\n{listing(tiles.gpu)}        ],\n"
        f"        interp=[\n{listing(tiles.interp)}        ],\n"
        "    ),\n"
        f"    key=[{key}],\n"
        f"    prune_configs_by=_phc_pruner({{{sizes}}}),\n"
        "    cache_results=True,\n"
        ")"
    )


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals["autotune"] = autotune_decorator
    return env


def _render(template: str, **context) -> str:
    return _environment().get_template(template).render(**context)


def render_prelude() -> str:
    """Imports, settings and helpers shared by every rendered op."""
    return _render("triton_prelude.py.j2", tiles=PRELUDE_TILES)


def render_op(spec: KernelSpec) -> str:
    """Kernels, autograd.Function and the wrapper `spec.symbol` of one op; goes after the prelude."""
    tiles = kernel_tiles(spec)
    if isinstance(spec, Conv2dSpec):
        if spec.stride < 1 or spec.padding < 0:
            raise ValueError(f"unsupported convolution {spec!r}")
        return _render("conv2d.py.j2", name=spec.symbol, stride=spec.stride,
                       padding=spec.padding, bias=spec.bias, tiles=tiles)
    if isinstance(spec, Pool2dSpec):
        if spec.kind not in ("max", "min", "avg") or spec.k < 1 or spec.stride < 1:
            raise ValueError(f"unsupported pooling {spec!r}")
        return _render("pool2d.py.j2", name=spec.symbol, kind=spec.kind, k=spec.k,
                       stride=spec.stride, tiles=tiles)
    return _render("linear.py.j2", name=spec.symbol, bias=spec.bias, tiles=tiles)


def render_ops(specs) -> str:
    """The prelude and each distinct op once, in order of first appearance."""
    unique: dict[str, KernelSpec] = {}
    for spec in specs:
        unique.setdefault(spec.symbol, spec)
    return "\n\n".join([render_prelude(), *(render_op(s) for s in unique.values())])


def all_tiles(specs) -> list[KernelTiles]:
    """Every kernel config that `render_ops(specs)` renders (for tile_check)."""
    return [*PRELUDE_TILES.values(), *(t for s in specs for t in kernel_tiles(s).values())]
