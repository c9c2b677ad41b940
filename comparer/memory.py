"""Memory readings for live stats and benchmarks.

CUDA: bytes the caching allocator has handed out (allocated) and holds (reserved), with a peak
that can be reset per measurement point. CPU: the process's resident set size (its peak sampled
between reset and read), which is shared by everything in the process and is labelled so.
"""

from __future__ import annotations

import os
import threading

import psutil
import torch


def tensor_bytes(tensors) -> int:
    """Bytes held by ``tensors``, each storage counted once (tied weights and views share one)."""
    seen: dict[tuple[str, int], int] = {}
    for tensor in tensors:
        if tensor is None or tensor.device.type == "meta":
            continue
        storage = tensor.untyped_storage()
        seen[(str(tensor.device), storage.data_ptr())] = storage.nbytes()
    return sum(seen.values())


def module_bytes(module) -> int:
    """A model's weights as they sit in memory: its parameters and buffers, dtype included."""
    return tensor_bytes([*module.parameters(), *module.buffers()])


def process_rss_bytes() -> int:
    return psutil.Process(os.getpid()).memory_info().rss


SERVED_PREFIX = "remote:"  # a served model's device (models/endpoints.Endpoint.device): the server


def is_served(device: str | torch.device) -> bool:
    """A model on a server elsewhere (engines/remote.py): no memory, counter or clock of its device here."""
    return isinstance(device, str) and device.startswith(SERVED_PREFIX)


def is_cuda(device: str | torch.device) -> bool:
    return not is_served(device) and torch.device(device).type == "cuda"


class _RssSampler:
    """The OS keeps only a lifetime maximum RSS, which cannot be reset per point, so the CPU peak
    is sampled every ``interval_s`` by a background thread between reset and read."""

    def __init__(self, interval_s: float = 0.005):
        self.interval_s, self.peak_b = interval_s, 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.stop()
        self._stop.clear()
        self.peak_b = process_rss_bytes()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_b = max(self.peak_b, process_rss_bytes())

    def stop(self) -> int:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        return max(self.peak_b, process_rss_bytes())


_RSS = _RssSampler()


def reset_peak(device: str | torch.device) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        _RSS.start()


def peak_bytes(device: str | torch.device) -> dict:
    """Peak since the last reset: allocated and reserved on CUDA, sampled RSS on the CPU."""
    if is_cuda(device):
        torch.cuda.synchronize(device)
        return {"kind": "cuda_peak", "allocated_bytes": torch.cuda.max_memory_allocated(device),
                "reserved_bytes": torch.cuda.max_memory_reserved(device)}
    return {"kind": "cpu_rss_peak", "rss_bytes": _RSS.stop()}


def workspace_bytes(device: str | torch.device) -> int:
    """CUDA bytes allocated at the peak since the last reset above what is allocated now: the
    transient workspace of what ran in between (its prefill), not what stays (weights, caches)."""
    return max(torch.cuda.max_memory_allocated(device) - torch.cuda.memory_allocated(device), 0)


def current_bytes(device: str | torch.device) -> int:
    """Now: CUDA bytes allocated on that device, or the process RSS on the CPU."""
    if is_cuda(device):
        return torch.cuda.memory_allocated(device)
    return process_rss_bytes()
