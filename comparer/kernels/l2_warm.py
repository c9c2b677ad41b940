"""Warm the next projection's weight into L2 while the step's small kernels run (Hopper).

Why: a batch-1 decode step reads its weights once, so its pace is how busy DRAM is kept. In a Mamba
layer only in_proj and out_proj read many bytes; between them run the norm, the conv + x_proj and the
state update, a few microseconds each in which DRAM is nearly idle, and each GEMV starts cold. Here a
kernel that runs before a projection asks L2 to fetch a share of that projection's weight
(``cp.async.bulk.prefetch.L2``: no registers, no shared memory, nothing waits on it), so DRAM streams
that weight during the small kernels and the GEMV then reads part of it from L2. The bytes read from
DRAM per token do not change; the bound does not move; only the idle time does. A prefetch has no
result: the kernels compute the same bits with it on or off.

Measured on the H200 (h200-mamba-l2-warm.txt): Mamba-130M's latency-bound step gained about 4 %,
Mamba-2.8B lost with every setting, the more it warmed, so mamba_decode warms only small weights
(``DecodeSettings.warm_max_bytes``) and only on Hopper. Why 2.8B lost was not profiled. One known cost: each program
issues ``LANES`` prefetches a round, and the lanes past its share repeat its last chunk (8-warp kernels
issue each one twice), so a program with a small share issues many more instructions than chunks
(Mamba-2.8B's out_proj warming a tenth of in_proj: 128 per chunk). Issuing each chunk once is the
next thing to measure.

Rule: ``warm`` only reads addresses inside the tensor it is given, on the device the kernel runs on (a
model split over GPUs has its next layer elsewhere: nothing is warmed there); ``warm_args`` passes a
byte count <= the tensor's size and a 16-byte aligned start.
"""

from __future__ import annotations

import functools
import os

import torch

from comparer.kernels.triton import tl, triton

CHUNK_BYTES = 4096  # default bytes per prefetch instruction (a multiple of 16, as the instruction requires)

if triton is not None:
    LANES = tl.constexpr(128)  # prefetches per program per round: one per thread of a 4-warp program

    @triton.jit
    def share(nbytes, CHUNK: tl.constexpr):
        """This program's chunks [first, last) of the ceil(nbytes / CHUNK) chunks, split evenly over every
        program of a 1-D or 2-D grid (flattened with axis 1 fastest)."""
        programs = tl.num_programs(0) * tl.num_programs(1)
        pid = tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)
        chunks = tl.cdiv(nbytes, CHUNK)
        per_program = tl.cdiv(chunks, programs)
        first = pid * per_program
        return first, tl.minimum(first + per_program, chunks)

    @triton.jit
    def warm(ptr, nbytes, WARM: tl.constexpr, CHUNK: tl.constexpr):
        """This program's share of [ptr, ptr + nbytes) requested into L2, LANES chunks of CHUNK bytes per
        round. ``WARM`` False: nothing."""
        if WARM:
            first, last = share(nbytes, CHUNK)
            base = ptr.to(tl.pointer_type(tl.int8))
            lane = tl.arange(0, LANES)
            for c0 in range(first, last, LANES):
                c = tl.minimum(c0 + lane, last - 1).to(tl.int64)  # past the share: repeat its last chunk
                tl.inline_asm_elementwise(f"cp.async.bulk.prefetch.L2.global [$1], {CHUNK}; mov.u32 $0, 0;",
                                          "=r,l", [base + c * CHUNK], dtype=tl.int32, is_pure=False, pack=1)
else:
    share = warm = None


@functools.lru_cache(maxsize=None)
def _capable(device_index: int) -> bool:
    return torch.cuda.get_device_capability(device_index)[0] == 9


def supported(t: torch.Tensor) -> bool:
    """Compiled kernels on Hopper (sm_90), where it was measured; never under the interpreter. Blackwell has
    the instruction too (it builds for sm_120, tests/test_l2_warm.py), but nobody has timed it there, and a
    prefetch that slows a step (as on Mamba-2.8B) would be a silent loss."""
    return (triton is not None and t.is_cuda and os.environ.get("TRITON_INTERPRET") != "1"
            and _capable(t.device.index or 0))


def warm_bytes(size_b: int, fraction: float, chunk_b: int) -> int:
    """The bytes from the start of a ``size_b``-byte tensor that ``fraction`` of it warms: whole chunks,
    never past its end (a fraction over 1 is the whole tensor, less its last partial chunk)."""
    if not 0 <= fraction:
        raise ValueError(f"a warmed fraction of {fraction}: give one from 0 (off) to 1 (the whole weight)")
    if chunk_b <= 0 or chunk_b % 16:
        raise ValueError(f"a prefetch chunk of {chunk_b} bytes: the instruction takes a positive multiple of 16")
    return min(size_b, int(size_b * fraction)) // chunk_b * chunk_b


def warm_args(target: torch.Tensor | None, fraction: float, on: torch.Tensor, chunk_b: int = CHUNK_BYTES) -> dict:
    """The kernel arguments that warm the first ``fraction`` of ``target`` (whole chunks of ``chunk_b``
    bytes, inside the tensor) for a kernel launched on ``on``'s device; off (WARM False) where there is
    nothing to warm or no support."""
    nbytes = 0
    if (target is not None and target.device == on.device and supported(on) and target.is_contiguous()
            and target.data_ptr() % 16 == 0):
        nbytes = warm_bytes(target.nbytes, fraction, chunk_b)
    return {"warm_ptr": target if nbytes else on, "warm_bytes": nbytes, "WARM": nbytes > 0, "CHUNK": chunk_b}
