"""ZeroGPU: on a Hugging Face Space with the ``spaces`` package, the GPU work of one comparison runs in
one ``@spaces.GPU`` generator that covers both models. Elsewhere nothing changes.

ZeroGPU runs the decorated function in a worker and pickles its arguments and yielded values, so the
function takes plain values (prompt, settings dict, preset name, flags) and yields the pane states
(plain dataclasses, pickled at each yield; ui/panes.py formats them in the app's process); the
loaded models are reached through the process-wide pool set by ``install`` (a pool of models cannot
be pickled, and the worker inherits it).
"""

from __future__ import annotations

import importlib.util
from typing import Callable, Iterator

from comparer.pair import PairRun, swap_sides
from comparer.settings import GenerationSettings
from comparer.ui.panes import closing

_POOL = None  # set once by install(); see the module docstring for why this is module state
# What one GPU task may ask for (seconds). ZeroGPU's default is 60 s; shorter requests are queued sooner and
# draw less of a visitor's daily quota, so each task asks for what its prompt and max new tokens need.
MIN_DURATION_S, MAX_DURATION_S = 20, 150
# Deliberately slow rates for the Space's GPU (an RTX Pro 6000 Blackwell; no figure of ours was measured on
# one): the H200 runs the paper pair at ~7,000+ prompt tok/s and 218-500 new tok/s per model.
SETUP_S = 15.0  # both engines built and warmed up in the task (Triton kernels come from the disk cache)
PREFILL_TOK_PER_S = 2000.0
DECODE_TOK_PER_S = 25.0
QUEUE_SIZE = 8  # visitors waiting beyond this are told the queue is full (each task holds the GPU ~20-150 s)


def spaces_available() -> bool:
    return importlib.util.find_spec("spaces") is not None


def wanted() -> bool:
    """On a Space (SPACE_ID set) with ``spaces`` installed, or forced with COMPARER_ZEROGPU=1."""
    import os

    forced = os.environ.get("COMPARER_ZEROGPU") == "1"
    return spaces_available() and (forced or bool(os.environ.get("SPACE_ID")))


def duration_s(prompt: str, settings: dict, preset: str = "", swap: bool = False, blind: bool = False,
               race: str = "auto") -> int:
    """The GPU time to request for one comparison (ZeroGPU calls this with the task's own arguments): both
    models in turn over the prompt (at most one token per character) and max new tokens, plus setup."""
    new_tokens = int(settings.get("max_new_tokens", 128))
    per_model_s = len(prompt) / PREFILL_TOK_PER_S + new_tokens / DECODE_TOK_PER_S
    return int(min(MAX_DURATION_S, max(MIN_DURATION_S, SETUP_S + 2 * per_model_s)))


def install(pool) -> Callable | None:
    """Return the @spaces.GPU-wrapped stream when wanted (see ``wanted``), else None."""
    global _POOL
    if not wanted():
        return None
    import spaces

    _POOL = pool
    return spaces.GPU(duration=duration_s)(stream_outputs)


def stream_outputs(prompt: str, settings: dict, preset: str, swap: bool, blind: bool,
                   race: str = "auto") -> Iterator[dict]:
    """Both models of ``preset`` on one prompt, in race mode ``race``; yields the panes by side
    (``blind`` is applied where they are shown)."""
    models = _POOL.pair(preset)
    _POOL.ready(models)  # engines are built here, inside the GPU task (engines/deferred.py)
    if swap:
        models = swap_sides(models)
    yield from closing(PairRun(models, prompt, GenerationSettings(**settings), mode=race))
