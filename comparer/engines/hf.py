"""The transformers engine: any causal LM that ``AutoModelForCausalLM`` loads.

It drives transformers' own ``generate`` (the reference path every other engine is checked
against), with a streamer that timestamps each token and a stopping criterion wired to the
shared Stop event, so Stop ends a generation after the token in flight.
"""

from __future__ import annotations

import threading
import time

import torch
from transformers import DynamicCache, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation import utils as generation_utils
from transformers.generation.streamers import BaseStreamer

from comparer.kernels.available import mamba_kernels_available
from comparer.models.arch import HF, HF_REFERENCE_SCAN, SSM, ArchitectureCard, KernelPath
from comparer.engines.base import Engine, GenerationResult, OnToken, TokenEvent
from comparer.engines.sampling import SeededSampler
from comparer.memory import is_cuda, tensor_bytes
from comparer.settings import GenerationSettings


# generate's name for a cache passed in: "cache" from transformers 5.24 on, "past_key_values" before
CACHE_KWARG = "cache" if "cache" in getattr(generation_utils, "ALL_CACHE_NAMES", ()) else "past_key_values"


class TransformersEngine(Engine):
    def __init__(self, model, card: ArchitectureCard):
        self.model = model.eval()
        self.card = card
        self.device = str(model.device)

    def generate(self, prompt_ids: list[int], settings: GenerationSettings,
                 on_token: OnToken | None = None, stop: threading.Event | None = None) -> GenerationResult:
        stop = stop or threading.Event()
        input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.model.device)  # (1, seq)
        cache = _own_cache(self.model.config)  # ours, so each token can report what it holds
        streamer = _TimestampStreamer(on_token, cache)
        t_start_s = time.perf_counter()
        with torch.inference_mode():
            self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer,
                                **({CACHE_KWARG: cache} if cache is not None else {}),
                                stopping_criteria=StoppingCriteriaList([_StopOnEvent(stop)]),
                                **_generate_kwargs(settings, self.model))
        ids, times = streamer.token_ids, streamer.times_s
        # transformers' max_time ends generate silently: short of the length, past the limit, not stopped
        time_limited = (settings.max_time_s is not None and not stop.is_set() and len(ids) < settings.max_new_tokens
                        and bool(times) and times[-1] - t_start_s >= settings.max_time_s)
        return GenerationResult(ids, t_start_s, times, stopped_early=stop.is_set(), time_limited=time_limited)

    def release(self) -> None:
        if is_cuda(self.device):
            torch.cuda.empty_cache()

    def describe(self) -> KernelPath:
        """transformers binds mamba-ssm / causal-conv1d when it finds them and silently falls back to a
        per-token Python scan otherwise (ten times slower): the path says which."""
        devices = len(set(getattr(self.model, "hf_device_map", {}).values())) or 1
        if self.card.family == SSM:
            if is_cuda(self.device) and mamba_kernels_available():
                return KernelPath(HF, "mamba-ssm + causal-conv1d CUDA kernels, via transformers",
                                  "selective scan kernel", "selective state update, eager", devices=devices)
            return KernelPath(HF_REFERENCE_SCAN, "reference PyTorch, no fused kernels",
                              "sequential scan", "sequential step, eager", devices=devices)
        attn = getattr(self.model.config, "_attn_implementation", None) or "default"
        return KernelPath(HF, "PyTorch", f"{attn} attention", f"{attn} attention, growing KV cache, eager",
                          devices=devices)


def _generate_kwargs(settings: GenerationSettings, model) -> dict:
    """Map our settings onto ``generate``. Sampling runs in our own seeded processor (see below)."""
    eos = model.generation_config.eos_token_id
    kwargs = dict(max_new_tokens=settings.max_new_tokens, do_sample=False,
                  repetition_penalty=settings.repetition_penalty,
                  pad_token_id=eos if isinstance(eos, int) else 0)
    if settings.fixed_length:
        kwargs["min_new_tokens"] = settings.max_new_tokens
    if settings.max_time_s is not None:
        kwargs["max_time"] = settings.max_time_s
    if settings.do_sample:
        sampler = SeededSampler(settings.temperature, settings.top_k, settings.top_p, settings.seed, model.device)
        kwargs["logits_processor"] = LogitsProcessorList([sampler])
    return kwargs


class _TimestampStreamer(BaseStreamer):
    """Receives each new token from ``generate``; the first ``put`` is the prompt and is skipped.
    Each token reports the bytes ``cache`` (the generation's KV cache or SSM state) holds by then."""

    def __init__(self, on_token: OnToken | None, cache: DynamicCache | None = None):
        self.on_token, self.cache = on_token, cache
        self.token_ids: list[int] = []
        self.times_s: list[float] = []
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token_id in value.reshape(-1).tolist():  # .tolist() waits for the device
            t_s = time.perf_counter()
            self.token_ids.append(token_id)
            self.times_s.append(t_s)
            if self.on_token is not None:
                self.on_token(TokenEvent(token_id, t_s, cache_tensor_bytes(self.cache)))

    def end(self) -> None:
        pass


def _own_cache(config) -> DynamicCache | None:
    """A cache made for ``config``; None where this transformers cannot make one outside ``generate``
    (then ``generate`` makes its own and the pane's memory label says the cache was computed)."""
    try:
        return DynamicCache(config=config)
    except (TypeError, ValueError):
        return None


def cache_tensor_bytes(cache: DynamicCache | None) -> int | None:
    """Bytes of every tensor a transformers cache holds (keys and values, or conv and SSM states)."""
    if cache is None:
        return None
    return tensor_bytes([t for layer in cache.layers for t in vars(layer).values() if isinstance(t, torch.Tensor)])


class _StopOnEvent(StoppingCriteria):
    def __init__(self, stop: threading.Event):
        self.stop = stop

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.stop.is_set(), dtype=torch.bool, device=input_ids.device)
