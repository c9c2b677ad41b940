"""Mamba-1's selective scan over a prefill chunk in one Triton kernel that starts from a given state.

Why: without mamba-ssm (no CUDA compiler on ZeroGPU, no prebuilt wheel for most torch / CUDA /
Python combinations) Mamba fell back to transformers' per-token Python scan, 250x slower to start
than with the kernels, while the Transformer beside it kept its Triton engine: the race measured
the install, not the architecture. Triton ships with torch, so this kernel runs wherever the GPU
Transformer engine does. It also starts from the carried state, which mamba-ssm's scan cannot
(comparer added a second kernel for the carry there).

Layout (the reason a first version, with (channels, states, steps) tiles, ran 2.5x slower than
mamba-ssm): one program per block of ``BD`` channels walks the chunk in tiles of ``BT`` steps;
per tile it computes softplus(dt + bias) and delta * u once, then for each of the N states (an
unrolled loop) exp(delta * A), a first-order scan along time (tl.associative_scan: 8-16 steps per
thread in registers, then warp shuffles), the C contraction into y and the carry of that state's
last value. Every tensor is (channels, steps), so no layout conversions happen inside the loop.
The loads must be vectorised for this layout: the engine pads each chunk to a multiple of 16
columns (``PAD``), so every row starts 16-byte aligned whatever the prompt length. ``seq`` (the
valid steps) is the only unspecialised argument: past it delta is 0 (decay 1, drive 0), so the
state carried out is the last valid step's. Same math and dtypes as mamba-ssm's kernel (fp32
inside, one rounding of y).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from comparer.kernels.triton import tl, triton

PAD = 16  # columns every prefill row is padded to a multiple of (aligned, vectorised loads)
# (channels per program, steps per tile, warps) by compute capability. sm_90: the H200 sweep's fastest,
# (1, 512, 1): 32K-token prefill of Mamba-2.8B 0.498 s against 0.619 s for (1, 256, 1) and 0.628 s with
# mamba-ssm (assets/benchmarks/logs/h200-mamba-scan-tuning.txt), though ptxas spills 84 bytes there. Elsewhere
# (no such GPU was at hand to tune on): the fastest setting of that sweep that ptxas builds without spills
# for sm_80, sm_89 and sm_120 (the ZeroGPU card), (4, 256, 4) at 0.665 s on the H200.
SETTINGS = {(9, 0): (1, 512, 1)}
DEFAULT_SETTING = (4, 256, 4)

if triton is not None:

    @triton.jit
    def _first_order(a1, b1, a2, b2):
        """h -> a2 * (a1 * h + b1) + b2: two steps of h_t = a_t h_{t-1} + b_t as one."""
        return a1 * a2, a2 * b1 + b2

    @triton.jit(do_not_specialize=["seq"])
    def _scan_kernel(u_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, d_ptr, z_ptr, dtb_ptr, h_ptr, y_ptr, seq, cols, u_stride,
                     dt_stride, bc_stride, z_stride, DIM: tl.constexpr, N: tl.constexpr, BD: tl.constexpr,
                     BT: tl.constexpr):
        ch = (tl.program_id(0) * BD + tl.arange(0, BD)).to(tl.int64)  # ch * stride may pass 2^31
        cm = ch < DIM
        ns = tl.arange(0, N)
        h = tl.load(h_ptr + ch[:, None] * N + ns[None, :], mask=cm[:, None], other=0.0)  # (BD, N) fp32
        d_skip = tl.load(d_ptr + ch, mask=cm, other=0.0)
        bias = tl.load(dtb_ptr + ch, mask=cm, other=0.0)
        steps = tl.arange(0, BT)
        t0 = 0
        while t0 < cols:  # (a while loop: Triton's interpreter cannot range() over a runtime int with numpy 2)
            t = tl.multiple_of(t0, BT) + steps
            tm = t < cols  # cols is a multiple of 16: whole vectors are in or out
            live = cm[:, None] & tm[None, :]
            delta = tl.load(dt_ptr + ch[:, None] * dt_stride + t[None, :], mask=live, other=0.0).to(tl.float32)
            delta += bias[:, None]
            delta = tl.where(delta <= 20.0, tl.log(tl.exp(delta) + 1.0), delta)
            delta = tl.where(live & (t[None, :] < seq), delta, 0.0)
            u = tl.load(u_ptr + ch[:, None] * u_stride + t[None, :], mask=live, other=0.0).to(tl.float32)
            du = delta * u
            y = d_skip[:, None] * u
            for i in tl.static_range(N):
                a_i = tl.load(a_ptr + ch * N + i, mask=cm, other=0.0) * 1.4426950408889634  # exp(x) = exp2(x log2 e)
                b_i = tl.load(b_ptr + i * bc_stride + t, mask=tm, other=0.0).to(tl.float32)
                c_i = tl.load(c_ptr + i * bc_stride + t, mask=tm, other=0.0).to(tl.float32)
                decay, drive = tl.associative_scan((tl.exp2(delta * a_i[:, None]), du * b_i[None, :]), axis=1,
                                                   combine_fn=_first_order)
                h_i = tl.sum(tl.where(ns[None, :] == i, h, 0.0), axis=1)
                states = decay * h_i[:, None] + drive
                y += states * c_i[None, :]
                # (a tl.gather of the last step instead: 5.07 against 3.71 ms on the H200, h200-prefill-scan.txt)
                last = tl.sum(tl.where(steps[None, :] == BT - 1, states, 0.0), axis=1)
                h = tl.where(ns[None, :] == i, last[:, None], h)
            z = tl.load(z_ptr + ch[:, None] * z_stride + t[None, :], mask=live, other=0.0).to(tl.float32)
            y = y * (z * tl.sigmoid(z))
            tl.store(y_ptr + ch[:, None] * cols + t[None, :], y.to(y_ptr.dtype.element_ty), mask=live)
            t0 += BT
        tl.store(h_ptr + ch[:, None] * N + ns[None, :], h, mask=cm[:, None])


@functools.lru_cache(maxsize=None)
def _capability(device_index: int) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device_index)


def launch_setting(device: torch.device) -> tuple[int, int, int]:
    """The (channels, steps, warps) for ``device``'s architecture (the default off CUDA: the interpreter)."""
    if device.type != "cuda":
        return DEFAULT_SETTING
    return SETTINGS.get(_capability(device.index or 0), DEFAULT_SETTING)


