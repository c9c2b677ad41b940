"""Pick the engine for a loaded model and write, once, the path it describes onto the card."""

from __future__ import annotations

from comparer.engines.base import Engine
from comparer.engines.transformer_fast import fast_transformer_applies
from comparer.kernels.available import mamba_kernels_available, module_available
from comparer.memory import is_cuda
from comparer.models.arch import ArchitectureCard


def fast_mamba_applies(model) -> bool:
    return getattr(model.config, "model_type", "") == "mamba" and not getattr(model.config, "use_bias", False)


def make_engine(model, card: ArchitectureCard, choice: str = "auto", max_context_tokens: int | None = None) -> Engine:
    """The engine ``choice`` asks for (see _make); the card takes the path the engine describes, and the
    time its load spent compiling and capturing."""
    engine = _make(model, card, choice, max_context_tokens)
    card.path = engine.describe()
    card.notes.extend(card.path.load_notes())
    return engine


def _make(model, card: ArchitectureCard, choice: str, max_context_tokens: int | None) -> Engine:
    """'hf': transformers generate. 'fast': comparer's engines (Mamba-1; GPT-NeoX and Llama Transformers).
    'auto': fast where its kernels exist (on CUDA: comparer's Triton kernels for both, mamba-ssm's for
    Mamba only where Triton is missing; for Mamba on the CPU the compiled C scan), else hf. A model the
    fast path cannot run falls back to hf with a card note."""
    from comparer.engines.hf import TransformersEngine

    if choice not in ("auto", "hf", "fast"):
        raise ValueError(f"Unknown engine '{choice}'; use auto, hf or fast.")
    on_cuda = is_cuda(card.device)
    if fast_mamba_applies(model):
        if choice == "fast" or (choice == "auto" and on_cuda and (mamba_kernels_available() or
                                                                   module_available("triton"))):
            return _fast_mamba(model, card, _mamba_ops(on_cuda))
        if choice == "auto" and not on_cuda:
            from comparer.engines.mamba_ops import CScanOps

            try:
                return _fast_mamba(model, card, CScanOps())
            except RuntimeError as err:  # no working C compiler: the card says why
                card.notes.append(f"{err}: transformers' reference scan")
    if choice == "fast" or (choice == "auto" and on_cuda and module_available("triton")):
        applies, why_not = fast_transformer_applies(model)
        if applies:
            return _fast_transformer(model, card, max_context_tokens)
        if choice == "fast":
            card.notes.append(f"fast engine requested but {why_not}: transformers generate")
    return TransformersEngine(model, card)


def default_cache_tokens(config) -> int:
    """The app trims prompts to the model's positions, so a cache of that size (capped at 32K, and
    4,096 where the config does not say) holds every comparison it serves."""
    from comparer.engines.transformer_fast import DEFAULT_MAX_CONTEXT_TOKENS

    return min(getattr(config, "max_position_embeddings", None) or DEFAULT_MAX_CONTEXT_TOKENS, 32768)


def _fast_transformer(model, card: ArchitectureCard, max_context_tokens: int | None) -> Engine:
    from comparer.engines.transformer_fast import TransformerFastEngine

    return TransformerFastEngine(model, card, max_context_tokens or default_cache_tokens(model.config))


def _mamba_ops(on_cuda: bool):
    """On CUDA comparer's Triton kernels (Triton ships with torch; on the H200 their prefill beat mamba-ssm's
    scan + causal-conv1d at every context, 0.52 vs 0.66 s at 32K, with the same decode step:
    assets/benchmarks/records/h200-paper-mamba-{triton,kit}.json), else mamba-ssm's where installed, else PyTorch
    ops; on the CPU the compiled C scan where a compiler works, else the PyTorch blocked scan."""
    from comparer.engines.mamba_ops import KernelOps, TorchOps, TritonOps

    if on_cuda:
        if module_available("triton"):
            return TritonOps()
        return KernelOps() if mamba_kernels_available() else TorchOps()
    from comparer.engines.mamba_ops import CScanOps

    try:
        return CScanOps()
    except RuntimeError:
        return TorchOps()


def _fast_mamba(model, card: ArchitectureCard, ops) -> Engine:
    from comparer.engines.mamba_fast import MambaFastEngine

    return MambaFastEngine(model, card, ops, cuda_graph=is_cuda(card.device))
