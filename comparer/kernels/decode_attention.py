"""Single-query attention over a preallocated KV cache whose valid length lives on the device.

Why: a CUDA graph replays fixed launches, so the decode step cannot pass the current context
length as a Python int. ``F.scaled_dot_product_attention`` over the whole cache with a mask would
read every preallocated slot (at 32K context in a 64K cache, twice the KV bytes the bound
allows). These Triton kernels read the length from a device tensor and touch only valid keys, and
split the keys across programs (flash-decoding) so that one query still fills the GPU: a batch-1
decode has only ``heads`` rows, far fewer than the H200's 132 multiprocessors.

``rope_cache_write`` fuses the rotary embedding of the new token's query and key with the write of
its key and value into the cache (about fourteen eager kernels in transformers' path).
The PyTorch functions at the bottom are the same math for the CPU and for tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from comparer.kernels.pdl import after_previous, launch_args
from comparer.kernels.triton import on_device, tl, triton

# Launch settings from scripts/tune_decode_kernels.py on the H200 (assets/benchmarks/
# h200-decode-kernel-tuning.txt): at 32K context 141 us = 3.8 TB/s, against 195 us with 4 warps.
BLOCK_N = 64  # keys per tile inside a program
MAX_SPLITS = 256  # key splits per head: 32 heads x 256 = 8,192 programs at long context
NUM_WARPS = 2


if triton is not None:

    @triton.jit
    def _split_kernel(q_ptr, k_ptr, v_ptr, len_ptr, o_ptr, m_ptr, l_ptr, stride_kh, stride_kn, stride_vh,
                      stride_vn, scale, GROUP: tl.constexpr, SPLIT: tl.constexpr, NUM_SPLITS: tl.constexpr,
                      D: tl.constexpr, BLOCK_N: tl.constexpr, PDL: tl.constexpr):
        """One (query head, key split): unnormalised output, running max and sum of its keys."""
        h, s = tl.program_id(0), tl.program_id(1)
        kv_h = h // GROUP
        after_previous(PDL)  # the new key, q and the length all come from kernels before this one
        n_keys = tl.load(len_ptr)
        start = s * SPLIT
        end = tl.minimum(start + SPLIT, n_keys)
        d = tl.arange(0, D)
        q = tl.load(q_ptr + h * D + d).to(tl.float32) * scale  # (D,)
        m_i = tl.full([1], float("-inf"), tl.float32)
        l_i = tl.zeros([1], tl.float32)
        acc = tl.zeros([D], tl.float32)
        if start < end:  # a static loop under a branch: the interpreter cannot loop to a loaded bound
            for i in range(0, SPLIT, BLOCK_N):
                n = start + i + tl.arange(0, BLOCK_N)
                valid = n < end
                k = tl.load(k_ptr + kv_h * stride_kh + n[:, None] * stride_kn + d[None, :], mask=valid[:, None],
                            other=0.0)
                v = tl.load(v_ptr + kv_h * stride_vh + n[:, None] * stride_vn + d[None, :], mask=valid[:, None],
                            other=0.0)  # issued with k: a one-tile split need not wait for q.k first
                qk = tl.where(valid, tl.sum(k.to(tl.float32) * q[None, :], axis=1), float("-inf"))  # (BLOCK_N,)
                m_new = tl.maximum(m_i, tl.max(qk, axis=0))
                m_safe = tl.where(m_new > float("-inf"), m_new, 0.0)  # a block past the end is all -inf
                p = tl.exp(qk - m_safe)
                alpha = tl.exp(m_i - m_safe)
                acc = acc * alpha + tl.sum(p[:, None] * v.to(tl.float32), axis=0)
                l_i = l_i * alpha + tl.sum(p, axis=0)
                m_i = m_new
        row = h * NUM_SPLITS + s
        tl.store(o_ptr + row * D + d, acc)
        tl.store(m_ptr + row + tl.arange(0, 1), m_i)
        tl.store(l_ptr + row + tl.arange(0, 1), l_i)

    @triton.jit
    def _combine_kernel(o_ptr, m_ptr, l_ptr, out_ptr, NUM_SPLITS: tl.constexpr, D: tl.constexpr,
                        BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr, PDL: tl.constexpr):
        """Merge one head's splits (for BLOCK_D of its dims) with the log-sum-exp rule; empty splits
        carry zero weight. BLOCK_S >= NUM_SPLITS, so one pass."""
        h, dblk = tl.program_id(0), tl.program_id(1)
        after_previous(PDL)
        s = tl.arange(0, BLOCK_S)
        live = s < NUM_SPLITS
        d = dblk * BLOCK_D + tl.arange(0, BLOCK_D)
        m = tl.load(m_ptr + h * NUM_SPLITS + s, mask=live, other=float("-inf"))
        m_max = tl.max(m, axis=0)
        w = tl.where(m > float("-inf"), tl.exp(m - m_max), 0.0)  # (BLOCK_S,)
        lsum = tl.load(l_ptr + h * NUM_SPLITS + s, mask=live, other=0.0)
        o = tl.load(o_ptr + (h * NUM_SPLITS + s)[:, None] * D + d[None, :], mask=live[:, None], other=0.0)
        out = tl.sum(w[:, None] * o, axis=0) / tl.sum(w * lsum, axis=0)
        tl.store(out_ptr + h * D + d, out.to(out_ptr.dtype.element_ty))

    @triton.jit
    def _rope_write_kernel(q_ptr, k_ptr, v_ptr, cos_ptr, sin_ptr, pos_ptr, q_out_ptr, k_cache_ptr, v_cache_ptr,
                           stride_qh, stride_kh, stride_vh, stride_ch, stride_cn, stride_cos, GROUP: tl.constexpr,
                           D: tl.constexpr, ROT: tl.constexpr, PDL: tl.constexpr):
        """Rotate the first ROT dims of one query head (and of its key head, once per group), write
        the key and value at position ``pos`` of the cache. rotate_half: [-x2, x1] on the ROT dims."""
        h = tl.program_id(0)
        after_previous(PDL)
        pos = tl.load(pos_ptr)
        d = tl.arange(0, D)
        half = ROT // 2
        in_rot = d < ROT
        partner = tl.where(d < half, d + half, d - half)
        sign = tl.where(d < half, -1.0, 1.0)
        cos = tl.load(cos_ptr + pos * stride_cos + d, mask=in_rot, other=1.0).to(tl.float32)
        sin = tl.load(sin_ptr + pos * stride_cos + d, mask=in_rot, other=0.0).to(tl.float32)
        q = tl.load(q_ptr + h * stride_qh + d).to(tl.float32)
        q_p = tl.load(q_ptr + h * stride_qh + partner, mask=in_rot, other=0.0).to(tl.float32)
        tl.store(q_out_ptr + h * D + d, (q * cos + sign * q_p * sin).to(q_out_ptr.dtype.element_ty))
        if h % GROUP == 0:
            kh = h // GROUP
            k = tl.load(k_ptr + kh * stride_kh + d).to(tl.float32)
            k_p = tl.load(k_ptr + kh * stride_kh + partner, mask=in_rot, other=0.0).to(tl.float32)
            row = kh * stride_ch + pos * stride_cn + d
            tl.store(k_cache_ptr + row, (k * cos + sign * k_p * sin).to(k_cache_ptr.dtype.element_ty))
            tl.store(v_cache_ptr + row, tl.load(v_ptr + kh * stride_vh + d))


def split_for(cache_tokens: int, block_n: int = None, max_splits: int = None) -> tuple[int, int]:
    """(keys per split, splits) for a bucket: one tile per split up to 8,192 keys, then 128 splits of
    more tiles. A 512-token context in the 1,024 bucket runs 8 live splits per head, not one serial
    walk (which cost 41 us per layer on the H200)."""
    block_n, max_splits = block_n or BLOCK_N, max_splits or MAX_SPLITS
    tiles = math.ceil(cache_tokens / block_n)
    tiles_per_split = math.ceil(tiles / max_splits)
    split_tokens = tiles_per_split * block_n
    return split_tokens, math.ceil(cache_tokens / split_tokens)


def decode_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, length: torch.Tensor,
                     scale: float, cache_tokens: int, block_n: int = None, max_splits: int = None,
                     num_warps: int = None, pdl: bool = False) -> torch.Tensor:
    """q (heads, D); caches (kv_heads, max_tokens, D); ``length`` int32 (1,) on the device.
    ``cache_tokens`` bounds the keys this call may read (the bucket): it sets the grid, so a graph
    captured for a bucket serves every length up to it. Returns (heads, D) in q's dtype. ``pdl``:
    both kernels launch with programmatic dependent launch (kernels/pdl.py)."""
    heads, dim = q.shape
    block_n, num_warps = block_n or BLOCK_N, num_warps or NUM_WARPS
    split_tokens, splits = split_for(cache_tokens, block_n, max_splits)
    o = torch.empty(heads, splits, dim, dtype=torch.float32, device=q.device)
    m = torch.empty(heads, splits, dtype=torch.float32, device=q.device)
    l_sum = torch.empty_like(m)
    out = torch.empty(heads, dim, dtype=q.dtype, device=q.device)
    block_d = min(dim, 32)
    with on_device(q):
        _split_kernel[(heads, splits)](q, k_cache, v_cache, length, o, m, l_sum, k_cache.stride(0), k_cache.stride(1),
                                       v_cache.stride(0), v_cache.stride(1), scale, GROUP=heads // k_cache.shape[0],
                                       SPLIT=split_tokens, NUM_SPLITS=splits, D=dim, BLOCK_N=block_n,
                                       num_warps=num_warps, **launch_args(q, pdl))
        _combine_kernel[(heads, dim // block_d)](o, m, l_sum, out, NUM_SPLITS=splits, D=dim,
                                                 BLOCK_S=triton.next_power_of_2(splits), BLOCK_D=block_d, num_warps=4,
                                                 **launch_args(q, pdl))
    return out


def rope_cache_write(q, k, v, cos, sin, pos, k_cache, v_cache, pdl: bool = False) -> torch.Tensor:
    """q (heads, D), k and v (kv_heads, D), views allowed; cos/sin tables (max_tokens, ROT);
    ``pos`` int64 (1,) on the device. Writes k (rotated) and v at ``pos``; returns the rotated q.
    ``pdl`` as in decode_attention."""
    heads, dim = q.shape
    q_out = torch.empty(heads, dim, dtype=q.dtype, device=q.device)
    with on_device(q):
        _rope_write_kernel[(heads,)](q, k, v, cos, sin, pos, q_out, k_cache, v_cache, q.stride(0), k.stride(0),
                                     v.stride(0), k_cache.stride(0), k_cache.stride(1), cos.stride(0),
                                     GROUP=heads // k.shape[0], D=dim, ROT=cos.shape[-1], num_warps=1,
                                     **launch_args(q, pdl))
    return q_out


# ---- the same math in PyTorch (CPU path and test reference) -------------------------------------
def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """transformers' apply_rotary_pos_emb on the first ``cos.shape[-1]`` dims; x (..., seq, D)."""
    rot = cos.shape[-1]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    x1, x2 = x_rot[..., : rot // 2], x_rot[..., rot // 2:]
    return torch.cat([x_rot * cos + torch.cat((-x2, x1), dim=-1) * sin, x_pass], dim=-1)


def torch_decode_attention(q, k_cache, v_cache, n_keys: int, scale: float) -> torch.Tensor:
    """q (heads, D) against the first ``n_keys`` cache rows; (heads, D)."""
    k, v = k_cache[:, :n_keys].unsqueeze(0), v_cache[:, :n_keys].unsqueeze(0)  # (1, kv_heads, n, D)
    out = F.scaled_dot_product_attention(q[None, :, None], k, v, scale=scale,
                                         enable_gqa=q.shape[0] != k_cache.shape[0])
    return out[0, :, 0]


def compiled_kernel_variants() -> int:
    """How many Triton binaries these kernels hold (one per grid-shaping constant): a count that must
    not grow after load, or a generation compiled something."""
    if triton is None:
        return 0
    from comparer.kernels import decode_norms

    kernels = (_split_kernel, _combine_kernel, _rope_write_kernel, decode_norms._add_ln_pair_kernel,
               decode_norms._add_rms_kernel)
    return sum(len(caches[0]) for k in kernels for caches in k.device_caches.values())
