"""Which code path a model's forward actually runs, so every figure can say how it was made.

transformers binds mamba-ssm / causal-conv1d when it is imported and silently falls back to a
per-token Python scan when they are missing: a 10x difference that must be visible on screen.
Optional heavy packages are probed here, never imported at module import time.
"""

from __future__ import annotations

import importlib.util

from comparer.models.arch import SSM

MAMBA_KERNELS = "mamba-ssm + causal-conv1d CUDA kernels (via transformers)"
MAMBA_REFERENCE = "reference PyTorch (sequential scan, no fused kernels)"
TRANSFORMER_EAGER = "transformers generate, {attn} attention, eager decode"


def module_available(name: str) -> bool:
    """True when ``name`` can be imported, without importing it (no CUDA init)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def mamba_kernels_available() -> bool:
    return module_available("mamba_ssm") and module_available("causal_conv1d")


def kernel_path_for(family: str, device_type: str, attn_implementation: str | None) -> str:
    """Human-readable path name for the card and every benchmark record."""
    if family == SSM:
        if device_type == "cuda" and mamba_kernels_available():
            return MAMBA_KERNELS
        return MAMBA_REFERENCE
    return TRANSFORMER_EAGER.format(attn=attn_implementation or "default")
