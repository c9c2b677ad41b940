"""Matrix-vector product for a one-token decode step (Triton), for shapes where cuBLAS is slow.

Why: at batch 1 every projection is a GEMV whose speed is the weight bytes over the bandwidth.
On the H200 (assets/benchmarks/h200-decode-kernel-tuning.txt) cuBLAS runs Pythia-6.9B's
dense_4h_to_h (16,384 -> 4,096, 134 MB) as split-K plus a reduction in 71.5 us (1.9 TB/s); this
kernel, each program reading 4 whole weight rows, takes 47.5 us (2.8 TB/s). For the other shapes
measured cuBLAS was as fast or faster, so ``decode_linear`` uses this kernel only where the
reduction is at least four times longer than the output. Accumulation is fp32, as in cuBLAS.
"""

from __future__ import annotations

import torch

from comparer.engines.decode_attention import triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _gemv_kernel(x_ptr, w_ptr, b_ptr, y_ptr, N, K: tl.constexpr, stride_w, HAS_BIAS: tl.constexpr,
                     BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        live = rows < N
        acc = tl.zeros([BLOCK_N], tl.float32)
        for k0 in range(0, K, BLOCK_K):
            cols = k0 + tl.arange(0, BLOCK_K)
            w = tl.load(w_ptr + rows[:, None] * stride_w + cols[None, :], mask=live[:, None] & (cols[None, :] < K),
                        other=0.0)
            x = tl.load(x_ptr + cols, mask=cols < K, other=0.0)
            acc += tl.sum(w.to(tl.float32) * x.to(tl.float32)[None, :], axis=1)
        if HAS_BIAS:
            acc += tl.load(b_ptr + rows, mask=live, other=0.0).to(tl.float32)
        tl.store(y_ptr + rows, acc.to(y_ptr.dtype.element_ty), mask=live)


def gemv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, block_n: int = 8,
         block_k: int = 512, num_warps: int = 4) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` for x (1, K) contiguous in its last dim; weight (N, K)."""
    n, k = weight.shape
    y = torch.empty(1, n, dtype=x.dtype, device=x.device)
    _gemv_kernel[(triton.cdiv(n, block_n),)](x, weight, bias if bias is not None else weight, y, n, K=k,
                                             stride_w=weight.stride(0), HAS_BIAS=bias is not None, BLOCK_N=block_n,
                                             BLOCK_K=block_k, num_warps=num_warps)
    return y


def decode_linear(x: torch.Tensor, linear: torch.nn.Linear) -> torch.Tensor:
    """``linear(x)`` for one token: the Triton GEMV for long reductions (K >= 4 N), else cuBLAS."""
    n, k = linear.weight.shape
    if k >= 4 * n:
        return gemv(x, linear.weight, linear.bias, block_n=4, block_k=512, num_warps=8)
    return linear(x)
