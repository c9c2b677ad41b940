"""A model ready to compare: the torch module wrapped in its engine, with its tokenizer and load time.

The one place where models (what a model is) meet engines (how it runs): ``load_model`` builds the
module (comparer.models.loading) and hands it to the engine chooser (comparer.engines.select), which
writes how it runs onto the card once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from comparer import memory
from comparer.engines.base import Engine
from comparer.models.arch import ArchitectureCard
from comparer.models.loading import default_device, default_dtype, load_module
from comparer.models.presets import ModelSpec
from comparer.race import Pace
from comparer.settings import GenerationSettings

ENGINES = ("auto", "hf", "fast")


@dataclass
class LoadedModel:
    """An engine plus what turns text into its token ids (bytes in random-weight mode)."""

    spec: ModelSpec
    engine: Engine
    tokenizer: object | None
    load_s: float
    notes: list[str] = field(default_factory=list)
    pace: Pace | None = None  # its last measured pace alone on this device (orders the fair race)
    # CUDA: what torch allocated while this model loaded (weights, derived tensors, state or preallocated
    # cache, CUDA-graph pools) and kept; None on the CPU and for split models, where the engine's own
    # tensors (Engine.weight_bytes + cache_bytes) are counted instead
    resident_bytes: int | None = None

    def keeping(self, step: Callable[[], object]) -> None:
        """Run ``step`` (a warm-up: lazy init, an engine built on first use) and count what it leaves
        allocated as this model's too."""
        device = self.engine.device
        if self.resident_bytes is None:
            step()
            return
        torch.cuda.synchronize(device)
        before_b = memory.current_bytes(device)
        step()
        torch.cuda.synchronize(device)
        self.resident_bytes += max(memory.current_bytes(device) - before_b, 0)

    def own_bytes(self) -> int:
        """Memory this model holds between generations, and only this model."""
        if self.resident_bytes is not None:
            return self.resident_bytes
        return self.engine.own_tensor_bytes()

    @property
    def card(self) -> ArchitectureCard:
        return self.engine.card


def load_model(spec: ModelSpec, device: str | None = None, dtype: torch.dtype | None = None,
               engine: str = "hf", max_context_tokens: int | None = None,
               max_memory: dict | None = None, defer_engine: bool = False) -> LoadedModel:
    """Load ``spec`` and wrap it in an engine, timing the load (graph capture included).

    ``engine``: 'hf' = transformers generate (the default: the verified reference); 'fast' =
    comparer's engines (Mamba-1, GPT-NeoX, Llama: preallocated state, CUDA graphs on CUDA);
    'auto' = fast where its kernels exist (CUDA with Triton, or mamba-ssm's kernels for Mamba; on the CPU
    the compiled C scan for Mamba), else hf. ``max_context_tokens`` sizes the fast Transformer's KV cache.
    ``max_memory`` (accelerate's per-device caps, e.g. {0: "70GiB", 1: "70GiB"}) splits a model that
    does not fit one GPU; the fast Transformer engine runs split layers eagerly on each GPU, and falls
    back to transformers when layers land on the CPU.
    ``defer_engine``: build the engine on first use in each process (ZeroGPU, see engines/deferred.py).
    """
    from comparer.engines.deferred import DeferredEngine
    from comparer.engines.select import make_engine

    if spec.endpoint is not None:
        return load_served(spec)
    device = device or default_device()
    dtype = dtype or default_dtype(device)
    t0_s = time.perf_counter()
    counted = memory.is_cuda(device) and max_memory is None and not defer_engine  # ZeroGPU: no GPU yet
    before_b = memory.current_bytes(device) if counted else 0
    model, tokenizer, card = load_module(spec, device, dtype, max_memory)
    if defer_engine:
        built = DeferredEngine(model, card, engine, max_context_tokens)
    else:
        built = make_engine(model, card, engine, max_context_tokens)
    resident_b = memory.current_bytes(device) - before_b if counted else None
    return LoadedModel(spec, built, tokenizer, time.perf_counter() - t0_s, resident_bytes=resident_b)


def load_served(spec: ModelSpec) -> LoadedModel:
    """A model on an OpenAI-compatible server: its card from its config (where one is here) and what the
    server says; nothing is loaded into this process."""
    from comparer.engines.remote import TIMED, PieceTable, RemoteEngine, RemoteTokenizer
    from comparer.models.endpoints import probe
    from comparer.models.loading import remote_card
    from comparer.models.presets import ModelLoadError

    t0_s = time.perf_counter()
    try:
        server = probe(spec.endpoint)
    except ConnectionError as err:
        raise ModelLoadError(f"{spec.model_id}: {err}") from err
    card, local = remote_card(spec, spec.endpoint.device, server.model, server.meta, [f"{TIMED}"],
                              spec.endpoint.hardware)
    engine = RemoteEngine(spec.endpoint, server, card, RemoteTokenizer(PieceTable(), local))
    card.path = engine.describe()
    refused = engine.refused(GenerationSettings(do_sample=True, top_k=40, repetition_penalty=1.2, fixed_length=True))
    if refused:
        card.notes.append(f"{server.flavour} does not take: {', '.join(refused)} (not sent; the server's own "
                          "default applies)")
    return LoadedModel(spec, engine, engine.tokenizer, time.perf_counter() - t0_s)
