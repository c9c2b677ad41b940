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
# the width-4 kernel (every Mamba-1 checkpoint): (channels, steps, warps) per program, H200 sweep in
# scripts/tune_prefill_kernels.py (assets/benchmarks/logs/h200-prefill-kernels.txt)
INTERPRETER_SETTING_4 = (16, 64, 4)  # off CUDA (Triton's interpreter, the tests): fewer, smaller programs
SETTING_4 = (1, 1024, 2)  # 0.177 ms at 5120 x 32K; the generic kernel 0.276, causal-conv1d 0.187

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


    @triton.jit
    def _eight(v):
        """The 8 entries of v's last axis (size 8) as 8 tensors, in order (register splits, no loads)."""
        v = tl.reshape(v, [v.shape[0], v.shape[1], 2, 2, 2])  # (.., i2, i1, i0): entry 4*i2 + 2*i1 + i0
        e0, e1 = tl.split(v)
        e00, e01 = tl.split(e0)
        e10, e11 = tl.split(e1)
        a0, a4 = tl.split(e00)
        a2, a6 = tl.split(e01)
        a1, a5 = tl.split(e10)
        a3, a7 = tl.split(e11)
        return a0, a1, a2, a3, a4, a5, a6, a7

    @triton.jit
    def _join8(a0, a1, a2, a3, a4, a5, a6, a7):
        """The inverse of _eight: join appends the new axis last, so the slowest index is joined first."""
        return tl.join(tl.join(tl.join(a0, a4), tl.join(a2, a6)), tl.join(tl.join(a1, a5), tl.join(a3, a7)))

    @triton.jit
    def _tap4(w0, w1, w2, w3, s0, s1, s2, s3, bias, HAS_BIAS: tl.constexpr):
        acc = w0 * s0
        acc += w1 * s1
        acc += w2 * s2
        acc += w3 * s3
        if HAS_BIAS:
            acc += bias
        return acc * tl.sigmoid(acc)

    @triton.jit
    def _conv4_kernel(x_ptr, state_ptr, w_ptr, b_ptr, out_ptr, x_stride, cols, DIM: tl.constexpr,
                      HAS_BIAS: tl.constexpr, BD: tl.constexpr, BT: tl.constexpr):
        """Width 4: every step's 8-step group is one aligned vector load, and the 3 inputs before the group
        come from one 8-byte load of the 4 before it; the taps are register splits of those (the generic
        kernel's 4 shifted loads per step are unaligned, hence scalar: 18.1 ms against causal-conv1d's
        11.6 over a 32K prefill of Mamba-2.8B on the H200)."""
        G: tl.constexpr = BT // 8
        ch = (tl.program_id(0) * BD + tl.arange(0, BD)).to(tl.int64)
        cm = ch < DIM
        g = tl.program_id(1) * G + tl.arange(0, G)
        t = g[:, None] * 8 + tl.arange(0, 8)[None, :]  # (G, 8)
        live = cm[:, None, None] & (t < cols)[None, :, :]
        rows = x_ptr + ch[:, None, None] * x_stride
        xv = tl.load(rows + t[None, :, :], mask=live, other=0.0).to(tl.float32)  # (BD, G, 8)
        tp = g[:, None] * 8 - 4 + tl.arange(0, 4)[None, :]  # the 4 steps before each group
        before = cm[:, None, None] & (tp < cols)[None, :, :]
        from_x = (tp >= 0)[None, :, :]
        pv = (tl.load(rows + tp[None, :, :], mask=before & from_x, other=0.0).to(tl.float32)
              + tl.load(state_ptr + ch[:, None, None] * 4 + (4 + tp)[None, :, :], mask=before & ~from_x,
                        other=0.0).to(tl.float32))  # (BD, G, 4): from the carried inputs before step 0
        pv = tl.reshape(pv, [BD, G, 2, 2])
        q0, q1 = tl.split(pv)
        _, p2 = tl.split(q0)  # entries 0 and 2 of the 4
        p1, p3 = tl.split(q1)  # entries 1 and 3
        x0, x1, x2, x3, x4, x5, x6, x7 = _eight(xv)
        w0 = tl.load(w_ptr + ch * 4, mask=cm, other=0.0).to(tl.float32)[:, None]
        w1 = tl.load(w_ptr + ch * 4 + 1, mask=cm, other=0.0).to(tl.float32)[:, None]
        w2 = tl.load(w_ptr + ch * 4 + 2, mask=cm, other=0.0).to(tl.float32)[:, None]
        w3 = tl.load(w_ptr + ch * 4 + 3, mask=cm, other=0.0).to(tl.float32)[:, None]
        bias = tl.zeros([BD, 1], dtype=tl.float32)
        if HAS_BIAS:
            bias = tl.load(b_ptr + ch, mask=cm, other=0.0).to(tl.float32)[:, None]
        out = _join8(_tap4(w0, w1, w2, w3, p1, p2, p3, x0, bias, HAS_BIAS),
                     _tap4(w0, w1, w2, w3, p2, p3, x0, x1, bias, HAS_BIAS),
                     _tap4(w0, w1, w2, w3, p3, x0, x1, x2, bias, HAS_BIAS),
                     _tap4(w0, w1, w2, w3, x0, x1, x2, x3, bias, HAS_BIAS),
                     _tap4(w0, w1, w2, w3, x1, x2, x3, x4, bias, HAS_BIAS),
                     _tap4(w0, w1, w2, w3, x2, x3, x4, x5, bias, HAS_BIAS),
                     _tap4(w0, w1, w2, w3, x3, x4, x5, x6, bias, HAS_BIAS),
                     _tap4(w0, w1, w2, w3, x4, x5, x6, x7, bias, HAS_BIAS))
        out = tl.reshape(out, [BD, G, 8])
        tl.store(out_ptr + ch[:, None, None] * cols + t[None, :, :], out.to(out_ptr.dtype.element_ty), mask=live)


