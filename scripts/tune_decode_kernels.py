"""Sweep launch settings of the decode kernels on the GPU and print time and effective bandwidth.

Attention: Pythia-6.9B shapes (32 heads x 128) at the benchmark's contexts and their buckets.
GEMV: the projections of Mamba-2.8B and Pythia-6.9B, cuBLAS (F.linear) against the Triton GEMV.
Bandwidth = bytes the kernel must read / time; the copy bandwidth of the card is the ceiling.

    python scripts/tune_decode_kernels.py > tune.txt
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
import triton.testing

from comparer.engines.decode_attention import decode_attention
from comparer.engines.gemv import gemv

HEADS, DIM = 32, 128
CONTEXTS = {512: 1024, 8192: 16384, 32768: 32896}  # context -> bucket the engine would pick
GEMV_SHAPES = {"mamba in_proj": (10240, 2560), "mamba out_proj": (2560, 5120), "mamba x_proj": (192, 5120),
               "mamba dt_proj": (5120, 160), "pythia qkv": (12288, 4096), "pythia dense": (4096, 4096),
               "pythia h_to_4h": (16384, 4096), "pythia 4h_to_h": (4096, 16384), "pythia head": (50432, 4096)}


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
                  f"{splits:>3}: {t:8.1f} us  {kv_bytes / t / 1e6:7.0f} GB/s")


def tune_gemv() -> None:
    for name, (n, k) in GEMV_SHAPES.items():
        w = torch.randn(n, k, dtype=torch.float16, device="cuda")
        x = torch.randn(1, k, dtype=torch.float16, device="cuda")
        gb = n * k * 2 / 1e9
        t_cublas = us(lambda: F.linear(x, w))
        best = min((us(lambda: gemv(x, w, None, bn, bk, nw)), bn, bk, nw)
                   for bn, bk, nw in itertools.product((4, 8, 16), (256, 512), (4, 8)))
        print(f"gemv {name:15s} {n:>6}x{k:<6}: cuBLAS {t_cublas:7.1f} us {gb / t_cublas * 1e6:6.0f} GB/s | "
              f"triton {best[0]:7.1f} us {gb / best[0] * 1e6:6.0f} GB/s (block_n {best[1]}, block_k {best[2]}, "
              f"warps {best[3]})")


if __name__ == "__main__":
    tune_gemv()
    tune_attention()
