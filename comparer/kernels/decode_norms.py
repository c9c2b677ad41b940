"""Residual add fused with the layer norms of a one-token decode step (Triton).

Why: PyTorch's LayerNorm kernel spends ~9 us on a single 4,096-wide row on the H200 (one block
walks it), twice per Pythia layer: 0.57 ms of a 6 ms step. A GPT-NeoX layer with parallel
residual normalises the same residual twice (attention and MLP inputs), so one program reads it
once, adds the previous layer's two outputs in transformers' order ``(mlp + attn) + h`` and
writes both normalised rows. Llama's RMSNorm in eager PyTorch is six kernels; here it is one,
fused with the residual add before it. Arithmetic follows transformers: adds in the model dtype,
statistics in fp32.
"""

from __future__ import annotations

import torch

from comparer.kernels.pdl import after_previous, launch_args
from comparer.kernels.triton import on_device, tl, triton

if triton is not None:

    @triton.jit
    def _add_ln_pair_kernel(h_ptr, mlp_ptr, attn_ptr, res_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, y1_ptr, y2_ptr,
                            N: tl.constexpr, eps, HAS_ADD: tl.constexpr, BLOCK: tl.constexpr, PDL: tl.constexpr):
        cols = tl.arange(0, BLOCK)
        live = cols < N
        w1 = tl.load(w1_ptr + cols, mask=live, other=0.0).to(tl.float32)  # weights before the wait
        b1 = tl.load(b1_ptr + cols, mask=live, other=0.0).to(tl.float32)
        w2 = tl.load(w2_ptr + cols, mask=live, other=0.0).to(tl.float32)
        b2 = tl.load(b2_ptr + cols, mask=live, other=0.0).to(tl.float32)
        after_previous(PDL)
        x = tl.load(h_ptr + cols, mask=live, other=0.0)
        if HAS_ADD:
            x = (tl.load(mlp_ptr + cols, mask=live, other=0.0) + tl.load(attn_ptr + cols, mask=live, other=0.0)) + x
            tl.store(res_ptr + cols, x, mask=live)
        xf = x.to(tl.float32)
        mean = tl.sum(xf, axis=0) / N
        xc = tl.where(live, xf - mean, 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, axis=0) / N + eps)
        xn = xc * rstd
        tl.store(y1_ptr + cols, (xn * w1 + b1).to(y1_ptr.dtype.element_ty), mask=live)
        tl.store(y2_ptr + cols, (xn * w2 + b2).to(y2_ptr.dtype.element_ty), mask=live)

    @triton.jit
    def _add_rms_kernel(h_ptr, delta_ptr, res_ptr, w_ptr, y_ptr, N: tl.constexpr, eps, HAS_ADD: tl.constexpr,
                        BLOCK: tl.constexpr, PDL: tl.constexpr):
        cols = tl.arange(0, BLOCK)
        live = cols < N
        w = tl.load(w_ptr + cols, mask=live, other=0.0)  # the weight before the wait
        after_previous(PDL)
        x = tl.load(h_ptr + cols, mask=live, other=0.0)
        if HAS_ADD:
            x = x + tl.load(delta_ptr + cols, mask=live, other=0.0)
            tl.store(res_ptr + cols, x, mask=live)
        xf = x.to(tl.float32)
        xn = xf / tl.sqrt(tl.sum(xf * xf, axis=0) / N + eps)
        tl.store(y_ptr + cols, w * xn.to(w.dtype), mask=live)


def _warps(n: int) -> int:
    return 8 if n >= 4096 else 4


def add_ln_pair(h, mlp, attn, ln1, ln2, pdl: bool = False):
    """h, mlp, attn (1, hidden) — mlp/attn None on the first layer. Returns the new residual
    ``(mlp + attn) + h`` and ``ln1(residual)``, ``ln2(residual)``. ``pdl``: launch with programmatic
    dependent launch (kernels/pdl.py)."""
    n = h.shape[-1]
    res = torch.empty_like(h) if mlp is not None else h
    y1, y2 = torch.empty_like(h), torch.empty_like(h)
    with on_device(h):
        _add_ln_pair_kernel[(1,)](h, mlp if mlp is not None else h, attn if attn is not None else h, res, ln1.weight,
                                  ln1.bias, ln2.weight, ln2.bias, y1, y2, N=n, eps=ln1.eps, HAS_ADD=mlp is not None,
                                  BLOCK=triton.next_power_of_2(n), num_warps=_warps(n), **launch_args(h, pdl))
    return res, y1, y2


def add_rms(h, delta, norm, pdl: bool = False):
    """h, delta (1, hidden) — delta None for no add. Returns ``h + delta`` and ``norm(h + delta)``
    for a Llama RMSNorm module (weight, variance_epsilon); ``pdl`` as in add_ln_pair."""
    n = h.shape[-1]
    res = torch.empty_like(h) if delta is not None else h
    y = torch.empty_like(h)
    with on_device(h):
        _add_rms_kernel[(1,)](h, delta if delta is not None else h, res, norm.weight, y, N=n,
                              eps=norm.variance_epsilon, HAS_ADD=delta is not None, BLOCK=triton.next_power_of_2(n),
                              num_warps=_warps(n), **launch_args(h, pdl))
    return res, y
