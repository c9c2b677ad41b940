"""Mamba's one-token decode step in three to five Triton kernels a layer instead of seven (CUDA; the
math is also run by Triton's CPU interpreter in the tests).

Why: on the H200 a Mamba-2.8B decode step spent ~45 us per layer, of which only in_proj and
out_proj read many bytes (52 + 26 MB). x_proj (2 MB) took 7.3 us because cuBLAS runs a 192-row
GEMV on a handful of blocks (0.27 TB/s); the conv update, dt_proj, the state update and the
RMSNorm were 2-4 us each, mostly launch and one-block latency. Here:

- ``add_rms``: residual add + RMSNorm in one program, in transformers' order and dtypes. It also
  clears the previous layer's x_proj accumulator (see below).
- ``conv_xproj``: the conv-window update + SiLU for a block of channels, and that block's share of
  x_proj (split-K over channels, so every SM reads part of the weight), added atomically into a
  per-layer accumulator of x_proj's outputs (dt_low, B, C), in int64 fixed point so that the sum
  does not depend on the order the blocks finish in.
- ``norm_in_conv``: add_rms, in_proj and conv_xproj in one kernel, for in_proj weights up to
  ``fused_in_proj_max_bytes`` (see ``DecodeSettings.fused_in_proj``); larger ones run add_rms, the tiled
  in_proj GEMV and conv_xproj.
- ``ssm_step``: reads the accumulator, then dt_proj, softplus, the state update, the D skip and the
  SiLU gate for a block of channels. (Summing per-block partial rows here instead took 9 us: a
  chain of dependent L2 loads in every program.)

The accumulator of layer i is zeroed by the add_rms (or norm_in_conv) of layer i + 1 (of layer 0 in
the next step for the last layer): by then every reader of it has finished, since kernels on a stream
run in order, so a captured graph replays correctly with no memset. (A one-layer model would clear the
accumulator that norm_in_conv adds into: it takes the separate kernels.) Rounding follows the reference
path: x_proj and dt_proj outputs are rounded to the model dtype before use, as cuBLAS' fp16 outputs
are, and everything else is fp32 as in mamba-ssm's kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from comparer.kernels import gemv as gemv_kernels
from comparer.kernels import l2_warm
from comparer.kernels import pdl as pdl_kernels
from comparer.kernels.gemv import Tiles
from comparer.kernels.l2_warm import warm as _warm
from comparer.kernels.pdl import after_previous as _after_previous
from comparer.kernels.triton import on_device, tl, triton


@dataclass(frozen=True)
class DecodeSettings:
    """Every tunable of the decode kernels, handed to the ops (TritonOps / KernelOps) rather than kept
    as module globals, so a tuning script or a test builds an engine with other settings without
    changing any other engine in the process. The defaults are the H200 settings of
    scripts/tune_mamba_kernels.py and scripts/ab_pdl.py (figures below and in docs/benchmarks.md)."""

    # channels per program of the conv+x_proj and state-update kernels (final sweep, graph replays:
    # 2.8B 386.8 tok/s; 130M 2,285.6 with the GEMV below)
    conv_block: int = 64
    step_block: int = 16
    # Projections through comparer's one-wave GEMV instead of cuBLAS (which runs out_proj as split-K
    # plus a reduce kernel, 10.7 us for 26 MB on the H200). Only for small weights: on the H200 it took
    # Mamba-130M's out_proj (2.4 MB) from 4.1 us to 3.6 us (2,000 -> 2,275 tok/s) but Mamba-2.8B's
    # (26 MB) from 10.7 to 14.9 us; in_proj gained nothing.
    gemv_out_proj: bool = True
    gemv_in_proj: bool = False
    gemv_max_bytes: int = 4 * 2**20
    gemv_block_k: int = 512
    gemv_warps: int = 4
    gemv_stages: int = 3
    # Weights over gemv_max_bytes (Mamba-2.8B: in_proj 52 MB, out_proj 26 MB): a tiled GEMV over a 2-D
    # grid of row blocks x K splits. out_proj's fp32 partial rows are summed, in a fixed order, by the
    # next layer's add_rms (or before the LM head), so no reduce kernel and no atomics remain. None:
    # cuBLAS. H200 sweep (assets/benchmarks/logs/h200-mamba-tiles-tuning.txt): Mamba-2.8B 388.4 tok/s
    # with cuBLAS -> 416.7 with the tiled out_proj -> 425.6-427.3 with the tiled in_proj too; Mamba-130M
    # (tiled in_proj only: its out_proj is under gemv_max_bytes) 2,289.5 -> 2,414.5.
    # With PDL on (h200-mamba-tiles-pdl.txt, 2026-12-03), out_proj in one K pass of 1024-column tiles,
    # two rows a program: Mamba-2.8B graph replays 491.5 -> 514.3 tok/s (the four-way K split 16 x 256
    # was the best before PDL); no in_proj setting beat 8 x 256 by more than noise (494.3 at 4 x 512).
    tiles_in_proj: Tiles | None = Tiles(rows=8, block_k=256, warps=4, stages=3)
    tiles_out_proj: Tiles | None = Tiles(rows=2, block_k=1024, parts=1, warps=4, stages=3)
    add_rms_warps: int = 8  # for hidden sizes >= 2048
    # Programmatic dependent launch (Hopper and later): each kernel is launched while the one before it
    # drains, loads what does not depend on it (weights: the first pre_tiles tiles of a GEMV block, the
    # conv, x_proj and dt_proj weights), then waits for it (griddepcontrol.wait) and lets the next
    # launch. Without it every kernel boundary in the graph costs a launch plus a cold DRAM round trip,
    # five per layer. None: on where the GPU and Triton support it; False: off. H200 A/B
    # (assets/benchmarks/logs/h200-pdl-ab.txt): Mamba-2.8B graph replays 451.8 -> 512.1 tok/s,
    # Mamba-130M 2,549 -> 3,661; 2 or 4 tiles before the wait: 2.8B 497-499, 130M 3,712-3,720.
    pdl: bool | None = None
    pre_tiles: int = 1  # GEMV tiles of block_k columns loaded before the wait (a power of two)
    # add_rms + in_proj + the conv update + x_proj's split-K share in one kernel (``norm_in_conv``): two
    # kernel boundaries fewer per layer. Each program computes the norm of the (1, hidden) block input
    # itself (one load of the whole vector, a few KB, from L1 after the first program on an SM); ``rows``
    # in_proj rows per program, the weight and the normed input in tiles of ``block_k`` columns (a power
    # of two, masked past hidden). None: separate kernels.
    # H200, graph replays, the five-kernel layer measured in the same run (h200-mamba-fused-in-proj-2.txt,
    # -3.txt): Mamba-130M (in_proj 4.7 MB) 3,651 -> 3,889 and 3,687 -> 3,900 tok/s at 16 rows, 8 warps;
    # Mamba-2.8B (52 MB) 516.8 -> 517.4 at best (64 rows; 469 at 16, 342 at 8: its thousands of programs
    # each pay for the norm; programs looping over row blocks: 249-392). So only up to
    # fused_in_proj_max_bytes (sizes between the two measured ones are not measured).
    fused_in_proj: Tiles | None = Tiles(rows=16, block_k=256, warps=8, stages=3)
    fused_in_proj_max_bytes: int = 8 * 2**20
    # L2 warming (l2_warm.py, Hopper only: where it was measured): the fraction of a layer's out_proj weight that its conv
    # kernel (conv_xproj or norm_in_conv; ``warm_out_proj_from="step"``: the state-update kernel) asks L2
    # to fetch, and the fraction of the next layer's in_proj weight that out_proj asks for, so that the
    # GEMV finds it there. 0: off. The same bits either way. Only weights up to ``warm_max_bytes``.
    # H200, graph replays, every setting built first and measured in turns (h200-mamba-l2-warm.txt):
    # Mamba-130M (out_proj 2.4 MB, in_proj 4.7 MB, a latency-bound step) 3,916 -> 4,071 and 3,926 -> 4,052
    # tok/s in turns with all of out_proj and a quarter of the next in_proj (warmed from the state update or
    # from the conv kernel: a tie); Mamba-2.8B (26 and 52 MB) only lost with every setting, the more the more
    # it warmed: 517.4 off, 460.7 with all of out_proj, 386.1 with both whole (not profiled; see l2_warm on
    # the extra prefetch instructions). ``warm_chunk_bytes``: bytes per prefetch (1 and 16 KB: inconclusive).
    warm_out_proj: float = 1.0
    warm_out_proj_from: str = "step"
    warm_next_in_proj: float = 0.25
    warm_max_bytes: int = 8 * 2**20
    warm_chunk_bytes: int = l2_warm.CHUNK_BYTES

    def __post_init__(self):
        if self.warm_out_proj_from not in ("conv", "step"):
            raise ValueError(f"warm_out_proj_from={self.warm_out_proj_from!r}: 'conv' (the conv kernel) or 'step' "
                             "(the state-update kernel) warms out_proj's weight")


DEFAULT = DecodeSettings()

if triton is not None:

    @triton.jit
    def _block_input(delta_ptr, res_in_ptr, cols, live, N: tl.constexpr, BLOCK: tl.constexpr, PARTS: tl.constexpr,
                     HAS_RES: tl.constexpr, dtype: tl.constexpr):
        """Columns ``cols`` of a block's input in fp32: the previous out_proj's output (its K-split fp32
        partial rows summed in a fixed order, then rounded as its model-dtype output is) plus the residual."""
        if PARTS > 0:
            hidden = tl.zeros([BLOCK], dtype=tl.float32)
            for part in tl.static_range(PARTS):
                hidden += tl.load(delta_ptr + part * N + cols, mask=live, other=0.0)
            hidden = hidden.to(dtype).to(tl.float32)
        else:
            hidden = tl.load(delta_ptr + cols, mask=live, other=0.0).to(tl.float32)
        if HAS_RES:
            hidden += tl.load(res_in_ptr + cols, mask=live, other=0.0).to(tl.float32)
        return hidden

    @triton.jit
    def _normed_tile(delta_ptr, res_in_ptr, nw_ptr, cols, denom, N: tl.constexpr, BK: tl.constexpr,
                     PARTS: tl.constexpr, HAS_RES: tl.constexpr):
        """Columns ``cols`` of RMSNorm(block input) in the norm's dtype, in add_rms' order of operations (the
        input cast to the norm's dtype, normalised, rounded, scaled, rounded); ``denom`` comes from a sum of
        squares that may differ from add_rms' by an ulp where the warp counts differ (another reduction tree)."""
        live = cols < N
        wdt = nw_ptr.dtype.element_ty
        x = _block_input(delta_ptr, res_in_ptr, cols, live, N, BK, PARTS, HAS_RES, wdt).to(wdt).to(tl.float32)
        nw = tl.load(nw_ptr + cols, mask=live, other=0.0).to(tl.float32)
        return (nw * (x / denom).to(wdt).to(tl.float32)).to(wdt)

    @triton.jit
    def _conv_weights(rows, cw_ptr, cb_ptr, xw_ptr, D: tl.constexpr, P: tl.constexpr, W: tl.constexpr,
                      BN: tl.constexpr, BP: tl.constexpr, BW: tl.constexpr, HAS_BIAS: tl.constexpr):
        """The conv taps, bias and x_proj columns of in_proj rows ``rows`` that are conv channels (below D;
        masked to zeros for gate rows), and the index vectors and masks the conv update uses."""
        cm = rows < D
        k = tl.arange(0, BW)
        km = cm[:, None] & (k[None, :] < W)
        cw = tl.load(cw_ptr + rows[:, None] * W + k[None, :], mask=km, other=0.0)
        j = tl.arange(0, BP)
        wx = tl.load(xw_ptr + j[:, None] * D + rows[None, :], mask=(j < P)[:, None] & cm[None, :], other=0.0)
        bias = tl.zeros([BN], dtype=tl.float32)
        if HAS_BIAS:
            bias += tl.load(cb_ptr + rows, mask=cm, other=0.0).to(tl.float32)
        return cm, k, km, cw, j, wx, bias

    @triton.jit
    def _in_proj_rows(w0, rows, w_ptr, delta_ptr, res_in_ptr, nw_ptr, denom, N: tl.constexpr, BK: tl.constexpr,
                      PARTS: tl.constexpr, HAS_RES: tl.constexpr):
        """in_proj rows ``rows`` against the normed input, tile by tile (``w0``: the first tile, loaded
        already); the normed tiles are recomputed from the L1-resident input."""
        kp = tl.arange(0, BK)
        normed = _normed_tile(delta_ptr, res_in_ptr, nw_ptr, kp, denom, N, BK, PARTS, HAS_RES)
        acc = tl.sum(w0.to(tl.float32) * normed.to(tl.float32)[None, :], axis=1)
        for k0 in range(BK, N, BK):
            cols = k0 + kp
            w = tl.load(w_ptr + rows[:, None] * N + cols[None, :], mask=(cols < N)[None, :], other=0.0)
            normed = _normed_tile(delta_ptr, res_in_ptr, nw_ptr, cols, denom, N, BK, PARTS, HAS_RES)
            acc += tl.sum(w.to(tl.float32) * normed.to(tl.float32)[None, :], axis=1)
        return acc

    @triton.jit
    def _norm_in_conv_kernel(delta_ptr, res_in_ptr, res_out_ptr, nw_ptr, zero_ptr, w_ptr, xz_ptr, state_ptr, cw_ptr,
                             cb_ptr, xw_ptr, xconv_ptr, acc_ptr, eps, N: tl.constexpr, D: tl.constexpr,
                             P: tl.constexpr, W: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, BH: tl.constexpr,
                             BP: tl.constexpr, BW: tl.constexpr, Z: tl.constexpr, BZ: tl.constexpr, PARTS: tl.constexpr,
                             HAS_RES: tl.constexpr, HAS_BIAS: tl.constexpr, warm_ptr, warm_bytes, WARM: tl.constexpr,
                             CHUNK: tl.constexpr, PDL: tl.constexpr):
        """add_rms, then BN rows of in_proj; a program whose rows are conv channels (below D) then runs
        conv_xproj's work for them: the window update + SiLU and their share of x_proj, added atomically
        into the int64 accumulator. Programs above D hold rows of the gate z. Each program computes the
        norm itself (programs that loop over several row blocks, computing it once, were slower on the
        H200: h200-mamba-fused-in-proj-3.txt)."""
        _warm(warm_ptr, warm_bytes, WARM, CHUNK)  # out_proj's weight, for later (see l2_warm)
        pid = tl.program_id(0)
        rows = pid * BN + tl.arange(0, BN)
        kp = tl.arange(0, BK)
        # weights first: they do not depend on the previous kernel (conv and x_proj: channel rows only)
        w0 = tl.load(w_ptr + rows[:, None] * N + kp[None, :], mask=(kp < N)[None, :], other=0.0)
        cm, k, km, cw, j, wx, bias = _conv_weights(rows, cw_ptr, cb_ptr, xw_ptr, D, P, W, BN, BP, BW, HAS_BIAS)
        _after_previous(PDL)
        if Z > 0:
            if pid == 0:
                tl.store(zero_ptr + tl.arange(0, BZ), tl.zeros([BZ], dtype=tl.int64), mask=tl.arange(0, BZ) < Z)
        # the norm's denominator from the whole input in one load (one memory latency, not one per tile),
        # summed as add_rms sums it; program 0 stores the residual
        hcols = tl.arange(0, BH)
        hidden = _block_input(delta_ptr, res_in_ptr, hcols, hcols < N, N, BH, PARTS, HAS_RES, nw_ptr.dtype.element_ty)
        if pid == 0:
            tl.store(res_out_ptr + hcols, hidden.to(res_out_ptr.dtype.element_ty), mask=hcols < N)
        x = hidden.to(nw_ptr.dtype.element_ty).to(tl.float32)
        denom = tl.sqrt(tl.sum(x * x, axis=0) / N + eps)
        acc = _in_proj_rows(w0, rows, w_ptr, delta_ptr, res_in_ptr, nw_ptr, denom, N, BK, PARTS, HAS_RES)
        y = acc.to(xz_ptr.dtype.element_ty)  # in_proj's output, rounded as cuBLAS' fp16 output is
        tl.store(xz_ptr + rows, y)
        if pid * BN < D:
            _conv_xproj_rows(y, rows, cm, state_ptr, cw, bias, wx, xconv_ptr, acc_ptr, k, km, j, P, W)

    @triton.jit
    def _conv_xproj_rows(new, c, cm, state_ptr, w, bias, wx, xconv_ptr, acc_ptr, k, km, j, P: tl.constexpr,
                         W: tl.constexpr):
        """The conv update + SiLU for channels ``c`` whose new input is ``new``, then their share of x_proj
        (weights ``wx``, (BP, channels)) added into the int64 fixed-point accumulator."""
        # the window after the shift: state[:, 1:], then the new input
        old = tl.load(state_ptr + c[:, None] * W + k[None, :] + 1, mask=cm[:, None] & (k[None, :] < W - 1),
                      other=0.0)
        window = tl.where(k[None, :] == W - 1, new[:, None], old)
        tl.store(state_ptr + c[:, None] * W + k[None, :], window, mask=km)
        acc = tl.sum(window.to(tl.float32) * w.to(tl.float32), axis=1) + bias
        out = (acc * tl.sigmoid(acc)).to(xconv_ptr.dtype.element_ty)
        tl.store(xconv_ptr + c, out, mask=cm)
        part = tl.sum(wx.to(tl.float32) * out.to(tl.float32)[None, :], axis=1)
        # fixed point (2^-32 steps) in int64: integer adds give the same sum in any order, so the
        # decode is deterministic (fp32 atomics made a random-weight Mamba's tokens differ run to run);
        # |x_proj| < 2^30 always holds for real weights (fp16 tops out at 65504)
        part = tl.minimum(tl.maximum(part, -1073741824.0), 1073741824.0)
        tl.atomic_add(acc_ptr + j, (part * 4294967296.0).to(tl.int64), mask=j < P, sem="relaxed")

    @triton.jit
    def _add_rms_kernel(delta_ptr, res_in_ptr, res_out_ptr, w_ptr, y_ptr, zero_ptr, N: tl.constexpr, eps,
                        HAS_RES: tl.constexpr, BLOCK: tl.constexpr, Z: tl.constexpr, BZ: tl.constexpr,
                        PARTS: tl.constexpr, FINAL: tl.constexpr, PDL: tl.constexpr):
        cols = tl.arange(0, BLOCK)
        live = cols < N
        w = tl.load(w_ptr + cols, mask=live, other=0.0)
        row = tl.program_id(0).to(tl.int64) * N  # one program per row (a prefill chunk; decode has one)
        delta_ptr += row
        res_in_ptr += row
        res_out_ptr += row
        y_ptr += row
        _after_previous(PDL)
        if Z > 0:
            tl.store(zero_ptr + tl.arange(0, BZ), tl.zeros([BZ], dtype=tl.int64), mask=tl.arange(0, BZ) < Z)
        hidden = _block_input(delta_ptr, res_in_ptr, cols, live, N, BLOCK, PARTS, HAS_RES, y_ptr.dtype.element_ty)
        tl.store(res_out_ptr + cols, hidden.to(res_out_ptr.dtype.element_ty), mask=live)
        if FINAL:  # norm_f before the LM head: fp32 on the residual stream, rounded once at the end
            x = hidden.to(res_out_ptr.dtype.element_ty).to(tl.float32)
            xn = x * tl.math.rsqrt(tl.sum(x * x, axis=0) / N + eps)
            tl.store(y_ptr + cols, (w.to(tl.float32) * xn).to(y_ptr.dtype.element_ty), mask=live)
        else:
            x = hidden.to(w.dtype).to(tl.float32)  # the block casts its input to the norm's dtype first
            xn = x / tl.sqrt(tl.sum(x * x, axis=0) / N + eps)
            tl.store(y_ptr + cols, (w.to(tl.float32) * xn.to(w.dtype).to(tl.float32)).to(w.dtype), mask=live)

    @triton.jit
    def _conv_xproj_kernel(x_ptr, state_ptr, cw_ptr, cb_ptr, xw_ptr, xconv_ptr, acc_ptr, DIM: tl.constexpr,
                           P: tl.constexpr, W: tl.constexpr, HAS_BIAS: tl.constexpr, BD: tl.constexpr,
                           BP: tl.constexpr, BW: tl.constexpr, warm_ptr, warm_bytes, WARM: tl.constexpr,
                           CHUNK: tl.constexpr, PDL: tl.constexpr):
        _warm(warm_ptr, warm_bytes, WARM, CHUNK)  # out_proj's weight, for later (see l2_warm)
        c = tl.program_id(0) * BD + tl.arange(0, BD)
        # weights first: they do not depend on the previous kernel
        cm, k, km, w, j, wx, bias = _conv_weights(c, cw_ptr, cb_ptr, xw_ptr, DIM, P, W, BD, BP, BW, HAS_BIAS)
        _after_previous(PDL)
        new = tl.load(x_ptr + c, mask=cm, other=0.0)
        _conv_xproj_rows(new, c, cm, state_ptr, w, bias, wx, xconv_ptr, acc_ptr, k, km, j, P, W)

    @triton.jit
    def _ssm_step_kernel(acc_ptr, dtw_ptr, dtb_ptr, a_ptr, d_ptr, xconv_ptr, z_ptr, state_ptr, y_ptr,
                         DIM: tl.constexpr, R: tl.constexpr, N: tl.constexpr, BD: tl.constexpr, BR: tl.constexpr,
                         warm_ptr, warm_bytes, WARM: tl.constexpr, CHUNK: tl.constexpr, PDL: tl.constexpr):
        _warm(warm_ptr, warm_bytes, WARM, CHUNK)  # out_proj's weight, for later (see l2_warm)
        pid = tl.program_id(0)
        dtype = y_ptr.dtype.element_ty
        c = pid * BD + tl.arange(0, BD)
        cm = c < DIM
        r = tl.arange(0, BR)
        rm = r < R
        n = tl.arange(0, N)
        # weights first: they do not depend on the previous kernel
        w = tl.load(dtw_ptr + c[:, None] * R + r[None, :], mask=cm[:, None] & rm[None, :], other=0.0)
        dt_bias = tl.load(dtb_ptr + c, mask=cm, other=0.0)
        a = tl.load(a_ptr + c[:, None] * N + n[None, :], mask=cm[:, None], other=0.0)
        d_skip = tl.load(d_ptr + c, mask=cm, other=0.0)
        _after_previous(PDL)
        # x_proj's outputs, rounded to the model dtype as the reference's F.linear output is
        scale = 2.3283064365386963e-10  # 2^-32
        dt_low = (tl.load(acc_ptr + r, mask=rm, other=0).to(tl.float32) * scale).to(dtype).to(tl.float32)
        b = (tl.load(acc_ptr + R + n).to(tl.float32) * scale).to(dtype).to(tl.float32)
        cc = (tl.load(acc_ptr + R + N + n).to(tl.float32) * scale).to(dtype).to(tl.float32)
        dt = tl.sum(w.to(tl.float32) * dt_low[None, :], axis=1).to(dtype).to(tl.float32)
        dt += dt_bias
        dt = tl.where(dt <= 20.0, tl.log(tl.exp(dt) + 1.0), dt)
        x = tl.load(xconv_ptr + c, mask=cm, other=0.0).to(tl.float32)
        h = tl.load(state_ptr + c[:, None] * N + n[None, :], mask=cm[:, None], other=0.0)
        h = h * tl.exp(a * dt[:, None]) + (b[None, :] * dt[:, None]) * x[:, None]
        tl.store(state_ptr + c[:, None] * N + n[None, :], h, mask=cm[:, None])
        out = tl.sum(h * cc[None, :], axis=1) + x * d_skip
        z = tl.load(z_ptr + c, mask=cm, other=0.0).to(tl.float32)
        tl.store(y_ptr + c, (out * z * tl.sigmoid(z)).to(dtype), mask=cm)

    @triton.jit
    def _gemv_kernel(w_ptr, x_ptr, out_ptr, N: tl.constexpr, K: tl.constexpr, ROWS: tl.constexpr,
                     BN: tl.constexpr, BK: tl.constexpr, warm_ptr, warm_bytes, WARM: tl.constexpr,
                     CHUNK: tl.constexpr, PDL: tl.constexpr):
        _warm(warm_ptr, warm_bytes, WARM, CHUNK)  # the next layer's in_proj weight (see l2_warm)
        rows = tl.program_id(0) * ROWS + tl.arange(0, BN)
        live = (tl.arange(0, BN) < ROWS) & (rows < N)
        kp = tl.arange(0, BK)
        wp = tl.load(w_ptr + rows[:, None] * K + kp[None, :], mask=live[:, None], other=0.0)  # before the wait
        _after_previous(PDL)
        acc = tl.sum(wp.to(tl.float32) * tl.load(x_ptr + kp).to(tl.float32)[None, :], axis=1)
        for k0 in range(BK, K, BK):
            k = k0 + tl.arange(0, BK)
            w = tl.load(w_ptr + rows[:, None] * K + k[None, :], mask=live[:, None], other=0.0)
            acc += tl.sum(w.to(tl.float32) * tl.load(x_ptr + k).to(tl.float32)[None, :], axis=1)
        tl.store(out_ptr + rows, acc.to(out_ptr.dtype.element_ty), mask=live)


def pdl_on(t: torch.Tensor, settings: DecodeSettings = DEFAULT) -> bool:
    """Whether this step's kernels on ``t``'s device use programmatic dependent launch (see ``pdl``)."""
    return pdl_kernels.pdl_on(t, settings.pdl)


def _launch(t: torch.Tensor, settings: DecodeSettings) -> dict:
    """The kernel arguments that switch PDL on or off for a launch on ``t``'s device."""
    return pdl_kernels.launch_args(t, settings.pdl)


def gemv(x, weight, programs: int | None = None, settings: DecodeSettings = DEFAULT, warm=None):
    """F.linear(x, weight) for x (1, K), weight (N, K), in one wave: rows split evenly over one program per SM
    (cuBLAS' split-K leaves a reduce kernel and a second wave). fp32 accumulation, like cuBLAS. ``warm``: the
    next layer's in_proj weight, settings.warm_next_in_proj of it asked into L2 on the way."""
    n, k = weight.shape
    if not _takes_gemv(weight, settings):
        return torch.nn.functional.linear(x, weight)
    if programs is None:
        programs = torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else 4
    rows = triton.cdiv(n, programs)
    out = torch.empty(1, n, dtype=x.dtype, device=x.device)
    _gemv_kernel[(triton.cdiv(n, rows),)](weight, x, out, N=n, K=k, ROWS=rows, BN=triton.next_power_of_2(rows),
                                          BK=settings.gemv_block_k, num_warps=settings.gemv_warps,
                                          num_stages=settings.gemv_stages, **_launch(x, settings),
                                          **l2_warm.warm_args(warm, settings.warm_next_in_proj, x,
                                                              settings.warm_chunk_bytes))
    return out


def gemv_tiles(x, weight, parts: int = 1, rows: int = 32, block_k: int = 256, warps: int = 4, stages: int = 3,
               evict: bool = False, settings: DecodeSettings = DEFAULT):
    """F.linear(x, weight) through gemv.tiled with this step's PDL and pre-wait settings: (1, N), or for
    parts > 1 the fp32 partial rows (parts, 1, N) that add_rms (or its final norm) adds up."""
    tiles = Tiles(rows=rows, block_k=block_k, parts=parts, warps=warps, stages=stages, evict=evict)
    return gemv_kernels.tiled(x, weight, tiles, pre_tiles=settings.pre_tiles, pdl=settings.pdl)


def _is_large(weight, settings: DecodeSettings) -> bool:
    return weight.numel() * weight.element_size() > settings.gemv_max_bytes


def _takes_gemv(weight, settings: DecodeSettings) -> bool:
    """Whether the one-wave GEMV takes this weight: small, contiguous, K a multiple of its tile."""
    return weight.shape[1] % settings.gemv_block_k == 0 and weight.is_contiguous() and not _is_large(weight, settings)


def _projection_kernel(weight, tiles: Tiles | None, small_gemv: bool, settings: DecodeSettings) -> str:
    """Which kernel a projection runs: "tiled" (gemv.tiled), "gemv" (the one-wave GEMV) or "cublas" (F.linear)."""
    if _is_large(weight, settings):
        return "tiled" if gemv_kernels.takes(weight, tiles) else "cublas"
    return "gemv" if small_gemv and _takes_gemv(weight, settings) else "cublas"


def _project(x, weight, tiles: Tiles | None, small_gemv: bool, settings: DecodeSettings, warm=None):
    kernel = _projection_kernel(weight, tiles, small_gemv, settings)
    if kernel == "tiled":
        return gemv_kernels.tiled(x, weight, tiles, pre_tiles=settings.pre_tiles, pdl=settings.pdl, warm=warm,
                                  warm_fraction=settings.warm_next_in_proj, warm_chunk_bytes=settings.warm_chunk_bytes)
    return gemv(x, weight, settings=settings, warm=warm) if kernel == "gemv" else F.linear(x, weight)


def in_proj(x, weight, settings: DecodeSettings = DEFAULT):
    """in_proj through the kernel ``settings`` pick for this weight's size."""
    return _project(x, weight, settings.tiles_in_proj, settings.gemv_in_proj, settings)


def out_proj(x, weight, settings: DecodeSettings = DEFAULT, warm=None):
    """out_proj likewise; may return partial rows (parts, 1, N) that the next add_rms sums. ``warm``: the next
    layer's in_proj weight (None: the last layer), ``settings.warm_next_in_proj`` of it asked into L2."""
    return _project(x, weight, settings.tiles_out_proj, settings.gemv_out_proj, settings, _warmable(warm, settings))


def _warmable(weight, settings: DecodeSettings):
    """``weight`` where settings warm a weight of its size into L2 (see ``warm_max_bytes``), else None."""
    small = weight is not None and weight.nbytes <= settings.warm_max_bytes
    return weight if small else None


def add_rms(delta, residual, weight, eps: float, residual_in_fp32: bool, zero=None, final: bool = False,
            settings: DecodeSettings = DEFAULT):
    """(1, hidden) rows: returns (RMSNorm(residual + delta), residual + delta), as TorchOps.add_norm;
    also sets the int64 vector ``zero`` (the previous layer's x_proj accumulator) to zeros. ``delta``
    may be out_proj's fp32 partial rows (parts, 1, hidden), summed here. ``final``: norm_f before the LM
    head instead, as TorchOps.final_norm computes it (fp32, no cast to the weight's dtype first)."""
    n = delta.shape[-1]
    parts = delta.shape[0] if delta.dim() == 3 else 0
    res_dtype = torch.float32 if residual_in_fp32 else weight.dtype  # delta may be fp32 partial rows
    res_out = torch.empty(1, n, dtype=res_dtype, device=delta.device)
    y = torch.empty(1, n, dtype=weight.dtype, device=delta.device)
    z = zero.numel() if zero is not None else 0
    _add_rms_kernel[(1,)](delta, residual if residual is not None else delta, res_out, weight, y,
                          zero if zero is not None else res_out, N=n, eps=eps, HAS_RES=residual is not None,
                          BLOCK=triton.next_power_of_2(n), Z=z, BZ=triton.next_power_of_2(max(z, 1)),
                          PARTS=parts, FINAL=final, num_warps=settings.add_rms_warps if n >= 2048 else 4,
                          **_launch(delta, settings))
    return y, res_out


def add_rms_rows(delta, residual, weight, eps: float, residual_in_fp32: bool, settings: DecodeSettings = DEFAULT):
    """add_rms for a prefill chunk: delta (1, rows, hidden) contiguous, residual likewise or None; one
    program per row, in the dtypes of TorchOps.add_norm (mamba-ssm's fused norm where it is installed)."""
    rows, n = delta.shape[-2], delta.shape[-1]
    res_dtype = torch.float32 if residual_in_fp32 else weight.dtype
    if residual is None and delta.dtype == res_dtype:
        res_out = delta  # the first layer: the residual is the embedding itself, as in TorchOps
    else:
        res_out = torch.empty(delta.shape, dtype=res_dtype, device=delta.device)
    y = torch.empty(delta.shape, dtype=weight.dtype, device=delta.device)
    _add_rms_kernel[(rows,)](delta, residual if residual is not None else delta, res_out, weight, y, res_out, N=n,
                             eps=eps, HAS_RES=residual is not None, BLOCK=triton.next_power_of_2(n), Z=0, BZ=1,
                             PARTS=0, FINAL=False, num_warps=settings.add_rms_warps if n >= 2048 else 4,
                             PDL=False)
    return y, res_out


def decode_mixer(layer, xz, conv_state, ssm_state, time_step_rank: int, acc, settings: DecodeSettings = DEFAULT):
    """The mixer after in_proj for one token. xz: (1, 2*d_inner) in_proj output; conv_state
    (1, d_inner, width) and ssm_state (1, d_inner, n) are updated in place; ``acc`` is this layer's
    int64 fixed-point x_proj accumulator (zeros on entry). Returns y (1, d_inner)."""
    d = layer.A.shape[0]
    width, p = layer.conv_w.shape[1], layer.x_proj.shape[0]
    x_conv = torch.empty(1, d, dtype=xz.dtype, device=xz.device)
    _conv_xproj_kernel[(triton.cdiv(d, settings.conv_block),)](xz, conv_state, layer.conv_w,
                                                      layer.conv_b if layer.conv_b is not None else xz, layer.x_proj,
                                                      x_conv, acc, DIM=d, P=p, W=width,
                                                      HAS_BIAS=layer.conv_b is not None, BD=settings.conv_block,
                                                      BP=triton.next_power_of_2(p), BW=triton.next_power_of_2(width),
                                                      num_warps=4, **_launch(xz, settings),
                                                      **_warm_out_proj(layer, "conv", xz, settings))
    return ssm_step(layer, xz, x_conv, ssm_state, time_step_rank, acc, settings)


def ssm_step(layer, xz, x_conv, ssm_state, time_step_rank: int, acc, settings: DecodeSettings = DEFAULT):
    """dt_proj, softplus, the state update, the D skip and the gate, from x_proj's summed accumulator
    ``acc``, the conv output ``x_conv`` (1, d_inner) and the gate in xz's upper half. Returns y (1, d_inner)."""
    d, n = layer.A.shape
    y = torch.empty(1, d, dtype=xz.dtype, device=xz.device)
    _ssm_step_kernel[(triton.cdiv(d, settings.step_block),)](acc, layer.dt_proj, layer.dt_bias, layer.A, layer.D, x_conv,
                                                    xz[:, d:], ssm_state, y, DIM=d, R=time_step_rank, N=n,
                                                    BD=settings.step_block, BR=triton.next_power_of_2(time_step_rank),
                                                    num_warps=4, **_launch(xz, settings),
                                                    **_warm_out_proj(layer, "step", xz, settings))
    return y


def _warm_out_proj(layer, kernel: str, on: torch.Tensor, settings: DecodeSettings) -> dict:
    """The L2-warming arguments of the conv kernel or the state-update ``kernel``: out_proj's weight
    from the one ``settings.warm_out_proj_from`` names, nothing from the other."""
    chosen = settings.warm_out_proj_from == kernel
    return l2_warm.warm_args(_warmable(layer.out_proj, settings) if chosen else None, settings.warm_out_proj, on,
                             settings.warm_chunk_bytes)


def warms(layer, ssm_state, settings: DecodeSettings = DEFAULT) -> bool:
    """Whether this layer's fused step warms a weight into L2 on this device (for the card), by the rules the
    launches use: out_proj's weight from the conv or state-update kernel, or the next in_proj's from an
    out_proj that runs a Triton kernel (the next layer's in_proj is this one's size: the same rule)."""
    if not applies(layer, ssm_state):
        return False
    own = _warm_out_proj(layer, settings.warm_out_proj_from, layer.out_proj, settings)["WARM"]
    kernel = _projection_kernel(layer.out_proj, settings.tiles_out_proj, settings.gemv_out_proj, settings)
    after = l2_warm.warm_args(_warmable(layer.in_proj, settings), settings.warm_next_in_proj, layer.out_proj,
                              settings.warm_chunk_bytes)["WARM"]
    return own or (kernel != "cublas" and after)


def fuses_in_proj(layer, settings: DecodeSettings = DEFAULT) -> bool:
    """Whether norm_in_conv takes this layer: on in ``settings`` for an in_proj of this size, whole
    programs of channel rows and of gate rows (d_inner a multiple of the rows per program), contiguous."""
    tiles = settings.fused_in_proj
    d = layer.A.shape[0]
    small = layer.in_proj.numel() * layer.in_proj.element_size() <= settings.fused_in_proj_max_bytes
    return (tiles is not None and small and d % tiles.rows == 0 and tiles.rows & (tiles.rows - 1) == 0
            and tiles.block_k & (tiles.block_k - 1) == 0
            and layer.in_proj.is_contiguous() and layer.in_proj.shape[0] == 2 * d)


def norm_in_conv(delta, residual, norm_w, eps: float, residual_in_fp32: bool, layer, conv_state, acc, zero=None,
                 settings: DecodeSettings = DEFAULT):
    """add_rms, in_proj and conv_xproj for one token in one kernel (see ``fused_in_proj``): returns
    (xz, x_conv, residual out) as in_proj, the conv's output and add_rms' residual would be; conv_state is
    updated in place, x_proj's share added into ``acc``, ``zero`` cleared as add_rms clears it."""
    tiles = settings.fused_in_proj
    n = delta.shape[-1]
    parts = delta.shape[0] if delta.dim() == 3 else 0
    d = layer.A.shape[0]
    width, p = layer.conv_w.shape[1], layer.x_proj.shape[0]
    res_out = torch.empty(1, n, dtype=torch.float32 if residual_in_fp32 else norm_w.dtype, device=delta.device)
    xz = torch.empty(1, 2 * d, dtype=norm_w.dtype, device=delta.device)
    x_conv = torch.empty(1, d, dtype=norm_w.dtype, device=delta.device)
    z = zero.numel() if zero is not None else 0
    with on_device(delta):
        _norm_in_conv_kernel[(2 * d // tiles.rows,)](
            delta, residual if residual is not None else delta, res_out, norm_w, zero if zero is not None else acc,
            layer.in_proj, xz, conv_state, layer.conv_w, layer.conv_b if layer.conv_b is not None else norm_w,
            layer.x_proj, x_conv, acc, eps, N=n, D=d, P=p, W=width, BN=tiles.rows, BK=tiles.block_k,
            BH=triton.next_power_of_2(n),
            BP=triton.next_power_of_2(p), BW=triton.next_power_of_2(width), Z=z, BZ=triton.next_power_of_2(max(z, 1)),
            PARTS=parts, HAS_RES=residual is not None, HAS_BIAS=layer.conv_b is not None, num_warps=tiles.warps,
            num_stages=tiles.stages, **_launch(delta, settings), **_warm_out_proj(layer, "conv", delta, settings))
    return xz, x_conv, res_out


def applies(layer, ssm_state) -> bool:
    """The kernels assume a power-of-two state size and contiguous weights (all Mamba-1 checkpoints)."""
    n = layer.A.shape[1]
    return n & (n - 1) == 0 and all(t.is_contiguous() for t in (layer.conv_w, layer.x_proj, layer.dt_proj,
                                                                  layer.A, ssm_state))
