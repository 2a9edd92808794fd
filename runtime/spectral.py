"""Builtins of issue 10 that generated code calls as `rt.NAME`: reductions and shifts (`mean`,
`roll`, `concat`), `atan2`, `gelu`, the FFT family and the real part of complex values, and
the distributions beyond the normal and the uniform (Beta, Gamma, Bernoulli).

Every function takes tensors and Python numbers alike (a number becomes a float32 tensor, or a
complex64 one), and keeps the autograd graph of its tensor arguments.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .ops import _gen_device, _sample_shape, device
from .ops import real as _to_real


def _tensor(x: Any) -> torch.Tensor:
    """A tensor for `x`: complex numbers become complex64, other numbers float32."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, complex):
        return torch.tensor(x, dtype=torch.complex64, device=device())
    return torch.tensor(float(x), dtype=torch.float32, device=device())


def _floating(x: Any) -> torch.Tensor:
    t = _tensor(x)
    return t if t.is_floating_point() or t.is_complex() else t.to(torch.float32)


def _count(n: Any) -> int:
    return int(n.item()) if isinstance(n, torch.Tensor) else int(n)


# ---------------------------------------------------------------- reductions and shifts

def mean(x: Any) -> torch.Tensor:
    """The mean of all elements."""
    return torch.mean(_floating(x))


def roll(x: Any, shift: Any, dim: Any = None) -> torch.Tensor:
    """Elements shifted by `shift` along axis `dim`, wrapping around (no `dim`: over the
    flattened tensor, keeping its shape)."""
    x = _tensor(x)
    if dim is None:
        return torch.roll(x, _count(shift))
    return torch.roll(x, _count(shift), _count(dim))


def concat(*parts: Any) -> torch.Tensor:
    """The tensors one after another along their first axis."""
    tensors = [_tensor(p) for p in parts]
    tensors = [t.reshape(1) if t.dim() == 0 else t for t in tensors]
    kind = torch.result_type(*tensors) if len(tensors) > 1 else tensors[0].dtype
    return torch.cat([t.to(kind) for t in tensors])


# ---------------------------------------------------------------- elementwise

def atan2(y: Any, x: Any) -> torch.Tensor:
    """The angle of the point (x, y), in (-π, π]."""
    return torch.atan2(_floating(y), _floating(x))


def gelu(x: Any) -> torch.Tensor:
    """x·Φ(x), the Gaussian error linear unit (the exact, erf form)."""
    return F.gelu(_floating(x))


def real(x: Any) -> Any:
    """The real part of a complex value; a real value is its own real part, as a real tensor
    (`runtime.ops.real`, which this extends: numbers and lists become float32)."""
    if isinstance(x, complex):
        return x.real
    if isinstance(x, torch.Tensor) and x.is_complex():
        return torch.real(x)
    return _to_real(x)


def imag(x: Any) -> Any:
    """The imaginary part of a complex value (zeros for a real one)."""
    if isinstance(x, complex):
        return x.imag
    t = _tensor(x)
    return torch.imag(t) if t.is_complex() else torch.zeros_like(_floating(t))


# ---------------------------------------------------------------- Fourier transforms

def _transform(fn):
    def run(x: Any, *args: Any) -> torch.Tensor:
        return fn(_floating(x), *(_count(a) for a in args))
    run.__name__ = fn.__name__
    run.__doc__ = f"torch.fft.{fn.__name__} of x (further arguments: sizes and axes, as there)."
    return run


fft = _transform(torch.fft.fft)
ifft = _transform(torch.fft.ifft)
fft2 = _transform(torch.fft.fft2)
ifft2 = _transform(torch.fft.ifft2)
fftn = _transform(torch.fft.fftn)
ifftn = _transform(torch.fft.ifftn)
rfft = _transform(torch.fft.rfft)
irfft = _transform(torch.fft.irfft)


def compl_mul1d(x_ft: Any, weights: Any) -> torch.Tensor:
    """A spectral layer's product (upstream's FNO block): `out[o, x] = Σ_i x_ft[i, x] ·
    weights[i, o, x]`, over the input channels i, for every frequency mode x."""
    return torch.einsum("ix,iox->ox", _tensor(x_ft), _tensor(weights))


def random_complex(*shape: Any, scale: float = 0.1) -> torch.Tensor:
    """A complex64 tensor of the given shape whose real and imaginary parts are independent
    normal draws times `scale`."""
    size = tuple(_count(n) for n in shape)
    re = torch.randn(size, device=device()) * scale
    im = torch.randn(size, device=device()) * scale
    return torch.complex(re, im)


# ---------------------------------------------------------------- distributions

def sample_beta(a: Any, b: Any, *shape: Any) -> torch.Tensor:
    """Samples of Beta(a, b), shaped like sample_normal's."""
    a, b = _floating(a), _floating(b)
    size = _sample_shape(shape, a, b)
    return torch.distributions.Beta(a.expand(size), b.expand(size)).rsample()


def sample_gamma(concentration: Any, rate: Any, *shape: Any) -> torch.Tensor:
    """Samples of Gamma(concentration, rate), shaped like sample_normal's."""
    c, r = _floating(concentration), _floating(rate)
    size = _sample_shape(shape, c, r)
    return torch.distributions.Gamma(c.expand(size), r.expand(size)).rsample()


def sample_bernoulli(p: Any, *shape: Any) -> torch.Tensor:
    """0.0 / 1.0 draws that are 1 with probability p, shaped like sample_normal's."""
    p = _floating(p)
    size = _sample_shape(shape, p, p)
    return torch.bernoulli(p.expand(size).detach(), generator=None).to(_gen_device(None))


_DISTRIBUTIONS = {"normal": (2, torch.distributions.Normal), "uniform": (2, torch.distributions.Uniform),
                  "beta": (2, torch.distributions.Beta), "gamma": (2, torch.distributions.Gamma),
                  "bernoulli": (1, torch.distributions.Bernoulli)}


def draw_with_log_prob(dist: str, *args: Any, summed: bool = False) -> tuple:
    """`b, lp ~ D(params…, shape…)`: a draw (cut from the graph, as the score-function
    estimator wants) and its log-probability under D, which does depend on the parameters;
    `summed`: the log-probability of the whole draw, one number."""
    count, family = _DISTRIBUTIONS[dist]
    params = [_floating(a) for a in args[:count]]
    size = _sample_shape(tuple(args[count:]), params[0], params[-1])
    d = family(*(p.expand(size) for p in params))
    draw = d.sample().detach()
    log_p = d.log_prob(draw)
    return draw, (log_p.sum() if summed else log_p)


__all__ = ["atan2", "compl_mul1d", "draw_with_log_prob", "random_complex", "concat", "fft", "fft2", "fftn", "gelu", "ifft", "ifft2", "ifftn", "imag",
           "irfft", "mean", "real", "rfft", "roll", "sample_bernoulli", "sample_beta",
           "sample_gamma"]
