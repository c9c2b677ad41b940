"""Batch-1 matrix-vector products (decode projections) as one tiled Triton kernel with PDL.

Why: at batch 1 every projection is a GEMV that should stream its weight at the card's bandwidth,
but cuBLAS runs mid-sized ones as split-K plus a reduce kernel (Mamba-2.8B's 26 MB out_proj: 10.7 us,
2.3 TB/s on the H200) and, being outside Triton, cannot start loading its weight while the kernel
before it drains (see pdl.py). Here one program owns ``rows`` output rows over one K split, so the
grid covers every SM in one wave, and loads its first weight tile before waiting on its input.

The MLP's activation runs on the output rows as they are stored: ``act="gelu"`` (exact, erf) after
an MLP's up projection, or ``act="silu_gate"`` over Llama's fused [gate; up] weight, where each
program owns a gate row block and the matching up rows, so silu(gate) * up leaves the kernel and an
activation kernel (two for Llama) disappears. (Applying it to the down projection's input instead
recomputed each activation once per row block: 45.6 against cuBLAS + eager GELU's 40.2 us on the
H200.) Every step is rounded to the model dtype as in eager PyTorch; fp32 accumulation, as cuBLAS;
the bias is added in fp32 before the first rounding, as cuBLAS' epilogue does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from comparer.kernels import l2_warm
from comparer.kernels.l2_warm import warm as _warm
from comparer.kernels.pdl import after_previous, launch_args
from comparer.kernels.triton import on_device, tl, triton

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
    def _activate(acc, acc_up, ACT: tl.constexpr, dtype: tl.constexpr):
        """The product's rows in the output dtype, after ACT, each step rounded as in eager PyTorch:
        the projection's output, then the activation (and for silu_gate, the product with up)."""
        y = acc.to(dtype)
        if ACT == 1:  # gelu(y) = y/2 (1 + erf(y / sqrt 2)) in fp32, as torch computes it for fp16
            yf = y.to(tl.float32)
            y = (0.5 * yf * (1.0 + tl.math.erf(yf * 0.7071067811865476))).to(dtype)
        elif ACT == 2:  # silu(gate) * up
            g = y.to(tl.float32)
            y = ((g * tl.sigmoid(g)).to(dtype).to(tl.float32) * acc_up.to(dtype).to(tl.float32)).to(dtype)
        return y

    @triton.jit
    def _gemv_tiles_kernel(w_ptr, x_ptr, b_ptr, out_ptr, N: tl.constexpr, K: tl.constexpr, KS: tl.constexpr,
                           BN: tl.constexpr, BK: tl.constexpr, EVICT: tl.constexpr, PRE: tl.constexpr,
                           HAS_BIAS: tl.constexpr, ACT: tl.constexpr, warm_ptr, warm_bytes, WARM: tl.constexpr,
                           CHUNK: tl.constexpr, PDL: tl.constexpr):
        _warm(warm_ptr, warm_bytes, WARM, CHUNK)  # the next projection's weight, for later (see l2_warm)
        rows = tl.program_id(0) * BN + tl.arange(0, BN)
        live = rows < N
        k_start = tl.program_id(1) * KS
        # the first PRE columns before the wait: the weight does not depend on the previous kernel
        kp = k_start + tl.arange(0, PRE)
        wp = tl.load(w_ptr + rows[:, None] * K + kp[None, :], mask=live[:, None], other=0.0)
        if ACT == 2:  # the up rows, N below the gate rows
            wp_up = tl.load(w_ptr + (rows + N)[:, None] * K + kp[None, :], mask=live[:, None], other=0.0)
        bias_up = tl.zeros([BN], dtype=tl.float32)
        if HAS_BIAS:
            bias = tl.load(b_ptr + rows, mask=live, other=0.0).to(tl.float32)
            if ACT == 2:
                bias_up += tl.load(b_ptr + N + rows, mask=live, other=0.0).to(tl.float32)
        after_previous(PDL)
        xp = tl.load(x_ptr + kp).to(tl.float32)[None, :]
        acc = tl.sum(wp.to(tl.float32) * xp, axis=1)
        acc_up = tl.zeros([BN], dtype=tl.float32)
        if ACT == 2:
            acc_up += tl.sum(wp_up.to(tl.float32) * xp, axis=1)
        for k0 in range(PRE, KS, BK):
            k = k_start + k0 + tl.arange(0, BK)
            if EVICT:  # the weight is read once per step: keep it from pushing states out of L2
                w = tl.load(w_ptr + rows[:, None] * K + k[None, :], mask=live[:, None], other=0.0,
                            eviction_policy="evict_first")
            else:
                w = tl.load(w_ptr + rows[:, None] * K + k[None, :], mask=live[:, None], other=0.0)
            x = tl.load(x_ptr + k).to(tl.float32)[None, :]
            acc += tl.sum(w.to(tl.float32) * x, axis=1)
            if ACT == 2:
                w_up = tl.load(w_ptr + (rows + N)[:, None] * K + k[None, :], mask=live[:, None], other=0.0)
                acc_up += tl.sum(w_up.to(tl.float32) * x, axis=1)
        if HAS_BIAS:
            acc += bias
        y = _activate(acc, acc_up + bias_up, ACT, out_ptr.dtype.element_ty)
        tl.store(out_ptr + tl.program_id(1) * N + rows, y, mask=live)


