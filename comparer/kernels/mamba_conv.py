"""Mamba-1's causal depthwise conv + SiLU over a prefill chunk in one Triton kernel (no causal-conv1d).

Why: where causal-conv1d is not installed, PyTorch's conv needs the carried inputs concatenated in
front of the chunk (a copy of the whole (channels, steps) block) and a separate SiLU. Here each
program reads its block of channels and steps in place, takes the first width - 1 steps' left
context from the carried conv state, and writes the activated output in the padded layout the
scan reads (rows of ``cols`` columns, see mamba_scan.PAD). fp32 inside, one rounding, as
causal-conv1d does.
"""

from __future__ import annotations

import torch

from comparer.kernels.triton import tl, triton

BLOCK_D = 16  # channels per program
BLOCK_T = 256  # steps per program
WARPS = 4

if triton is not None:

    @triton.jit
    def _conv_kernel(x_ptr, state_ptr, w_ptr, b_ptr, out_ptr, x_stride, cols, DIM: tl.constexpr, W: tl.constexpr,
                     HAS_BIAS: tl.constexpr, BD: tl.constexpr, BT: tl.constexpr):
        ch = (tl.program_id(0) * BD + tl.arange(0, BD)).to(tl.int64)
        cm = ch < DIM
        t = tl.program_id(1) * BT + tl.arange(0, BT)
        live = cm[:, None] & (t < cols)[None, :]
        acc = tl.zeros([BD, BT], dtype=tl.float32)
        for k in tl.static_range(W):
            src = t + (k - (W - 1))  # input step; before 0: the carried state's last W - 1 inputs
            from_x = (src >= 0)[None, :]
            xv = tl.load(x_ptr + ch[:, None] * x_stride + src[None, :], mask=live & from_x, other=0.0)
            sv = tl.load(state_ptr + ch[:, None] * W + (W + src)[None, :], mask=live & ~from_x, other=0.0)
            w_k = tl.load(w_ptr + ch * W + k, mask=cm, other=0.0).to(tl.float32)
            acc += w_k[:, None] * (xv.to(tl.float32) + sv.to(tl.float32))
        if HAS_BIAS:
            acc += tl.load(b_ptr + ch, mask=cm, other=0.0).to(tl.float32)[:, None]
        acc = acc * tl.sigmoid(acc)
        tl.store(out_ptr + ch[:, None] * cols + t[None, :], acc.to(out_ptr.dtype.element_ty), mask=live)


def conv(x, conv_state, weight, bias, seq: int | None = None):
    """silu(causal depthwise conv) of x (d, cols) with contiguous rows, the left context taken from
    ``conv_state`` (d, width) (its last width - 1 columns). Returns (out (d, cols) contiguous, the new
    conv state: the last ``width`` inputs up to step ``seq``, default all columns)."""
    d, cols = x.shape
    width = weight.shape[-1]
    if x.stride(1) != 1 or not (conv_state.is_contiguous() and weight.is_contiguous()):
        raise ValueError("the conv kernel takes x with contiguous rows and a contiguous state and weight")
    seq = cols if seq is None else seq
    out = torch.empty(d, cols, dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(d, BLOCK_D), triton.cdiv(cols, BLOCK_T))
    _conv_kernel[grid](x, conv_state, weight, bias if bias is not None else weight, out, x.stride(0), cols, DIM=d,
                       W=width, HAS_BIAS=bias is not None, BD=BLOCK_D, BT=BLOCK_T, num_warps=WARPS)
    if seq >= width:
        last = x[:, seq - width:seq]
    else:
        last = torch.cat([conv_state[:, seq:].to(x.dtype), x[:, :seq]], dim=-1)
    return out, last


def warm_up(dtype: torch.dtype, width: int, bias: bool, device: str = "cuda") -> None:
    """Compile the kernel at load for the model's dtype, width and bias, in the prefill's layout."""
    d, cols = 2, 32
    xz = torch.zeros(2 * d, cols, dtype=dtype, device=device)
    weight = torch.zeros(d, width, dtype=dtype, device=device)
    conv(xz[:d], torch.zeros(d, width, dtype=dtype, device=device), weight,
         torch.zeros(d, dtype=dtype, device=device) if bias else None, seq=cols - 1)
