"""Mamba-1's selective scan over a prefill chunk in one Triton kernel that starts from a given state.

Why: mamba-ssm's scan kernel has no initial-state input, so every prefill chunk after the first
needed a second kernel to add the carried state's contribution (mamba_carry), and its inputs had to
be made contiguous first. On the H200 at 32K tokens (Mamba-2.8B) the scan took 0.22 s, the carry
~0.12 s and the copies around them ~0.1 s of a 0.81 s prefill, while the arithmetic floor (one exp per
channel, state and token: 2.7 G per layer) is ~0.04 s. Here one program per block of channels walks
the chunk tile by tile: softplus(dt + bias), exp(delta * A), a parallel first-order scan along each
tile (tl.associative_scan), the C contraction, the D skip and the SiLU gate, and it carries the state
from tile to tile in registers; it reads u and z in place (row strides given) and updates the state
tensor in place. Same math and dtypes as mamba-ssm's kernel (fp32 inside, one rounding of y).

Status: correct (interpreter test; on the H200 the engine with it gave transformers' 64 greedy fp32 tokens,
assets/benchmarks/h200-gpu-tests-scan.log) but 2.5x slower than mamba-ssm's scan (2.19 ms per 8K-token chunk
and layer of Mamba-2.8B at the best setting swept, 0.56 s for 32K), so it is off by default
(KernelOps(triton_scan=True) turns it on). A faster version needs the time axis laid out within threads
rather than the associative scan across them. (That measurement also wrote in_proj's output after halo
columns for the conv, whose unaligned leading dimension sent cuBLAS to a slow kernel; the prefill now
reaches the scan without that layout or any copy, so the option was not re-measured since.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from comparer.engines.decode_attention import triton

# the fastest of the H200 sweep (scripts/tune_mamba_kernels.py --scan)
BLOCK_D = 2  # channels per program
BLOCK_T = 32  # time steps per tile
WARPS = 2

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _first_order(a1, b1, a2, b2):
        """h -> a2 * (a1 * h + b1) + b2: two steps of h_t = a_t h_{t-1} + b_t as one."""
        return a1 * a2, a2 * b1 + b2

    # z starts d rows and B, C dt_rank rows into their tensors: their alignment, like the strides, can follow
    # the chunk length, so none may pick a compiled variant (one binary for any prompt length)
    @triton.jit(do_not_specialize=["u_ptr", "b_ptr", "c_ptr", "z_ptr", "seq", "u_stride", "dt_stride", "bc_stride",
                                   "z_stride"])
    def _scan_kernel(u_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, d_ptr, z_ptr, dtb_ptr, h_ptr, y_ptr, seq, u_stride,
                     dt_stride, bc_stride, z_stride, DIM: tl.constexpr, N: tl.constexpr, BD: tl.constexpr,
                     BT: tl.constexpr):
        ch = (tl.program_id(0) * BD + tl.arange(0, BD)).to(tl.int64)  # ch * stride may pass 2^31
        cm = ch < DIM
        n = tl.arange(0, N)
        state_at = ch[:, None] * N + n[None, :]
        a = tl.load(a_ptr + state_at, mask=cm[:, None], other=0.0) * 1.4426950408889634  # exp(x) = exp2(x log2 e)
        h = tl.load(h_ptr + state_at, mask=cm[:, None], other=0.0)
        d_skip = tl.load(d_ptr + ch, mask=cm, other=0.0)
        bias = tl.load(dtb_ptr + ch, mask=cm, other=0.0)
        steps = tl.arange(0, BT)
        t0 = 0
        while t0 < seq:  # (a while loop: Triton's interpreter cannot range() over a runtime int with numpy 2)
            t = t0 + steps
            tm = t < seq
            live = cm[:, None] & tm[None, :]
            delta = tl.load(dt_ptr + ch[:, None] * dt_stride + t[None, :], mask=live, other=0.0).to(tl.float32)
            delta += bias[:, None]
            delta = tl.where(live, tl.where(delta <= 20.0, tl.log(tl.exp(delta) + 1.0), delta), 0.0)
            u = tl.load(u_ptr + ch[:, None] * u_stride + t[None, :], mask=live, other=0.0).to(tl.float32)
            b = tl.load(b_ptr + n[:, None] * bc_stride + t[None, :], mask=tm[None, :], other=0.0).to(tl.float32)
            c = tl.load(c_ptr + n[:, None] * bc_stride + t[None, :], mask=tm[None, :], other=0.0).to(tl.float32)
            # past the end delta = 0: decay 1, drive 0, so the state at the tile's last column is the last step's
            decay = tl.exp2(delta[:, None, :] * a[:, :, None])  # (BD, N, BT)
            drive = (delta * u)[:, None, :] * b[None, :, :]
            decay, drive = tl.associative_scan((decay, drive), axis=2, combine_fn=_first_order)
            states = decay * h[:, :, None] + drive
            y = tl.sum(states * c[None, :, :], axis=1) + d_skip[:, None] * u
            z = tl.load(z_ptr + ch[:, None] * z_stride + t[None, :], mask=live, other=0.0).to(tl.float32)
            y = y * (z * tl.sigmoid(z))
            tl.store(y_ptr + ch[:, None] * seq + t[None, :], y.to(y_ptr.dtype.element_ty), mask=live)
            h = tl.sum(tl.where(steps[None, None, :] == BT - 1, states, 0.0), axis=2)
            t0 += BT
        tl.store(h_ptr + state_at, h, mask=cm[:, None])


def _row_major(t: torch.Tensor) -> bool:
    """A (d, seq) view whose rows are contiguous (any row stride), as the kernel reads it."""
    return t.dim() == 2 and t.stride(1) == 1


def scan(u, dt, A, B, C, D, z, dt_bias, state):
    """y (d, seq) in u's dtype for u, dt, z (d, seq) with contiguous rows, B and C (n, seq) likewise,
    A (d, n), D and dt_bias (d,) fp32, starting from ``state`` (d, n) fp32, which becomes the state
    after the last step (in place). delta = softplus(dt + dt_bias), as mamba-ssm with delta_softplus."""
    if not all(_row_major(t) for t in (u, dt, z, B, C)) or B.stride(0) != C.stride(0):
        raise ValueError("the scan kernel takes (rows, seq) tensors with contiguous rows; B and C with one stride")
    if not (state.is_contiguous() and A.is_contiguous()):
        raise ValueError("the scan kernel takes a contiguous state and A")
    d, n = A.shape
    seq = u.shape[1]
    y = torch.empty(d, seq, dtype=u.dtype, device=u.device)
    _scan_kernel[(triton.cdiv(d, BLOCK_D),)](u, dt, A, B, C, D, z, dt_bias, state, y, seq, u.stride(0), dt.stride(0),
                                            B.stride(0), z.stride(0), DIM=d, N=n, BD=BLOCK_D, BT=BLOCK_T,
                                            num_warps=WARPS)
    return y


def scan_batch(u, dt, A, B, C, D, z, dt_bias, h0):
    """TorchOps.scan's interface, batch 1: u, dt, z (1, d, seq); B, C (1, n, seq); h0 (1, d, n) or None.
    Returns (y (1, d, seq), last state (1, d, n) fp32)."""
    state = (h0[0] if h0 is not None else torch.zeros_like(A)).float().contiguous().clone()
    return scan(u[0], dt[0], A, B[0], C[0], D, z[0], dt_bias, state)[None], state[None]


def scan_reference(u, dt, A, B, C, D, z, dt_bias, state):
    """The same recurrence step by step in PyTorch (tests); updates ``state`` in place."""
    delta = F.softplus(dt.float() + dt_bias[:, None])  # (d, seq)
    h, ys = state.clone(), []
    for t in range(u.shape[1]):
        h = torch.exp(delta[:, t, None] * A) * h + (delta[:, t] * u[:, t].float())[:, None] * B[None, :, t].float()
        ys.append((h * C[None, :, t].float()).sum(-1) + D * u[:, t].float())
    state.copy_(h)
    return (torch.stack(ys, 1) * F.silu(z.float())).to(u.dtype)


def warm_up(dtype: torch.dtype, n: int, device: str = "cuda") -> None:
    """Compile the kernel at load for the model's dtype and state size, with the prefill's layout (z the
    second half of in_proj's rows, B and C rows of x_proj's output), so no prefill pays for it."""
    d, seq = BLOCK_D, 2 * BLOCK_T + 3
    xz = torch.zeros(2 * d, seq, dtype=dtype, device=device)
    xdbl = torch.zeros(8 + 2 * n, seq, dtype=dtype, device=device)
    scan(xz[:d], torch.zeros(d, seq, dtype=dtype, device=device), -torch.ones(d, n, device=device), xdbl[8:8 + n],
         xdbl[8 + n:], torch.zeros(d, device=device), xz[d:], torch.zeros(d, device=device),
         torch.zeros(d, n, device=device))