def takes(weight: torch.Tensor, tiles: Tiles | None) -> bool:
    """Whether the tiled GEMV with ``tiles`` (None: off) takes this weight."""
    return tiles is not None and weight.is_contiguous() and weight.shape[1] % (tiles.parts * tiles.block_k) == 0


def tiled(x, weight, tiles: Tiles, bias=None, act: str | None = None, pre_tiles: int = 1, pdl: bool | None = None,
          warm=None, warm_fraction: float = 0.0, warm_chunk_bytes: int = l2_warm.CHUNK_BYTES):
    """act(F.linear(x, weight, bias)) for x (1, K), weight (N, K) contiguous, K a multiple of
    parts * block_k. ``silu_gate``: weight is [gate; up] (2N', K), the result silu(gate x) * (up x),
    (1, N'). parts == 1: (1, N) in x's dtype; parts > 1: the fp32 partial rows (parts, 1, N), for the
    next norm to add up in a fixed order (no bias or activation then). ``pre_tiles``: weight tiles
    loaded before the PDL wait; ``pdl``: as pdl.pdl_on; ``warm``: a weight read later in the step, the first
    ``warm_fraction`` of it asked into L2 on the way, in prefetches of ``warm_chunk_bytes`` (l2_warm; the
    result does not change)."""
    _check(x, weight, tiles, bias, act, pre_tiles)
    n, k = weight.shape
    if act == "silu_gate":
        n //= 2  # one output per (gate, up) row pair
    parts = tiles.parts
    out = torch.empty(parts, 1, n, dtype=torch.float32 if parts > 1 else x.dtype, device=x.device)
    pre = min(pre_tiles, k // parts // tiles.block_k)
    pre = 1 << (pre.bit_length() - 1)  # a power of two, at most the tiles a split has
    with on_device(x):  # Triton launches on the current GPU: a layer on another GPU makes its own current
        _gemv_tiles_kernel[(triton.cdiv(n, tiles.rows), parts)](
            weight, x, bias if bias is not None else weight, out, N=n, K=k, KS=k // parts, BN=tiles.rows,
            BK=tiles.block_k, EVICT=tiles.evict, PRE=pre * tiles.block_k, HAS_BIAS=bias is not None,
            ACT=ACTS[act], num_warps=tiles.warps, num_stages=tiles.stages, **launch_args(x, pdl),
            **l2_warm.warm_args(warm, warm_fraction, x, warm_chunk_bytes))
    return out if parts > 1 else out[0]


def _check(x, weight, tiles: Tiles, bias, act: str | None, pre_tiles: int) -> None:
    """The kernel loads x and the weight without masks along K: refuse what it would read past."""
    n, k = weight.shape
    if not (weight.is_contiguous() and x.is_contiguous()):
        raise ValueError("the tiled GEMV reads a contiguous weight and input; call .contiguous() first")
    if k % (tiles.parts * tiles.block_k):
        raise ValueError(f"K = {k} is not a multiple of parts x block_k = {tiles.parts * tiles.block_k}")
    if x.shape[-1] != k:
        raise ValueError(f"input of {x.shape[-1]} columns for a ({n}, {k}) weight")
    if tiles.parts > 1 and (bias is not None or act is not None):
        raise ValueError("a K-split GEMV leaves partial rows: add the bias and the activation where they are summed")
    if act not in ACTS:
        raise ValueError(f"activation {act!r}: one of {sorted(a for a in ACTS if a)} or None")
    if act == "silu_gate" and n % 2:
        raise ValueError(f"silu_gate needs a [gate; up] weight of an even row count, not {n}")
    if bias is not None and bias.shape != (n,):
        raise ValueError(f"bias of shape {tuple(bias.shape)} for {n} weight rows")
    if pre_tiles < 1:
        raise ValueError("pre_tiles is the number of weight tiles loaded before the PDL wait: at least 1")
