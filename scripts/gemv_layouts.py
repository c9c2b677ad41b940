"""Batch-1 projection time by weight layout, measured the way the decode step runs them: many calls
replayed from one CUDA graph (no launch gaps), cycling through enough weight copies that L2 cannot
hold them (the H200's L2 is 50 MB). Shapes: Mamba-2.8B's four projections, Pythia-6.9B's dense.

    python scripts/gemv_layouts.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SHAPES = {"mamba in_proj": (10240, 2560), "mamba out_proj": (2560, 5120), "mamba x_proj": (192, 5120),
          "mamba dt_proj": (5120, 160), "pythia dense": (4096, 4096)}
CALLS = 64


def per_call_us(fn_list) -> float:
    """Capture CALLS calls (cycling over the list) in one graph; replay 20 times; microseconds per call."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for fn in fn_list:
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(CALLS):
            fn_list[i % len(fn_list)]()
    graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1e3 / (20 * CALLS)


def main() -> None:
    for name, (n, k) in SHAPES.items():
        copies = max(2, int(400e6 // (n * k * 2)))
        weights = [torch.randn(n, k, dtype=torch.float16, device="cuda") for _ in range(copies)]
        weights_t = [w.t().contiguous() for w in weights]  # (k, n)
        x = torch.randn(1, k, dtype=torch.float16, device="cuda")
        variants = {
            "F.linear(x, W) W row-major (N,K)": [lambda w=w: F.linear(x, w) for w in weights],
            "x @ Wt, Wt row-major (K,N)": [lambda w=w: torch.mm(x, w) for w in weights_t],
            "F.linear(x, Wt.t()) (view)": [lambda w=w: F.linear(x, w.t()) for w in weights_t],
            "torch.mv(W, x)": [lambda w=w: torch.mv(w, x[0]) for w in weights],
        }
        gb = n * k * 2 / 1e9
        for label, fns in variants.items():
            us = per_call_us(fns)
            print(f"{name:15s} {n:>6}x{k:<6} {label:34s} {us:7.2f} us {gb / us * 1e6:6.0f} GB/s")


if __name__ == "__main__":
    main()
