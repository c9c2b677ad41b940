"""The token loop shared by engines that expose ``prefill(ids) -> logits`` and
``decode_step(token) -> logits`` (the fast Mamba and fast Transformer engines), and ``StepEngine``,
their base class.

``StepEngine`` lives here rather than in base.py because its one ``generate`` is this loop: base.py
would otherwise import stepping.py, which imports base.py (a circle).

The chooser applies the repetition penalty, the min-length EOS mask and seeded sampling in the
order transformers' ``generate`` does, so greedy output matches the reference path token for token.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod

import torch

from comparer.engines.base import Engine, GenerationResult, OnToken, TokenEvent
from comparer.engines.sampling import TokenChooser
from comparer.memory import is_cuda
from comparer.settings import GenerationSettings


class StepEngine(Engine):
    """An engine that computes one prefill, then one decode step per token; ``generate`` is the
    shared loop below, so both fast engines stream, stop and sample the same way."""

    @abstractmethod
    def prefill(self, prompt_ids: list[int], new_tokens: int = 0) -> torch.Tensor:
        """Run the prompt (room for ``new_tokens`` after it); the last position's logits (1, vocab)."""

    @abstractmethod
    def decode_step(self, token: torch.Tensor) -> torch.Tensor:
        """Feed one chosen token (on the device); the next logits (1, vocab)."""

    @torch.inference_mode()
    def generate(self, prompt_ids: list[int], settings: GenerationSettings,
                 on_token: OnToken | None = None, stop: threading.Event | None = None) -> GenerationResult:
        return run_steps(self, prompt_ids, settings, on_token, stop)


def run_steps(engine: StepEngine, prompt_ids: list[int], settings: GenerationSettings,
              on_token: OnToken | None = None, stop: threading.Event | None = None) -> GenerationResult:
    """Prefill, then one decode step per token until the length, EOS, Stop or the time limit.

    With ``_TokenReader.overlap`` on CUDA the next step is queued before the host reads the token
    just chosen (it travels through pinned memory behind an event), so the GPU decodes step t+1
    while Python reports token t. The tokens are the same; after an EOS or a Stop one extra step
    has run on the GPU and is discarded (every generation starts with a prefill)."""
    stop = stop or threading.Event()
    chooser = TokenChooser(settings, engine.eos_token_ids(), engine.device, prompt_ids)
    t_start_s = time.perf_counter()
    deadline_s = t_start_s + settings.max_time_s if settings.max_time_s else None
    logits = engine.prefill(prompt_ids, settings.max_new_tokens)
    reader = _TokenReader(engine.device)
    held_b = engine.cache_bytes()  # preallocated: the same after every token
    ids, times, time_limited = [], [], False
    while True:
        token = chooser.choose(logits, len(ids))  # (1,) on device
        last = len(ids) + 1 >= settings.max_new_tokens
        reader.start(token)
        if reader.overlaps and not last:
            logits = engine.decode_step(token)  # queued behind the token's copy to the host
        token_id = reader.wait()
        times.append(time.perf_counter())
        ids.append(token_id)
        if on_token is not None:
            on_token(TokenEvent(token_id, times[-1], held_b))
        if last or stop.is_set() or chooser.is_final(token_id, len(ids)):
            break
        if deadline_s is not None and times[-1] > deadline_s:
            time_limited = True
            break
        if not reader.overlaps:
            logits = engine.decode_step(token)
    return GenerationResult(ids, t_start_s, times, stopped_early=stop.is_set(), time_limited=time_limited)


class _TokenReader:
    """Brings a chosen token to the host: with ``overlap`` on CUDA asynchronously (pinned buffer +
    event), so the caller can queue the next step first; otherwise with ``item()``."""

    overlap = True  # class-wide switch; scripts/ab_token_loop.py measures both settings

    def __init__(self, device):
        self.overlaps = is_cuda(device) and self.overlap
        if self.overlaps:
            self.host = torch.empty(1, dtype=torch.long, pin_memory=True)
            self.ready = torch.cuda.Event()

    def start(self, token: torch.Tensor) -> None:
        self.token = token
        if self.overlaps:
            self.host.copy_(token.reshape(1), non_blocking=True)
            self.ready.record()

    def wait(self) -> int:
        if not self.overlaps:
            return int(self.token.item())
        self.ready.synchronize()
        return int(self.host[0])
