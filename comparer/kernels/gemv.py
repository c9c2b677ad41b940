"""Batch-1 matrix-vector products (decode projections) as one tiled Triton kernel with PDL.

Why: at batch 1 every projection is a GEMV that should stream its weight at the card's bandwidth,
but cuBLAS runs mid-sized ones as split-K plus a reduce kernel (Mamba-2.8B's 26 MB out_proj: 10.7 us,
2.3 TB/s on the H200) and, being outside Triton, cannot start loading its weight while the kernel
before it drains (see pdl.py). Here one program owns ``rows`` output rows over one K split, so the
grid covers every SM in one wave, and loads its first weight tile before waiting on its input.

The input may arrive pre-activation: ``act="gelu"`` (exact, erf) or ``act="silu_gate"`` (x holds
[gate | up], each K long: silu(gate) * up), computed as each tile of x is loaded and rounded to the
model dtype as PyTorch's eager activation is, so an MLP's activation kernel disappears. fp32
accumulation, as cuBLAS; the bias is added in fp32 before the one rounding, as cuBLAS' epilogue does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from comparer.kernels.pdl import after_previous, launch_args
from comparer.kernels.triton import tl, triton

ACTS = {None: 0, "gelu": 1, "silu_gate": 2}


@dataclass(frozen=True)
class Tiles:
    """A tiled GEMV's launch: ``rows`` per program, ``block_k`` columns per tile, K split in ``parts``
    (parts > 1 leaves fp32 partial rows for the next norm to add up), ``evict``: L2 eviction hint."""

    rows: int
    block_k: int
    parts: int = 1
    warps: int = 4
    stages: int = 3
    evict: bool = False


if triton is not None:

    @triton.jit
    def _x_tile(x_ptr, k, K: tl.constexpr, ACT: tl.constexpr):
        """Columns ``k`` of the GEMV's input, after the activation ACT, as fp32."""
        dtype = x_ptr.dtype.element_ty
        if ACT == 1:  # gelu(x) = x/2 (1 + erf(x / sqrt 2)), in fp32, rounded like torch's
            x = tl.load(x_ptr + k).to(tl.float32)
            x = (0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476))).to(dtype)
        elif ACT == 2:  # silu(gate) * up, each product rounded to the model dtype as in eager PyTorch
            g = tl.load(x_ptr + k).to(tl.float32)
            a = (g * tl.sigmoid(g)).to(dtype)
            x = (a.to(tl.float32) * tl.load(x_ptr + K + k).to(tl.float32)).to(dtype)
        else:
            x = tl.load(x_ptr + k)
        return x.to(tl.float32)

    @triton.jit
    def _gemv_tiles_kernel(w_ptr, x_ptr, b_ptr, out_ptr, N: tl.constexpr, K: tl.constexpr, KS: tl.constexpr,
                           BN: tl.constexpr, BK: tl.constexpr, EVICT: tl.constexpr, PRE: tl.constexpr,
                           HAS_BIAS: tl.constexpr, ACT: tl.constexpr, PDL: tl.constexpr):
        rows = tl.program_id(0) * BN + tl.arange(0, BN)
        live = rows < N
        k_start = tl.program_id(1) * KS
        # the first PRE columns before the wait: the weight does not depend on the previous kernel
        kp = k_start + tl.arange(0, PRE)
        wp = tl.load(w_ptr + rows[:, None] * K + kp[None, :], mask=live[:, None], other=0.0)
        if HAS_BIAS:
            bias = tl.load(b_ptr + rows, mask=live, other=0.0).to(tl.float32)
        after_previous(PDL)
        acc = tl.sum(wp.to(tl.float32) * _x_tile(x_ptr, kp, K, ACT)[None, :], axis=1)
        for k0 in range(PRE, KS, BK):
            k = k_start + k0 + tl.arange(0, BK)
            if EVICT:  # the weight is read once per step: keep it from pushing states out of L2
                w = tl.load(w_ptr + rows[:, None] * K + k[None, :], mask=live[:, None], other=0.0,
                            eviction_policy="evict_first")
            else:
                w = tl.load(w_ptr + rows[:, None] * K + k[None, :], mask=live[:, None], other=0.0)
            acc += tl.sum(w.to(tl.float32) * _x_tile(x_ptr, k, K, ACT)[None, :], axis=1)
        if HAS_BIAS:
            acc += bias
        tl.store(out_ptr + tl.program_id(1) * N + rows, acc.to(out_ptr.dtype.element_ty), mask=live)


def takes(weight: torch.Tensor, tiles: Tiles | None) -> bool:
    """Whether the tiled GEMV with ``tiles`` (None: off) takes this weight."""
    return tiles is not None and weight.is_contiguous() and weight.shape[1] % (tiles.parts * tiles.block_k) == 0


def tiled(x, weight, tiles: Tiles, bias=None, act: str | None = None, pre_tiles: int = 1, pdl: bool | None = None):
    """F.linear(act(x), weight, bias) for weight (N, K) contiguous, K a multiple of parts * block_k;
    x (1, K), or (1, 2K) for ``silu_gate``. parts == 1: (1, N) in x's dtype; parts > 1: the fp32
    partial rows (parts, 1, N), for the next norm to add up in a fixed order (no bias then).
    ``pre_tiles``: weight tiles loaded before the PDL wait; ``pdl``: as pdl.pdl_on."""
    n, k = weight.shape
    if tiles.parts > 1 and bias is not None:
        raise ValueError("a K-split GEMV leaves partial rows: add the bias where they are summed")
    if x.shape[-1] != (2 * k if act == "silu_gate" else k):
        raise ValueError(f"input of {x.shape[-1]} columns for a ({n}, {k}) weight with act={act!r}")
    parts = tiles.parts
    out = torch.empty(parts, 1, n, dtype=torch.float32 if parts > 1 else x.dtype, device=x.device)
    pre = min(pre_tiles, k // parts // tiles.block_k)
    pre = 1 << (pre.bit_length() - 1)  # a power of two, at most the tiles a split has
    _gemv_tiles_kernel[(triton.cdiv(n, tiles.rows), parts)](
        weight, x, bias if bias is not None else weight, out, N=n, K=k, KS=k // parts, BN=tiles.rows,
        BK=tiles.block_k, EVICT=tiles.evict, PRE=pre * tiles.block_k, HAS_BIAS=bias is not None, ACT=ACTS[act],
        num_warps=tiles.warps, num_stages=tiles.stages, **launch_args(x, pdl))
    return out if parts > 1 else out[0]