def _row_major(t: torch.Tensor) -> bool:
    """A (rows, cols) view whose rows are contiguous (any row stride), as the kernel reads it."""
    return t.dim() == 2 and t.stride(1) == 1


def scan(u, dt, A, B, C, D, z, dt_bias, state, seq: int | None = None, setting: tuple[int, int, int] | None = None):
    """y (d, cols) in u's dtype for u, dt, z (d, cols) with contiguous rows, B and C (n, cols) likewise,
    A (d, n), D and dt_bias (d,) fp32, starting from ``state`` (d, n) fp32, which becomes the state
    after step ``seq`` (default: all columns; in place). delta = softplus(dt + dt_bias), as mamba-ssm
    with delta_softplus. Columns past ``seq`` are padding: their y is computed but means nothing.
    ``setting``: (channels, steps, warps) instead of the device's (tuning scripts)."""
    if not all(_row_major(t) for t in (u, dt, z, B, C)) or B.stride(0) != C.stride(0):
        raise ValueError("the scan kernel takes (rows, seq) tensors with contiguous rows; B and C with one stride")
    if not (state.is_contiguous() and A.is_contiguous()):
        raise ValueError("the scan kernel takes a contiguous state and A")
    d, n = A.shape
    cols = u.shape[1]
    channels, steps, warps = setting or launch_setting(u.device)
    y = torch.empty(d, cols, dtype=u.dtype, device=u.device)
    _scan_kernel[(triton.cdiv(d, channels),)](u, dt, A, B, C, D, z, dt_bias, state, y, cols if seq is None else seq,
                                             cols, u.stride(0), dt.stride(0), B.stride(0), z.stride(0), DIM=d, N=n,
                                             BD=channels, BT=steps, num_warps=warps)
    return y


def scan_reference(u, dt, A, B, C, D, z, dt_bias, state, seq: int | None = None):
    """The same recurrence step by step in PyTorch (tests); updates ``state`` in place to step ``seq``."""
    delta = F.softplus(dt.float() + dt_bias[:, None])  # (d, cols)
    h, ys = state.clone(), []
    for t in range(u.shape[1]):
        h = torch.exp(delta[:, t, None] * A) * h + (delta[:, t] * u[:, t].float())[:, None] * B[None, :, t].float()
        ys.append((h * C[None, :, t].float()).sum(-1) + D * u[:, t].float())
        if t + 1 == seq:
            state.copy_(h)
    if seq is None or seq >= u.shape[1]:
        state.copy_(h)
    return (torch.stack(ys, 1) * F.silu(z.float())).to(u.dtype)


def warm_up(dtype: torch.dtype, n: int, device: str = "cuda", d: int = 4) -> None:
    """Compile the kernel at load for the model's dtype, state size and channel count ``d`` (DIM is a
    compile-time constant), with the prefill's layout (z the second half of in_proj's rows, B and C rows of
    x_proj's output, rows a multiple of PAD long), so no prefill pays for it."""
    cols, rank = 2 * PAD, PAD
    xz = torch.zeros(2 * d, cols, dtype=dtype, device=device)
    xdbl = torch.zeros(rank + 2 * n, cols, dtype=dtype, device=device)
    scan(xz[:d], torch.zeros(d, cols, dtype=dtype, device=device), -torch.ones(d, n, device=device),
         xdbl[rank:rank + n], xdbl[rank + n:], torch.zeros(d, device=device), xz[d:], torch.zeros(d, device=device),
         torch.zeros(d, n, device=device), seq=cols - 3)
