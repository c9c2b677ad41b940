"""ZeroGPU: on a Hugging Face Space with the ``spaces`` package, the GPU work of one comparison runs in
one ``@spaces.GPU`` generator that covers both models. Elsewhere nothing changes.

ZeroGPU runs the decorated function in a worker and pickles its arguments and yielded values, so the
function takes plain values (prompt, settings dict, preset name, flags) and yields plain tuples; the
loaded models are reached through the process-wide pool set by ``install`` (a pool of models cannot
be pickled, and the worker inherits it).
"""

from __future__ import annotations

import importlib.util
from typing import Callable, Iterator

from comparer.pair import PairRun, swap_sides
from comparer.settings import GenerationSettings

_POOL = None  # set once by install(); see the module docstring for why this is module state
DEFAULT_DURATION_S = 120


def spaces_available() -> bool:
    return importlib.util.find_spec("spaces") is not None


def wanted() -> bool:
    """On a Space (SPACE_ID set) with ``spaces`` installed, or forced with COMPARER_ZEROGPU=1."""
    import os

    forced = os.environ.get("COMPARER_ZEROGPU") == "1"
    return spaces_available() and (forced or bool(os.environ.get("SPACE_ID")))


def install(pool, duration_s: int = DEFAULT_DURATION_S) -> Callable | None:
    """Return the @spaces.GPU-wrapped stream when wanted (see ``wanted``), else None."""
    global _POOL
    if not wanted():
        return None
    import spaces

    _POOL = pool
    return spaces.GPU(duration=duration_s)(stream_outputs)


def stream_outputs(prompt: str, settings: dict, preset: str, swap: bool, blind: bool,
                   race: str = "auto") -> Iterator[tuple]:
    """Both models of ``preset`` on one prompt, in race mode ``race``; yields (left text, right text,
    left stats, right stats, JSON)."""
    from comparer.ui.handlers import pane_outputs

    models = _POOL.pair(preset)
    if swap:
        models = swap_sides(models)
    yield from local_stream(PairRun(models, prompt, GenerationSettings(**settings), mode=race), blind, pane_outputs)


def local_stream(run: PairRun, blind: bool, to_outputs) -> Iterator[tuple]:
    """Iterate a run, closing it (stop + join) however the consumer leaves."""
    panes_iter = iter(run)
    try:
        for panes in panes_iter:
            yield to_outputs(panes, blind)
    finally:
        panes_iter.close()
