"""Sweep launch settings of the decode kernels on the GPU and print time and effective bandwidth.

Attention: Pythia-6.9B shapes (32 heads x 128) at the benchmark's contexts and their buckets.
Bandwidth = KV bytes the kernel must read / time (TB/s); the card's copy bandwidth is the ceiling.
do_bench times single launches, so short kernels include launch latency that a CUDA graph hides.
(A Triton GEMV swept here on 2026-11-29 looked faster than cuBLAS for Pythia's dense_4h_to_h under
do_bench, but inside the decode graph it took 37.6 us against cuBLAS's 35 us, so it was dropped.)

    python scripts/tune_decode_kernels.py > tune.txt
"""

from __future__ import annotations

import itertools

import torch
import triton.testing

from comparer.kernels.decode_attention import decode_attention

HEADS, DIM = 32, 128
CONTEXTS = {512: 1024, 8192: 16384, 32768: 32896}  # context -> bucket the engine would pick


def us(fn) -> float:
    return triton.testing.do_bench(fn, warmup=25, rep=200) * 1e3


def tune_attention() -> None:
    cache = max(CONTEXTS.values())
    k = torch.randn(HEADS, cache, DIM, dtype=torch.float16, device="cuda")
    v = torch.randn_like(k)
    q = torch.randn(HEADS, DIM, dtype=torch.float16, device="cuda")
    for ctx, bucket in CONTEXTS.items():
        length = torch.tensor([ctx], dtype=torch.int32, device="cuda")
        kv_bytes = 2 * HEADS * ctx * DIM * 2
        rows = []
        for block_n, warps, splits in itertools.product((32, 64, 128), (2, 4), (64, 128, 256)):
            t = us(lambda: decode_attention(q, k, v, length, DIM ** -0.5, bucket, block_n, splits, warps))
            rows.append((t, block_n, warps, splits))
        rows.sort()
        for t, block_n, warps, splits in rows[:4] + [r for r in rows if r[1:] == (64, 4, 128)]:
            print(f"attention ctx {ctx:>6} bucket {bucket:>6}: block_n {block_n:>3} warps {warps} max_splits "
                  f"{splits:>3}: {t:8.1f} us  {kv_bytes / t / 1e6:5.2f} TB/s")


if __name__ == "__main__":
    tune_attention()
