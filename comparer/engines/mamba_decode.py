"""Mamba's one-token decode step in three Triton kernels instead of seven (CUDA; the math is also
run by Triton's CPU interpreter in the tests).

Why: on the H200 a Mamba-2.8B decode step spent ~45 us per layer, of which only in_proj and
out_proj read many bytes (52 + 26 MB). x_proj (2 MB) took 7.3 us because cuBLAS runs a 192-row
GEMV on a handful of blocks (0.27 TB/s); the conv update, dt_proj, the state update and the
RMSNorm were 2-4 us each, mostly launch and one-block latency. Here:

- ``add_rms``: residual add + RMSNorm in one program, in transformers' order and dtypes.
- ``conv_xproj``: the conv-window update + SiLU for a block of channels, and that block's share of
  x_proj (split-K over channels: every block adds a partial row, so all SMs read the weight).
- ``ssm_step``: sums the partial rows (dt_low, B, C), then dt_proj, softplus, the state update,
  the D skip and the SiLU gate for a block of channels.

Rounding follows the reference path: x_proj and dt_proj outputs are rounded to the model dtype
before use, as cuBLAS' fp16 outputs are; everything else is fp32 as in mamba-ssm's kernels.
"""

from __future__ import annotations

import torch

from comparer.engines.decode_attention import triton

# Channels per program (H200 settings; see scripts/gpu_fast_mamba.sh).
CONV_BLOCK = 128
STEP_BLOCK = 32
R_CHUNK = 32  # dt_proj columns per tile
PARTIAL_ROWS = 8  # partial x_proj rows summed per load

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _add_rms_kernel(delta_ptr, res_in_ptr, res_out_ptr, w_ptr, y_ptr, N: tl.constexpr, eps,
                        HAS_RES: tl.constexpr, BLOCK: tl.constexpr):
        cols = tl.arange(0, BLOCK)
        live = cols < N
        hidden = tl.load(delta_ptr + cols, mask=live, other=0.0).to(tl.float32)
        if HAS_RES:
            hidden += tl.load(res_in_ptr + cols, mask=live, other=0.0).to(tl.float32)
        tl.store(res_out_ptr + cols, hidden.to(res_out_ptr.dtype.element_ty), mask=live)
        w = tl.load(w_ptr + cols, mask=live, other=0.0)
        x = hidden.to(w.dtype).to(tl.float32)  # the block casts its input to the norm's dtype first
        xn = x / tl.sqrt(tl.sum(x * x, axis=0) / N + eps)
        tl.store(y_ptr + cols, (w.to(tl.float32) * xn.to(w.dtype).to(tl.float32)).to(w.dtype), mask=live)

    @triton.jit
    def _conv_xproj_kernel(x_ptr, state_ptr, cw_ptr, cb_ptr, xw_ptr, xconv_ptr, part_ptr, DIM: tl.constexpr,
                           P: tl.constexpr, W: tl.constexpr, HAS_BIAS: tl.constexpr, BD: tl.constexpr,
                           BP: tl.constexpr, BW: tl.constexpr):
        pid = tl.program_id(0)
        c = pid * BD + tl.arange(0, BD)
        cm = c < DIM
        k = tl.arange(0, BW)
        km = cm[:, None] & (k[None, :] < W)
        # the window after the shift: state[:, 1:], then the new input
        old = tl.load(state_ptr + c[:, None] * W + k[None, :] + 1, mask=cm[:, None] & (k[None, :] < W - 1),
                      other=0.0)
        new = tl.load(x_ptr + c, mask=cm, other=0.0)
        window = tl.where(k[None, :] == W - 1, new[:, None], old)
        tl.store(state_ptr + c[:, None] * W + k[None, :], window, mask=km)
        w = tl.load(cw_ptr + c[:, None] * W + k[None, :], mask=km, other=0.0)
        acc = tl.sum(window.to(tl.float32) * w.to(tl.float32), axis=1)
        if HAS_BIAS:
            acc += tl.load(cb_ptr + c, mask=cm, other=0.0).to(tl.float32)
        out = (acc * tl.sigmoid(acc)).to(xconv_ptr.dtype.element_ty)
        tl.store(xconv_ptr + c, out, mask=cm)
        j = tl.arange(0, BP)
        jm = j < P
        wx = tl.load(xw_ptr + j[:, None] * DIM + c[None, :], mask=jm[:, None] & cm[None, :], other=0.0)
        part = tl.sum(wx.to(tl.float32) * out.to(tl.float32)[None, :], axis=1)
        tl.store(part_ptr + pid * P + j, part, mask=jm)

    @triton.jit
    def _ssm_step_kernel(part_ptr, S: tl.constexpr, dtw_ptr, dtb_ptr, a_ptr, d_ptr, xconv_ptr, z_ptr, state_ptr,
                         y_ptr, DIM: tl.constexpr, R: tl.constexpr, N: tl.constexpr, P: tl.constexpr,
                         BD: tl.constexpr, RC: tl.constexpr, BS: tl.constexpr):
        pid = tl.program_id(0)
        dtype = y_ptr.dtype.element_ty
        c = pid * BD + tl.arange(0, BD)
        cm = c < DIM
        n = tl.arange(0, N)
        s = tl.arange(0, BS)
        # dt_proj in column chunks of RC, each summing its slice of the partial rows first: small tiles
        # (a whole (BD, 256) dt_proj tile spilled registers and took 9 us per layer on the H200)
        dt = tl.zeros([BD], dtype=tl.float32)
        for r0 in tl.static_range(0, R, RC):
            r = r0 + tl.arange(0, RC)
            rm = r < R
            low = tl.zeros([RC], dtype=tl.float32)
            for s0 in tl.static_range(0, S, BS):
                sm = (s0 + s) < S
                low += tl.sum(tl.load(part_ptr + (s0 + s)[:, None] * P + r[None, :], mask=sm[:, None] & rm[None, :],
                                      other=0.0), axis=0)
            low = low.to(dtype).to(tl.float32)  # the reference rounds x_proj's output to the model dtype
            w = tl.load(dtw_ptr + c[:, None] * R + r[None, :], mask=cm[:, None] & rm[None, :], other=0.0)
            dt += tl.sum(w.to(tl.float32) * low[None, :], axis=1)
        b = tl.zeros([N], dtype=tl.float32)
        cc = tl.zeros([N], dtype=tl.float32)
        for s0 in tl.static_range(0, S, BS):
            rows = part_ptr + (s0 + s)[:, None] * P
            sm = ((s0 + s) < S)[:, None]
            b += tl.sum(tl.load(rows + R + n[None, :], mask=sm, other=0.0), axis=0)
            cc += tl.sum(tl.load(rows + R + N + n[None, :], mask=sm, other=0.0), axis=0)
        b = b.to(dtype).to(tl.float32)
        cc = cc.to(dtype).to(tl.float32)
        dt = dt.to(dtype).to(tl.float32) + tl.load(dtb_ptr + c, mask=cm, other=0.0)
        dt = tl.where(dt <= 20.0, tl.log(tl.exp(dt) + 1.0), dt)
        x = tl.load(xconv_ptr + c, mask=cm, other=0.0).to(tl.float32)
        a = tl.load(a_ptr + c[:, None] * N + n[None, :], mask=cm[:, None], other=0.0)
        h = tl.load(state_ptr + c[:, None] * N + n[None, :], mask=cm[:, None], other=0.0)
        h = h * tl.exp(a * dt[:, None]) + (b[None, :] * dt[:, None]) * x[:, None]
        tl.store(state_ptr + c[:, None] * N + n[None, :], h, mask=cm[:, None])
        out = tl.sum(h * cc[None, :], axis=1) + x * tl.load(d_ptr + c, mask=cm, other=0.0)
        z = tl.load(z_ptr + c, mask=cm, other=0.0).to(tl.float32)
        tl.store(y_ptr + c, (out * z * tl.sigmoid(z)).to(dtype), mask=cm)


