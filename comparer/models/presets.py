"""Named model pairs, read from the one data file assets/presets.json.

The presets are also the allowlist of model ids a public deployment may load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from comparer.paths import ASSETS_DIR, PRESETS_FILE

if TYPE_CHECKING:
    from comparer.models.endpoints import Endpoint

SIDES = ("left", "right")  # a preset's two models, in pane order

DEFAULT_PRESET = "offline"


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from. ``local_dir`` wins over ``model_id``; ``random_weights`` builds
    the architecture of ``config_name`` (a file in assets/configs) with random weights."""

    model_id: str
    local_dir: str | None = None
    revision: str | None = None
    config_name: str | None = None
    random_weights: bool = False
    init_std: float | None = None  # std of the random weights; None: the config's initializer_range
    data: str | None = field(default=None, compare=False)  # what it was trained on, for the card's line
    endpoint: "Endpoint | None" = None  # served elsewhere (models/endpoints.py); local_dir then gives its
    # config and tokenizer only

    def with_random_weights(self, init_std: float | None = None) -> "ModelSpec":
        """``init_std`` 0.02 keeps a random fp16 Mamba finite (the configs' 0.1 overflows); speed does
        not depend on the values."""
        if self.endpoint is not None:
            return self  # a served model is what the server serves
        if not self.config_name:
            raise ModelLoadError(f"{self.model_id} has no bundled config in assets/configs, so it "
                                 f"cannot be built with random weights; add one or load it trained.")
        return ModelSpec(self.model_id, None, None, self.config_name, True, init_std, self.data)


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    description: str
    left: ModelSpec
    right: ModelSpec
    offline: bool = False
    # which bundled prompts suit the pair: "story" continuations for base models, "instruction" only for
    # pairs tuned to follow them (a 6.7M storybook model asked for code writes word salad)
    prompt_kinds: tuple[str, ...] = ("story",)
    defaults: dict = field(default_factory=dict)  # decoding settings the pair reads well with
    needs: str | None = None  # "gpu": too large for a CPU, refused at once there


_RUNTIME: dict[str, Preset] = {}  # pairs the operator named at launch (app.py --left-endpoint ...)


def load_presets(path: Path = PRESETS_FILE) -> dict[str, Preset]:
    raw = json.loads(Path(path).read_text())
    return {**{name: _preset(name, entry) for name, entry in raw.items()}, **_RUNTIME}


def register_preset(preset: Preset) -> None:
    """Offer a pair built at launch (served models) beside the file's, under ``preset.name``."""
    _RUNTIME[preset.name] = preset


def served_preset(name: str, sides: dict[str, tuple[str, str | None]], api_key_envs: dict[str, str | None],
                  label: str | None = None, hardware: dict[str, str | None] | None = None) -> Preset:
    """A pair of served models: per side (endpoint text 'URL#served-name', local folder for its config and
    tokenizer or None)."""
    from comparer.models.endpoints import Endpoint

    specs = {}
    for side, (endpoint_text, local_dir) in sides.items():
        endpoint = Endpoint.parse(endpoint_text, api_key_envs.get(side), (hardware or {}).get(side))
        specs[side] = ModelSpec(endpoint.model or endpoint.base_url, local_dir=local_dir, endpoint=endpoint)
    return Preset(name, label or f"Served: {specs['left'].model_id} vs {specs['right'].model_id}",
                  "Two models on OpenAI-compatible servers; both at once where they run on different hardware, "
                  "else in turn; timed at this server as chunks arrive (network included).", specs["left"], specs["right"],
                  prompt_kinds=("story", "instruction"), defaults={"repetition_penalty": 1.2})


def get_preset(name: str) -> Preset:
    presets = load_presets()
    if name not in presets:
        raise KeyError(f"Unknown preset '{name}'. Choose one of: {', '.join(presets)}.")
    return presets[name]


def allowed_model_ids() -> set[str]:
    return {spec.model_id for p in load_presets().values() for spec in (p.left, p.right)}


def _preset(name: str, entry: dict) -> Preset:
    offline = entry["left"].get("offline", False)
    return Preset(name, entry["label"], entry["description"], _spec(entry["left"]), _spec(entry["right"]), offline,
                  tuple(entry.get("prompts", ["story"])), dict(entry.get("defaults", {})), entry.get("needs"))


def _spec(entry: dict) -> ModelSpec:
    """``local_dir`` in the file is relative to assets/ (the shipped demo pair); ``endpoint``:
    {"base_url", "model", "api_key_env"} for a served model."""
    local_dir = str(ASSETS_DIR / entry["local_dir"]) if entry.get("local_dir") else None
    endpoint = None
    if entry.get("endpoint"):
        from comparer.models.endpoints import Endpoint

        served = entry["endpoint"]
        endpoint = Endpoint.parse(served["base_url"] + (f"#{served['model']}" if served.get("model") else ""),
                                  served.get("api_key_env"))
    return ModelSpec(model_id=entry["model_id"], local_dir=local_dir, revision=entry.get("revision"),
                     config_name=entry.get("config_name"), data=entry.get("data"), endpoint=endpoint)


CUSTOM = "custom"
# blind mode may draw the pair at random from the offered presets that can load here, at each Compare
RANDOM = "random"
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$"


def custom_preset(left_id: str, right_id: str) -> Preset:
    """A pair typed in by a visitor: only offered when the operator enables free model entry."""
    import re

    for model_id in (left_id, right_id):
        if not isinstance(model_id, str) or not re.match(MODEL_ID_PATTERN, model_id.strip()):
            raise KeyError(f"{model_id!r} is not a Hub model id like 'owner/name'.")
    left, right = (ModelSpec(model_id=m.strip()) for m in (left_id, right_id))
    return Preset(CUSTOM, f"Custom: {left.model_id} vs {right.model_id}",
                  "A pair entered by hand (free model entry is enabled on this deployment).", left, right)
