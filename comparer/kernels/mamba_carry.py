"""The recurrent state carried into a prefill chunk, added in one Triton pass (CUDA; the same math
in PyTorch below for tests and machines without Triton).

mamba-ssm's selective-scan kernel starts every call from a zero state, so a chunk after the first
gets the previous chunk's state h0 added afterwards, exactly:

    y_t += silu(z_t) * sum_n C_nt exp(A_dn S_dt) h0_dn,   last_dn += exp(A_dn S_dT) h0_dn,
    S_dt = cumsum_t softplus(dt_dt + dt_bias_d).

Why a kernel: in PyTorch (even torch.compile'd) this made five fp32 (d, seq) temporaries per layer
and took 0.38 s of Mamba-2.8B's 1.40 s prefill of 32K tokens on the H200 (a scripts/profile_fast.py
profile of 2026-11-28, not kept as a file; with a kernel the prefill takes 0.86-0.98 s,
assets/benchmarks/logs/h200-mamba-prefill-tuning.txt). That kernel walked each channel block's sequence
tile by tile (640 programs for Mamba-2.8B) and took 0.16 s of the 0.85 s at 32K
(assets/benchmarks/logs/h200-prefill-32k-profile.txt); now a first pass sums softplus(dt) per tile, a tiny
cumsum turns the sums into each tile's starting value, and every (channel block, tile) runs in
parallel, rewriting y in place: z and y are read once, dt twice, only the (d, tiles) sums are stored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from comparer.kernels.triton import tl, triton

# H200 settings from scripts/tune_mamba_kernels.py
BLOCK_D = 8  # channels per program
BLOCK_T = 256  # time steps per tile

if triton is not None:

    @triton.jit
    def _softplus_tile(dt_ptr, dtb_ptr, ch, cm, t, seq):
        """softplus(dt + bias) for a [channels, time] tile, zero outside the sequence."""
        live = cm[:, None] & (t < seq)[None, :]
        bias = tl.load(dtb_ptr + ch, mask=cm, other=0.0)
        delta = tl.load(dt_ptr + ch[:, None] * seq + t[None, :], mask=live, other=0.0).to(tl.float32) + bias[:, None]
        return tl.where(live, tl.where(delta <= 20.0, tl.log(tl.exp(delta) + 1.0), delta), 0.0)

    @triton.jit(do_not_specialize=["seq"])
    def _tile_sums_kernel(dt_ptr, dtb_ptr, sums_ptr, seq, TILES, DIM: tl.constexpr, BD: tl.constexpr,
                          BT: tl.constexpr):
        ch = (tl.program_id(0) * BD + tl.arange(0, BD)).to(tl.int64)  # ch * seq may pass 2^31
        cm = ch < DIM
        t = tl.program_id(1) * BT + tl.arange(0, BT)
        delta = _softplus_tile(dt_ptr, dtb_ptr, ch, cm, t, seq)
        tl.store(sums_ptr + ch * TILES + tl.program_id(1), tl.sum(delta, axis=1), mask=cm)

    @triton.jit(do_not_specialize=["seq"])
    def _carry_kernel(dt_ptr, dtb_ptr, a_ptr, c_ptr, z_ptr, h0_ptr, y_ptr, start_ptr, seq, TILES,
                      DIM: tl.constexpr, N: tl.constexpr, BD: tl.constexpr, BT: tl.constexpr):
        ch = (tl.program_id(0) * BD + tl.arange(0, BD)).to(tl.int64)
        cm = ch < DIM
        t = tl.program_id(1) * BT + tl.arange(0, BT)
        live = cm[:, None] & (t < seq)[None, :]
        at = ch[:, None] * seq + t[None, :]
        delta = _softplus_tile(dt_ptr, dtb_ptr, ch, cm, t, seq)
        # the running sum up to this tile (an exclusive prefix over the tile sums) plus this tile's own
        cum = tl.cumsum(delta, axis=1) + tl.load(start_ptr + ch * TILES + tl.program_id(1), mask=cm, other=0.0)[:, None]
        extra = tl.zeros([BD, BT], dtype=tl.float32)
        for n in tl.static_range(N):
            a = tl.load(a_ptr + ch * N + n, mask=cm, other=0.0)
            h = tl.load(h0_ptr + ch * N + n, mask=cm, other=0.0)
            c = tl.load(c_ptr + n * seq + t, mask=t < seq, other=0.0).to(tl.float32)
            extra += h[:, None] * tl.exp(a[:, None] * cum) * c[None, :]
        z = tl.load(z_ptr + at, mask=live, other=0.0).to(tl.float32)
        y = tl.load(y_ptr + at, mask=live, other=0.0).to(tl.float32)
        tl.store(y_ptr + at, (y + extra * (z * tl.sigmoid(z))).to(y_ptr.dtype.element_ty), mask=live)


def add_initial_state(y, last, dt, A, C, z, dt_bias, h0):
    """Adds h0's contribution in place. Batch 1, contiguous: y, dt, z (1, d, seq); C (1, n, seq);
    A (d, n), h0 and last (1, d, n) fp32. Returns (y, last)."""
    if triton is None or not y.is_cuda:
        return add_initial_state_reference(y, last, dt, A, C, z, dt_bias, h0)
    return launch(y, last, dt, A, C, z, dt_bias, h0)


def launch(y, last, dt, A, C, z, dt_bias, h0):
    """The Triton kernels on any tensors (the tests run them on the CPU under TRITON_INTERPRET=1):
    tile sums of softplus(dt), their exclusive prefix (a (d, tiles) cumsum), then every tile in
    parallel; ``last`` gets exp(A * total) * h0."""
    if y.shape[0] != 1 or not all(t.is_contiguous() for t in (y, last, dt, A, C, z, h0)):
        raise ValueError("the chunk-carry kernel takes batch 1 and contiguous tensors")
    d, n = A.shape
    seq = dt.shape[-1]
    tiles = triton.cdiv(seq, BLOCK_T)
    grid = (triton.cdiv(d, BLOCK_D), tiles)
    sums = torch.empty(d, tiles, dtype=torch.float32, device=y.device)
    _tile_sums_kernel[grid](dt, dt_bias, sums, seq, tiles, DIM=d, BD=BLOCK_D, BT=BLOCK_T, num_warps=4)
    ends = torch.cumsum(sums, dim=1)
    _carry_kernel[grid](dt, dt_bias, A, C, z, h0, y, ends - sums, seq, tiles, DIM=d, N=n, BD=BLOCK_D, BT=BLOCK_T,
                        num_warps=4)
    last += torch.exp(A * ends[:, -1:]) * h0
    return y, last


def add_initial_state_reference(y, last, dt, A, C, z, dt_bias, h0):
    """The same sum in PyTorch, one (1, d, seq) temporary per state channel."""
    cum_delta = torch.cumsum(F.softplus(dt.float() + dt_bias[:, None]), dim=-1)  # (1, d, seq)
    extra = torch.zeros_like(cum_delta)
    for k in range(A.shape[1]):
        extra += h0[:, :, k, None] * torch.exp(A[None, :, k, None] * cum_delta) * C[:, None, k, :].float()
    y.copy_((y.float() + extra * F.silu(z.float())).to(y.dtype))
    last += torch.exp(A[None] * cum_delta[..., -1:]) * h0
    return y, last


def warm_up(dtype: torch.dtype, n: int, device: str = "cuda") -> None:
    """Compile the kernel for the model's dtype and state size at load, so no prefill pays for it."""
    d, seq = BLOCK_D, 2 * BLOCK_T + 3
    y, dt, z = (torch.zeros(1, d, seq, dtype=dtype, device=device) for _ in range(3))
    A, h0 = -torch.ones(d, n, device=device), torch.zeros(1, d, n, device=device)
    add_initial_state(y, torch.zeros(1, d, n, device=device), dt, A, torch.zeros(1, n, seq, dtype=dtype,
                      device=device), z, torch.zeros(d, device=device), h0)
