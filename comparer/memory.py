"""Memory readings for live stats and benchmarks.

CUDA: bytes the caching allocator has handed out (allocated) and holds (reserved), with a peak
that can be reset per measurement point. CPU: the process's resident set size, which is shared by
everything in the process and is labelled so.
"""

from __future__ import annotations

import os

import psutil
import torch


def process_rss_bytes() -> int:
    return psutil.Process(os.getpid()).memory_info().rss


def is_cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def reset_peak(device: str | torch.device) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: str | torch.device) -> dict:
    """Peak since the last reset: allocated and reserved on CUDA, current RSS on the CPU."""
    if is_cuda(device):
        torch.cuda.synchronize(device)
        return {"kind": "cuda_peak", "allocated_bytes": torch.cuda.max_memory_allocated(device),
                "reserved_bytes": torch.cuda.max_memory_reserved(device)}
    return {"kind": "cpu_rss", "rss_bytes": process_rss_bytes()}


def current_bytes(device: str | torch.device) -> int:
    """Now: CUDA bytes allocated on that device, or the process RSS on the CPU."""
    if is_cuda(device):
        return torch.cuda.memory_allocated(device)
    return process_rss_bytes()
