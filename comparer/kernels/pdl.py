"""Programmatic dependent launch (PDL, Hopper and later), shared by every decode kernel.

Why: a batch-1 decode step is a chain of short kernels, and at each boundary the next kernel
normally starts only after the one before has drained: a launch plus a cold DRAM round trip, a few
microseconds each. With PDL a kernel is launched while the one before it drains, loads what does not
depend on it (weights), then waits (``griddepcontrol.wait``) before reading that kernel's output.
On the H200 it took Mamba-2.8B's graph replays from 451.8 to 512.1 tok/s (h200-pdl-ab.txt).

Rule for every kernel that takes ``PDL``: nothing it reads that an earlier kernel writes, and
nothing it writes, before ``after_previous``. Kernels without PDL in the same stream stay correct
(the wait then waits for them to finish).
"""

from __future__ import annotations

import functools
import os

import torch

from comparer.kernels.triton import tl, triton

gdc_wait = gdc_launch_dependents = None  # Triton's PDL intrinsics, where it has them

if triton is not None:

    try:
        from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
    except ImportError:  # older Triton: PDL stays off (see pdl_on)
        gdc_launch_dependents = gdc_wait = None

    @triton.jit
    def after_previous(PDL: tl.constexpr):
        """Wait until the previous kernel has finished and its writes are visible, then let the next
        kernel launch (so at most one kernel runs ahead, and only through its weight loads)."""
        if PDL:
            gdc_wait()
            gdc_launch_dependents()


@functools.lru_cache(maxsize=None)
def _pdl_supported(device_index: int) -> bool:
    """Hopper or later, and a Triton that has both the wait intrinsic and the launch option."""
    try:
        from triton.backends.nvidia.compiler import CUDAOptions

        has_option = "launch_pdl" in CUDAOptions.__dataclass_fields__
    except (ImportError, AttributeError):
        has_option = False
    return (has_option and gdc_wait is not None and os.environ.get("TRITON_INTERPRET") != "1"
            and torch.cuda.get_device_capability(device_index)[0] >= 9)


def pdl_on(t: torch.Tensor, wanted: bool | None = None) -> bool:
    """Whether kernels on ``t``'s device use PDL: ``wanted`` None = where the GPU and Triton support
    it, False = off."""
    return wanted is not False and t.is_cuda and _pdl_supported(t.device.index or 0)


def launch_args(t: torch.Tensor, wanted: bool | None = None) -> dict:
    """The kernel arguments that switch PDL on or off for a launch on ``t``'s device."""
    return {"PDL": True, "launch_pdl": True} if pdl_on(t, wanted) else {"PDL": False}
