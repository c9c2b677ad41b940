"""Keeps the models of one preset loaded, so a comparison does not reload them.

One pair at a time: switching presets frees the previous pair first (a 7B and a 3B model do not
share a GPU with another such pair). Loading is serialised by a lock. With two GPUs or more each
model gets its own (the race then runs both at once, each alone on its GPU). Each model is warmed
up once at load, so the first comparison is not charged for lazy initialisation, and its measured
pace orders the first fair race.
"""

from __future__ import annotations

import gc
import threading

import torch

from comparer import lanes, memory
from comparer.models.availability import why_not_loadable
from comparer.engines.loaded import LoadedModel, load_model
from comparer.models.presets import ModelLoadError, ModelSpec
from comparer.models.presets import SIDES
from comparer.models.presets import Preset, get_preset
from comparer.race import pace_of
from comparer.settings import GenerationSettings


class ModelPool:
    def __init__(self, device: str | None = None, random_weights: bool = False, dtype: str | None = None,
                 engine: str = "auto", init_std: float | None = None, defer_engines: bool = False):
        """``defer_engines``: build each engine in the process that generates (ZeroGPU's GPU task), see
        ``ready`` and engines/deferred.py."""
        self.device, self.random_weights, self.init_std = device, random_weights, init_std
        self.defer_engines = defer_engines
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
            why = self.why_not(preset or get_preset(preset_name))
            if why:  # refused at once, and the pair others are using stays loaded
                raise ModelLoadError(f"The pair '{preset_name}' cannot load here: {why}. "
                                     "Pick a pair that runs offline, such as 'offline'.")
            specs = preset_specs(preset or get_preset(preset_name), self.random_weights, self.init_std)
            self._unload()
            devices = side_devices(self.device, torch.cuda.device_count() if torch.cuda.is_available() else 0)
            models = {side: load_model(spec, devices[side], self.dtype, self.engine, defer_engine=self.defer_engines)
                      for side, spec in zip(SIDES, specs)}
            if not self.defer_engines:
                for model in models.values():
                    warm_up(model)
            self._loaded = (key, models)
            return models

    def why_not(self, preset: Preset) -> str | None:
        """None when the preset's pair can load and run here; else why, in milliseconds (a pair too
        large for a CPU, a model neither on disk nor reachable)."""
        if preset.needs == "gpu" and not self.has_gpu():
            return "it needs a GPU (billions of parameters; this server computes on its CPU)"
        problems = [why for why in map(why_not_loadable, preset_specs(preset, self.random_weights, self.init_std))
                    if why]
        return "; ".join(problems) or None

    def has_gpu(self) -> bool:
        """Whether the models compute on a GPU (ZeroGPU: one is attached inside each GPU task)."""
        if self.defer_engines:
            return True
        if self.device is not None:
            return memory.is_cuda(self.device)
        return torch.cuda.is_available()

    @property
    def loaded_preset(self) -> str | None:
        return self._loaded[0] if self._loaded else None

    def ready(self, models: dict[str, LoadedModel]) -> None:
        """Build and warm up, in this process, every deferred engine not built here yet (inside ZeroGPU's
        GPU task, before the race starts; a no-op for engines built at load)."""
        from comparer.engines.deferred import DeferredEngine

        with self._lock:
            for model in models.values():
                if isinstance(model.engine, DeferredEngine) and not model.engine.is_built():
                    model.engine.built()
                    warm_up(model)

    def _unload(self) -> None:
        self._loaded = None
        free_device_memory()


def side_devices(device: str | None, gpu_count: int) -> dict[str, str | None]:
    """One model per GPU when there are two or more and no single device was named ("cuda" or the
    default); otherwise both models on the one device (on the CPU, or ``--device cuda:0``)."""
    if gpu_count >= 2 and device in (None, "cuda"):
        return {"left": "cuda:0", "right": "cuda:1"}
    return {side: device for side in SIDES}


WARMUP_PROMPT_TOKENS, WARMUP_NEW_TOKENS = 16, 4
WARMUP_TEXT = "Once upon a time, in a small house by the sea, there lived"


def warm_up(model: LoadedModel) -> None:
    """A short generation at load on every lane that may run the model (``comparer.lanes``): lazy
    initialisation (allocator, first kernels, per-thread CUDA handles) is paid here, not by the
    first visitor's figures; its pace is the first hint for the race order."""
    model.keeping(lambda: lanes.run_on_every_lane(_warm_once, model))


def _warm_once(model: LoadedModel) -> None:
    if memory.is_cuda(model.card.device):
        torch.cuda.set_device(torch.device(model.card.device))
    ids = list(range(1, WARMUP_PROMPT_TOKENS + 1))  # ids below 17 exist in every vocabulary
    if memory.is_served(model.card.device):
        ids = model.tokenizer(WARMUP_TEXT)["input_ids"]  # a served model may have no tokenizer here
    result = model.engine.generate(ids, GenerationSettings(max_new_tokens=WARMUP_NEW_TOKENS, fixed_length=True))
    model.pace = pace_of(result.t_start_s, result.token_times_s)


def preset_specs(preset: Preset, random_weights: bool = False,
                 init_std: float | None = None) -> tuple[ModelSpec, ModelSpec]:
    """Where each model of a preset comes from: the shipped folders, random weights, or the Hub."""
    if random_weights and not preset.offline:  # the shipped pair is always its trained self
        return preset.left.with_random_weights(init_std), preset.right.with_random_weights(init_std)
    return preset.left, preset.right


def free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
