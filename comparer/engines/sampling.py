"""Choosing the next token, the same way on every engine.

``SeededSampler``: temperature / top-k / top-p with a private generator, as a transformers logits
processor (the reference engine) and inside ``TokenChooser`` (the engines that step themselves).
``TokenChooser`` applies the repetition penalty, the min-length EOS mask and the sampler in the order
transformers' ``generate`` does, so greedy output matches the reference path token for token.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from comparer.settings import GenerationSettings


class SeededSampler(LogitsProcessor):
    """Temperature / top-k / top-p sampling with the engine's own ``torch.Generator``.

    Why not ``do_sample=True``: that draws from torch's global RNG, which two engines generating
    at once in two threads would share, so a seed would not reproduce a pane. This processor
    samples with a private generator and leaves a single finite logit, which greedy then picks;
    it runs after transformers' own processors (repetition penalty, min-length EOS mask).
    """

    def __init__(self, temperature: float, top_k: int, top_p: float, seed: int, device):
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        logits = scores.float() / self.temperature  # (batch, vocab)
        if self.top_k > 0:
            kth = torch.topk(logits, min(self.top_k, logits.shape[-1]), dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            logits = _top_p_mask(logits, self.top_p)
        choice = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=self.generator)  # (batch, 1)
        return torch.full_like(scores, float("-inf")).scatter_(1, choice, 0.0)


def _top_p_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability reaches ``top_p`` (always the top one)."""
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, dim=-1)
    drop_sorted = probs.cumsum(dim=-1) - probs >= top_p  # mass before this token already reaches top_p
    drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


class TokenChooser:
    """Greedy or seeded sampling after the repetition penalty and the min-length EOS mask, in the
    order transformers applies them, so greedy output matches ``generate``."""

    def __init__(self, settings: GenerationSettings, eos_token_id, device, prompt_ids: list[int]):
        self.settings = settings
        self.eos = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
        self.min_new = settings.max_new_tokens if settings.fixed_length else 0
        self.seen: list[int] = list(prompt_ids)  # transformers penalises prompt tokens too
        self.sampler = (SeededSampler(settings.temperature, settings.top_k, settings.top_p, settings.seed, device)
                        if settings.do_sample else None)
        # made once: indexing with a Python list copied it to the device at every token
        self.eos_index = torch.tensor(self.eos, dtype=torch.long, device=device)

    def choose(self, logits: torch.Tensor, n_generated: int) -> torch.Tensor:
        scores = logits  # copied before any change: the engines reuse their logits buffer
        if self.settings.repetition_penalty != 1.0 and self.seen:
            scores = scores.clone()
            idx = torch.tensor(self.seen, device=scores.device).unsqueeze(0)
            picked = scores.gather(1, idx)
            p = self.settings.repetition_penalty
            scores.scatter_(1, idx, torch.where(picked < 0, picked * p, picked / p))
        if n_generated < self.min_new and self.eos:
            scores = scores.index_fill(1, self.eos_index, float("-inf"))
        if self.sampler is not None:
            scores = self.sampler(None, scores)
        token = scores.argmax(dim=-1)
        return token

    def is_final(self, token_id: int, n_generated: int) -> bool:
        self.seen.append(token_id)
        return token_id in self.eos and n_generated >= self.min_new