def add_rms(delta, residual, weight, eps: float, residual_in_fp32: bool):
    """(1, hidden) rows: returns (RMSNorm(residual + delta), residual + delta), as TorchOps.add_norm."""
    n = delta.shape[-1]
    res_dtype = torch.float32 if residual_in_fp32 else delta.dtype
    res_out = torch.empty(delta.shape, dtype=res_dtype, device=delta.device)
    y = torch.empty(delta.shape, dtype=weight.dtype, device=delta.device)
    _add_rms_kernel[(1,)](delta, residual if residual is not None else delta, res_out, weight, y, N=n, eps=eps,
                          HAS_RES=residual is not None, BLOCK=triton.next_power_of_2(n),
                          num_warps=8 if n >= 2048 else 4)
    return y, res_out


def decode_mixer(layer, xz, conv_state, ssm_state, time_step_rank: int):
    """The mixer after in_proj for one token. xz: (1, 2*d_inner) in_proj output; conv_state
    (1, d_inner, width) and ssm_state (1, d_inner, n) are updated in place. Returns y (1, d_inner)."""
    d, n = layer.A.shape
    width, p = layer.conv_w.shape[1], layer.x_proj.shape[0]
    splits = triton.cdiv(d, CONV_BLOCK)
    x_conv = torch.empty(1, d, dtype=xz.dtype, device=xz.device)
    partial = torch.empty(splits, p, dtype=torch.float32, device=xz.device)
    _conv_xproj_kernel[(splits,)](xz, conv_state, layer.conv_w, layer.conv_b if layer.conv_b is not None else xz,
                                  layer.x_proj, x_conv, partial, DIM=d, P=p, W=width,
                                  HAS_BIAS=layer.conv_b is not None, BD=CONV_BLOCK, BP=triton.next_power_of_2(p),
                                  BW=triton.next_power_of_2(width), num_warps=4)
    y = torch.empty(1, d, dtype=xz.dtype, device=xz.device)
    _ssm_step_kernel[(triton.cdiv(d, STEP_BLOCK),)](partial, splits, layer.dt_proj, layer.dt_bias, layer.A, layer.D,
                                                    x_conv, xz[:, d:], ssm_state, y, DIM=d, R=time_step_rank, N=n,
                                                    P=p, BD=STEP_BLOCK, RC=R_CHUNK, BS=PARTIAL_ROWS,
                                                    num_warps=4)
    return y


def applies(layer, ssm_state) -> bool:
    """The kernels assume a power-of-two state size and contiguous weights (all Mamba-1 checkpoints)."""
    n = layer.A.shape[1]
    return n & (n - 1) == 0 and all(t.is_contiguous() for t in (layer.conv_w, layer.x_proj, layer.dt_proj,
                                                                  layer.A, ssm_state))
