"""Decoding settings shared by both panes of a comparison.

One frozen dataclass, validated on construction, so that the UI, the API and the benchmark all
reject the same bad input with the same message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

MAX_NEW_TOKENS_LIMIT = 4096


class SettingsError(ValueError):
    """A decoding setting is out of range; the message says which and what to use instead."""


@dataclass(frozen=True)
class GenerationSettings:
    """How both models decode. ``fixed_length`` forces min = max new tokens (speed comparisons)."""

    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int = 0
    fixed_length: bool = False
    max_time_s: float | None = None

    def __post_init__(self) -> None:
        _check_range("max_new_tokens", self.max_new_tokens, 1, MAX_NEW_TOKENS_LIMIT, integer=True)
        _check_range("temperature", self.temperature, 1e-3, 10.0)
        _check_range("top_p", self.top_p, 1e-3, 1.0)
        _check_range("top_k", self.top_k, 0, 100_000, integer=True)
        _check_range("repetition_penalty", self.repetition_penalty, 0.5, 5.0)
        _check_range("seed", self.seed, 0, 2**63 - 1, integer=True)
        if self.max_time_s is not None:
            _check_range("max_time_s", self.max_time_s, 0.01, 3600.0)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_range(name: str, value, low, high, integer: bool = False) -> None:
    """Raise SettingsError unless ``low <= value <= high`` (and a whole number when asked)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{name} must be a number, got {type(value).__name__}: {value!r}.")
    if integer and int(value) != value:
        raise SettingsError(f"{name} must be a whole number, got {value!r}.")
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value!r}.")
