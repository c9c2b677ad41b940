"""Pick the engine for a loaded model and make its card name the path that actually runs."""

from __future__ import annotations

import torch

from comparer.arch import ArchitectureCard
from comparer.engines.base import Engine
from comparer.kernels import mamba_kernels_available


def fast_mamba_applies(model) -> bool:
    return getattr(model.config, "model_type", "") == "mamba" and not getattr(model.config, "use_bias", False)


def make_engine(model, card: ArchitectureCard, choice: str = "auto") -> Engine:
    from comparer.engines.hf import TransformersEngine

    if choice not in ("auto", "hf", "fast"):
        raise ValueError(f"Unknown engine '{choice}'; use auto, hf or fast.")
    on_cuda = torch.device(card.device).type == "cuda"
    wants_fast = choice == "fast" or (choice == "auto" and on_cuda and mamba_kernels_available())
    if wants_fast and fast_mamba_applies(model):
        return _fast_mamba(model, card, on_cuda)
    if choice == "fast":
        card.notes.append("fast engine requested but it applies only to Mamba-1 models: transformers generate")
    return TransformersEngine(model, card)


def _fast_mamba(model, card: ArchitectureCard, on_cuda: bool) -> Engine:
    from comparer.engines.mamba_fast import MambaFastEngine
    from comparer.engines.mamba_ops import KernelOps, TorchOps

    ops = KernelOps() if on_cuda and mamba_kernels_available() else _cpu_ops() if not on_cuda else TorchOps()
    engine = MambaFastEngine(model, card, ops, cuda_graph=on_cuda)
    decode = "CUDA-graph decode" if engine.graph is not None else "eager decode"
    norm = ", fused add+RMSNorm" if ops.fused_norm else ""
    card.kernel_path = (f"comparer fast Mamba: {ops.name}{norm}, chunked prefill ({engine.chunk_tokens} tokens), "
                        f"{decode}")
    if engine.graph is not None:
        card.notes.append(f"decode graph captured at load in {engine.capture_s:.2f} s")
    if getattr(ops, "compile_s", None) is not None:
        card.notes.append(f"{ops.compiled_what} compiled or loaded from cache at load in {ops.compile_s:.1f} s")
    return engine


def _cpu_ops():
    """The compiled C++ scan where a compiler is available, else the PyTorch blocked scan."""
    from comparer.engines.cpu_scan import CppScanOps
    from comparer.engines.mamba_ops import TorchOps

    try:
        return CppScanOps()
    except RuntimeError:
        return TorchOps()
