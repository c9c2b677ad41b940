"""Engines: load a model, stream token ids with timestamps, describe themselves. No text, no UI."""

from comparer.engines.base import Engine, GenerationResult, TokenEvent

__all__ = ["Engine", "GenerationResult", "TokenEvent"]
