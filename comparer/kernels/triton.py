"""The one place that imports Triton: every kernel module takes ``triton`` (or None) from here.

Why: Triton is optional (the CPU path and CI run without a GPU), and a kernel module that guarded
its own import would either duplicate the guard or, as before, borrow it from a sibling kernel file
(a circle between the attention and norm kernels). ``on_device`` lives here for the same reason:
every launcher needs it and none of them owns it.
"""

from __future__ import annotations

import contextlib

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the PyTorch versions beside each kernel run instead
    triton = None
    tl = None


def triton_available() -> bool:
    return triton is not None


def on_device(t: torch.Tensor):
    """Triton launches on the current CUDA device: a layer on another GPU (a model split over GPUs)
    makes its own device current first. A no-op context on the CPU."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()
