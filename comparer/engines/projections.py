"""The Transformer decode step's projections: comparer's tiled GEMV with PDL where it applies,
``F.linear`` (the module's own math) everywhere else.

Why: a batch-1 Pythia-6.9B step ran at 76 % of the bandwidth bound (H200) with cuBLAS GEMVs and
nine kernels a layer, each boundary a drain and a cold start. The tiled GEMV (kernels/gemv.py)
loads its first weight tile while the kernel before it drains and applies the MLP's activation to
the up projection's rows as it stores them (one kernel fewer a layer, two for Llama); Llama's q/k/v and gate/up projections become one
weight each (``fuse_rows``), so the step reads them in one launch instead of five.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from comparer.kernels import gemv
from comparer.kernels.gemv import Tiles
from comparer.kernels.pdl import pdl_on


@dataclass(frozen=True)
class DecodeKernels:
    """Launch settings of the Transformer decode step, one Tiles per projection role (None: cuBLAS
    through F.linear); ``pdl`` as kernels.pdl.pdl_on; ``fuse``: the step reads Llama's q/k/v and
    gate/up as one weight each (the engine fuses them whenever its Triton kernels run, so that no
    engine's graph is captured on weights a later fusion moves). Handed to the engine, so a
    benchmark builds one engine per variant.

    Defaults: the H200 sweep of scripts/ab_transformer_decode.py (h200-transformer-decode-ab-2.txt),
    per role the setting within 0.5 us of the fastest for both Pythia-6.9B and Llama-3-8B; against
    cuBLAS alone (us): qkv 25.7 / 27.3 and 13.5 / 17.6, out 9.2 / 13.4 and 9.0 / 13.3, up (with its
    activation) 32.3 / 35.2 and 55.3 / 63.7, down 32.2 / 39.1 and 28.3 / 31.8. A K that block_k does
    not divide takes the largest halving of it that does (Pythia-160M's 768)."""

    qkv: Tiles | None = Tiles(rows=8, block_k=512, warps=8)
    out: Tiles | None = Tiles(rows=8, block_k=1024, warps=8)
    up: Tiles | None = Tiles(rows=4, block_k=1024)
    down: Tiles | None = Tiles(rows=8, block_k=1024, warps=8)
    pdl: bool | None = None
    fuse: bool = True


CUBLAS = DecodeKernels(qkv=None, out=None, up=None, down=None, pdl=False, fuse=False)  # the step before


def _act_torch(y, act: str | None):
    """The activation in eager PyTorch, as the MLP module applies it to its up projection's output
    (the fallback and the reference); ``silu_gate``: y is [gate | up]."""
    if act == "gelu":
        return F.gelu(y)
    if act == "silu_gate":
        gate, up = y.chunk(2, dim=-1)
        return F.silu(gate) * up
    return y


class Projector:
    """``project(role, x, weight, bias, act)`` = act(F.linear(x, weight, bias)) for one decode token,
    through the tiled GEMV when ``kernels`` gives the role tiles that fit the weight, on CUDA (or
    under Triton's interpreter when ``triton`` is forced on the CPU)."""

    def __init__(self, kernels: DecodeKernels, triton_on: bool):
        self.kernels, self.triton_on = kernels, triton_on
        self.tiled_calls, self.linear_calls = set(), set()  # (role, act) as traced: what the card says

    def pdl(self, t: torch.Tensor) -> bool:
        """Whether the step's own Triton kernels (norms, rotary, attention) launch with PDL too."""
        return self.triton_on and pdl_on(t, self.kernels.pdl)

    def __call__(self, role: str, x, weight, bias=None, act: str | None = None):
        tiles = self.tiles_for(role, weight)
        if tiles is not None:
            self.tiled_calls.add((role, act))
            return gemv.tiled(x, weight, tiles, bias=bias, act=act, pdl=self.kernels.pdl)
        self.linear_calls.add((role, act))
        return _act_torch(F.linear(x, weight, bias), act)

    def describe(self, t: torch.Tensor) -> str:
        """The projections' path for a card, from the calls the decode step made (its capture, or its
        first step when eager); the model's own modules when the step never called this projector."""
        if not self.tiled_calls:
            return "the model's own projections"
        pdl = " with programmatic dependent launch" if self.pdl(t) else ""
        roles = sorted({role for role, _ in self.tiled_calls})
        act = next((a for _, a in self.tiled_calls if a), None)
        some = "" if not self.linear_calls else f" for {', '.join(roles)} (others F.linear)"
        inside = f", {act} inside the up projection" if act else ""
        return f"tiled Triton GEMVs{pdl}{some}{inside}"

    def tiles_for(self, role: str, weight) -> Tiles | None:
        """The role's tiles, block_k halved (to 128 at least) until it divides K; None: F.linear."""
        tiles = getattr(self.kernels, role) if self.triton_on else None
        if tiles is None or tiles.parts != 1:
            return None
        while weight.shape[1] % tiles.block_k and tiles.block_k > 128:
            tiles = replace(tiles, block_k=tiles.block_k // 2)
        return tiles if gemv.takes(weight, tiles) else None


def _end_to_end(tensors) -> bool:
    """Contiguous, same storage, each starting where the one before ends (already fused)."""
    first = tensors[0]
    offset = first.storage_offset()
    for t in tensors:
        if (not t.is_contiguous() or t.untyped_storage().data_ptr() != first.untyped_storage().data_ptr()
                or t.storage_offset() != offset or t.shape[1:] != first.shape[1:]):
            return False
        offset += t.numel()
    return True


@torch.no_grad()
def fuse_rows(linears, name: str = "weight") -> torch.Tensor | None:
    """One tensor of every module's ``name`` parameter stacked by rows (q, k, v -> (q+k+v, hidden));
    the modules' parameters become views of it, so the model holds no second copy and its own
    forward (the prefill) reads the same memory. None when a module has no such parameter. A CUDA
    graph captured on the model before the fusion reads the old weights' memory: fuse first."""
    params = [getattr(m, name) for m in linears]
    if any(p is None for p in params):
        return None
    first = params[0]
    if _end_to_end(params):  # a second engine on the same model: the view over what is there
        rows = sum(p.shape[0] for p in params)
        return first.new_empty(0).set_(first.untyped_storage(), first.storage_offset(), (rows, *first.shape[1:]))
    fused = torch.cat([p.detach() for p in params])
    row = 0
    for m, p in zip(linears, params):
        setattr(m, name, torch.nn.Parameter(fused[row:row + p.shape[0]], requires_grad=False))
        row += p.shape[0]
    return fused
