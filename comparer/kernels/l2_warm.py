"""Warm the next projection's weight into L2 while the step's small kernels run (Hopper and later).

Why: a batch-1 decode step reads its weights once, so its pace is how busy DRAM is kept. In a Mamba
layer only in_proj and out_proj read many bytes; between them run the norm, the conv + x_proj and the
state update, a few microseconds each in which DRAM is nearly idle, and each GEMV starts cold. Here a
kernel that runs before a projection asks L2 to fetch a share of that projection's weight
(``cp.async.bulk.prefetch.L2``: one instruction per chunk, no registers, no shared memory, nothing
waits on it), so DRAM streams that weight during the small kernels and the GEMV then reads part of it
from L2. The bytes read from DRAM per token do not change; the bound does not move; only the idle
time does. A prefetch has no result: the kernels compute the same bits with it on or off.

Measured on the H200 (h200-mamba-l2-warm.txt), this pays only where the step is latency-bound: Mamba-130M
gained about 4 %, while Mamba-2.8B lost with every setting, the more it warmed (its GEMVs already keep DRAM
busy, and the extra traffic slows the small kernels' serial loads). mamba_decode therefore warms only small
weights (``DecodeSettings.warm_max_bytes``).

Rule: ``warm`` only reads addresses inside the tensor it is given, on the device the kernel runs on (a
model split over GPUs has its next layer elsewhere: nothing is warmed there); ``warm_args`` passes a
byte count <= the tensor's size and a 16-byte aligned start.
"""

from __future__ import annotations

import os

import torch

from comparer.kernels.triton import tl, triton

CHUNK_BYTES = 4096  # bytes per prefetch instruction (a multiple of 16, as the instruction requires)

if triton is not None:

    @triton.jit
    def warm(ptr, nbytes, WARM: tl.constexpr, LANES: tl.constexpr, CHUNK: tl.constexpr):
        """This program's share of [ptr, ptr + nbytes) (shares split over every program of the grid, in
        launch order) requested into L2, LANES chunks of CHUNK bytes per round. ``WARM`` False: nothing."""
        if WARM:
            programs = tl.num_programs(0) * tl.num_programs(1)
            pid = tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)
            chunks = tl.cdiv(nbytes, CHUNK)
            share = tl.cdiv(chunks, programs)
            first = pid * share
            last = tl.minimum(first + share, chunks)
            base = ptr.to(tl.pointer_type(tl.int8))
            lane = tl.arange(0, LANES)
            for c0 in range(first, last, LANES):
                c = tl.minimum(c0 + lane, last - 1).to(tl.int64)  # past the share: repeat its last chunk
                tl.inline_asm_elementwise(f"cp.async.bulk.prefetch.L2.global [$1], {CHUNK}; mov.u32 $0, 0;",
                                          "=r,l", [base + c * CHUNK], dtype=tl.int32, is_pure=False, pack=1)


def supported(t: torch.Tensor) -> bool:
    """Compiled kernels on Hopper or later (the instruction is sm_90's); never under the interpreter."""
    return (triton is not None and t.is_cuda and os.environ.get("TRITON_INTERPRET") != "1"
            and torch.cuda.get_device_capability(t.device)[0] >= 9)


def warm_bytes(size_b: int, fraction: float, chunk_b: int) -> int:
    """The bytes from the start of a ``size_b``-byte tensor that ``fraction`` of it warms: whole chunks,
    never past its end (a fraction over 1 is the whole tensor, less its last partial chunk)."""
    if not 0 <= fraction:
        raise ValueError(f"a warmed fraction of {fraction}: give one from 0 (off) to 1 (the whole weight)")
    return min(size_b, int(size_b * fraction)) // chunk_b * chunk_b


def warm_args(target: torch.Tensor | None, fraction: float, on: torch.Tensor) -> dict:
    """The kernel arguments that warm the first ``fraction`` of ``target`` (whole chunks, inside the tensor)
    for a kernel launched on ``on``'s device; off (WARM False) where there is nothing to warm or no support."""
    nbytes = 0
    if (target is not None and target.device == on.device and supported(on) and target.is_contiguous()
            and target.data_ptr() % 16 == 0):
        nbytes = warm_bytes(target.numel() * target.element_size(), fraction, CHUNK_BYTES)
    return {"warm_ptr": target if nbytes else on, "warm_bytes": nbytes, "WARM": nbytes > 0, "CHUNK": CHUNK_BYTES}
