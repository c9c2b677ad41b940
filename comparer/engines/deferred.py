"""An engine built on first use in each process, for hosts where the process that loads the weights
may not run GPU work (ZeroGPU).

Why: on ZeroGPU the weights are loaded to "cuda" in the main process, where no GPU is attached (the
``spaces`` package records the placement and moves them when a task starts); only code inside an
``@spaces.GPU`` task, run in a worker, may launch kernels. comparer's fast engines launch kernels
when they are built (Triton compiles, the decode graph capture, the preallocated state), so here the
model is loaded as usual and the engine is built by the first generation in the worker, then kept for
that process. The card says so; the build is never inside a measured generation (``ModelPool.ready``
builds and warms up before the race starts).
"""

from __future__ import annotations

import os
import threading

from comparer.models.arch import ArchitectureCard, KernelPath
from comparer.engines.base import Engine, GenerationResult, OnToken
from comparer.memory import module_bytes
from comparer.settings import GenerationSettings

NOTE = "engine built and warmed up inside the GPU task (ZeroGPU: no GPU work outside it), before any measurement"


class DeferredEngine(Engine):
    def __init__(self, model, card: ArchitectureCard, choice: str, max_context_tokens: int | None):
        self.model, self.card, self.device = model, card, card.device
        self._choice, self._max_context_tokens = choice, max_context_tokens
        self._base_notes = [*card.notes, NOTE]
        self._built: Engine | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        card.notes[:] = self._base_notes
        card.path = self.describe()

    def built(self) -> Engine:
        """The real engine for this process, built now if this process has none (make_engine fills the card)."""
        from comparer.engines.select import make_engine

        with self._lock:
            if self._built is None or self._pid != os.getpid():
                self.card.notes[:] = self._base_notes
                self._built = make_engine(self.model, self.card, self._choice, self._max_context_tokens)
                self._pid = os.getpid()
            return self._built

    def describe(self) -> KernelPath:
        """The built engine's path in this process; before that, a path that says it is not built yet."""
        if self.is_built():
            return self._built.describe()
        pending = f"built in the GPU task with engine '{self._choice}'"
        return KernelPath("", pending, "in the GPU task", "in the GPU task")

    def is_built(self) -> bool:
        return self._built is not None and self._pid == os.getpid()

    def generate(self, prompt_ids: list[int], settings: GenerationSettings, on_token: OnToken | None = None,
                 stop: threading.Event | None = None) -> GenerationResult:
        return self.built().generate(prompt_ids, settings, on_token, stop)

    def weight_bytes(self) -> int | None:
        return self._built.weight_bytes() if self.is_built() else module_bytes(self.model)

    def cache_bytes(self) -> int | None:
        return self._built.cache_bytes() if self.is_built() else None

    def release(self) -> None:
        if self.is_built():
            self._built.release()
