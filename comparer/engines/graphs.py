"""CUDA-graph capture shared by the fast engines."""

from __future__ import annotations

from typing import Callable

import torch


def capture(step: Callable[[], None], warmups: int = 1, pool=None) -> torch.cuda.CUDAGraph:
    """Run ``step`` ``warmups`` times on a side stream, as PyTorch asks before a capture (lazy
    initialisation, cuBLAS workspaces and Triton compiles happen there, not in the graph), then
    capture one call of it. ``pool``: share another graph's memory pool."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmups):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        step()
    return graph
