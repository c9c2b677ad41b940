"""Keeps the models of one preset loaded, so a comparison does not reload them.

One pair at a time: switching presets frees the previous pair first (a 7B and a 3B model do not
share a GPU with another such pair). Loading is serialised by a lock.
"""

from __future__ import annotations

import gc
import threading

import torch

from comparer.loading import LoadedModel, ModelSpec, load_model
from comparer.pair import SIDES
from comparer.presets import Preset, get_preset


class ModelPool:
    def __init__(self, device: str | None = None, random_weights: bool = False, dtype: str | None = None,
                 engine: str = "auto"):
        self.device, self.random_weights = device, random_weights
        self.dtype = getattr(torch, dtype) if dtype else None
        self.engine = engine
        self._lock = threading.Lock()
        self._loaded: tuple[str, dict[str, LoadedModel]] | None = None

    def pair(self, preset_name: str, preset: Preset | None = None) -> dict[str, LoadedModel]:
        """The two loaded models of ``preset_name`` (or of ``preset``, a custom pair), keyed 'left'/'right'."""
        key = preset_name if preset is None else f"{preset_name}:{preset.left.model_id}|{preset.right.model_id}"
        with self._lock:
            if self._loaded and self._loaded[0] == key:
                return self._loaded[1]
            self._unload()
            specs = preset_specs(preset or get_preset(preset_name), self.random_weights)
            models = {side: load_model(spec, self.device, self.dtype, self.engine) for side, spec in zip(SIDES, specs)}
            self._loaded = (key, models)
            return models

    def _unload(self) -> None:
        self._loaded = None
        free_device_memory()


def preset_specs(preset: Preset, random_weights: bool = False) -> tuple[ModelSpec, ModelSpec]:
    """Where each model of a preset comes from: the shipped folders, random weights, or the Hub."""
    if random_weights and not preset.offline:  # the shipped pair is always its trained self
        return preset.left.with_random_weights(), preset.right.with_random_weights()
    return preset.left, preset.right


def free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
