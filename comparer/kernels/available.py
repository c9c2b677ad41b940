"""Which optional kernel packages this machine has, probed without importing them.

transformers binds mamba-ssm / causal-conv1d when it is imported and silently falls back to a
per-token Python scan when they are missing, so the engines ask here before they choose (and say
which path runs, engines/*.describe). Probing never imports a heavy package (no CUDA init).
"""

from __future__ import annotations

import importlib.util


def module_available(name: str) -> bool:
    """True when ``name`` can be imported, without importing it (no CUDA init)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def mamba_kernels_available() -> bool:
    return module_available("mamba_ssm") and module_available("causal_conv1d")