def conv(x, conv_state, weight, bias, seq: int | None = None, setting: tuple[int, int, int] | None = None):
    """silu(causal depthwise conv) of x (d, cols) with contiguous rows, the left context taken from
    ``conv_state`` (d, width) (its last width - 1 columns). Returns (out (d, cols) contiguous, the new
    conv state: the last ``width`` inputs up to step ``seq``, default all columns)."""
    d, cols = x.shape
    width = weight.shape[-1]
    if x.stride(1) != 1 or not (conv_state.is_contiguous() and weight.is_contiguous()):
        raise ValueError("the conv kernel takes x with contiguous rows and a contiguous state and weight")
    seq = cols if seq is None else seq
    out = torch.empty(d, cols, dtype=x.dtype, device=x.device)
    b = bias if bias is not None else weight
    if width == 4 and cols % 8 == 0 and x.stride(0) % 8 == 0:  # whole aligned 8-step groups
        channels, steps, warps = setting or (SETTING_4 if x.is_cuda else INTERPRETER_SETTING_4)
        grid = (triton.cdiv(d, channels), triton.cdiv(cols, steps))
        _conv4_kernel[grid](x, conv_state, weight, b, out, x.stride(0), cols, DIM=d, HAS_BIAS=bias is not None,
                            BD=channels, BT=steps, num_warps=warps)
    else:
        grid = (triton.cdiv(d, BLOCK_D), triton.cdiv(cols, BLOCK_T))
        _conv_kernel[grid](x, conv_state, weight, b, out, x.stride(0), cols, DIM=d, W=width,
                           HAS_BIAS=bias is not None, BD=BLOCK_D, BT=BLOCK_T, num_warps=WARPS)
    if seq >= width:
        last = x[:, seq - width:seq]
    else:
        last = torch.cat([conv_state[:, seq:].to(x.dtype), x[:, :seq]], dim=-1)
    return out, last


def warm_up(dtype: torch.dtype, width: int, bias: bool, device: str = "cuda", d: int = 2) -> None:
    """Compile the kernel at load for the model's dtype, width, bias and channel count ``d`` (DIM is a
    compile-time constant), in the prefill's layout."""
    cols = 32
    xz = torch.zeros(2 * d, cols, dtype=dtype, device=device)
    weight = torch.zeros(d, width, dtype=dtype, device=device)
    conv(xz[:d], torch.zeros(d, width, dtype=dtype, device=device), weight,
         torch.zeros(d, dtype=dtype, device=device) if bias else None, seq=cols - 1)
