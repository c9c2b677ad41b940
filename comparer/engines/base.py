"""The one narrow interface every model kind sits behind.

An engine takes prompt token ids and decoding settings and calls ``on_token`` once per new token
with a ``time.perf_counter`` timestamp taken when the token exists on the host. It checks
``stop`` between tokens. It knows nothing of tokenizers, text boxes or charts (gpt-fast's
callback-style ``generate``), so the same engine feeds the live panes and the benchmark.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

from comparer.models.arch import ArchitectureCard, KernelPath
from comparer.memory import module_bytes
from comparer.settings import GenerationSettings


@dataclass(frozen=True)
class TokenEvent:
    token_id: int
    t_s: float  # time.perf_counter() when the token id reached the host
    cache_bytes: int | None = None  # bytes the engine's KV cache or SSM state holds after this token


@dataclass
class GenerationResult:
    """What one generation produced and when: enough to derive TTFT and decode rate."""

    token_ids: list[int]
    t_start_s: float
    token_times_s: list[float]
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)
    time_limited: bool = False  # cut by settings.max_time_s before its length or EOS

    @property
    def ttft_s(self) -> float | None:
        return self.token_times_s[0] - self.t_start_s if self.token_times_s else None


OnToken = Callable[[TokenEvent], None]


class Engine(ABC):
    """Load once, generate many times. ``card`` says what runs and on which path."""

    card: ArchitectureCard
    device: str
    model = None  # the torch module it computes with, where it has one

    @abstractmethod
    def generate(self, prompt_ids: list[int], settings: GenerationSettings,
                 on_token: OnToken | None = None, stop: threading.Event | None = None) -> GenerationResult:
        """Generate after ``prompt_ids``; call ``on_token`` per token; return early once ``stop`` is set."""

    @abstractmethod
    def describe(self) -> KernelPath:
        """How this engine computes, from its own state: engines.select writes it onto the card once,
        so no other module reads an engine's internals to say what runs."""

    def vocab_size(self) -> int:
        """Token ids this model accepts (benchmarks draw random prompts below it)."""
        return int(self.model.config.vocab_size)

    def eos_token_ids(self) -> int | list[int] | None:
        return self.model.generation_config.eos_token_id

    def weight_bytes(self) -> int | None:
        """Bytes of the weights this engine computes with, as allocated (dtype included)."""
        return None if self.model is None else module_bytes(self.model)

    def cache_bytes(self) -> int | None:
        """Bytes its preallocated KV cache or recurrent state holds; None where the engine keeps no
        such tensors of its own (they come with each token, ``TokenEvent.cache_bytes``)."""
        return None

    def own_tensor_bytes(self) -> int:
        """Its weights plus its own cache or state, as allocated (0 for what it does not report)."""
        return (self.weight_bytes() or 0) + (self.cache_bytes() or 0)

    def release(self) -> None:
        """Free cached device memory after a failed or cancelled generation (no-op by default)."""
