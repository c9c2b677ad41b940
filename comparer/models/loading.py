"""Build the torch module, its tokenizer and its card: ``from_pretrained`` from the Hub or a local folder,
or a model with random weights built from a bundled config (speed and memory do not depend on weight
values). No engine here: comparer.engines.loaded wraps what this returns.

On CUDA the weights go to the one GPU when they fit it, else through accelerate's ``device_map="auto"``
(see device_map_for), in fp16; on the CPU, fp32. ``trust_remote_code`` is always off: a config that
needs remote code is refused with a message.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from comparer.memory import is_cuda
from comparer.models.arch import ArchitectureCard, build_card, param_counts
from comparer.models.presets import ModelLoadError, ModelSpec
from comparer.models.tokenizers import ByteTokenizer
from comparer.paths import CONFIGS_DIR


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> torch.dtype:
    """fp16 on CUDA (the dtype of the published GPU figures), fp32 on the CPU (no fast fp16 there)."""
    return torch.float16 if is_cuda(device) else torch.float32


def load_module(spec: ModelSpec, device: str, dtype: torch.dtype,
                max_memory: dict | None = None) -> tuple[object, object, ArchitectureCard]:
    """The module (eval mode, on ``device`` or split by ``max_memory``), its tokenizer (bytes for random
    weights) and its card (what the config says; the engine adds how it runs)."""
    if spec.random_weights:
        model, tokenizer = _random_model(spec, device, dtype, max_memory), ByteTokenizer()
    else:
        model, tokenizer = _pretrained_model(spec, device, dtype, max_memory), _tokenizer(spec)
    return model, tokenizer, _card_for(spec, model, dtype)


def bundled_config_path(config_name: str) -> Path:
    path = CONFIGS_DIR / f"{config_name}.json"
    if not path.exists():
        known = sorted(p.stem for p in CONFIGS_DIR.glob("*.json"))
        raise ModelLoadError(f"No bundled config '{config_name}'. Known: {', '.join(known)}.")
    return path


def load_bundled_config(config_name: str):
    from transformers import AutoConfig

    raw = json.loads(bundled_config_path(config_name).read_text())
    raw = {k: v for k, v in raw.items() if not k.startswith("_")}
    model_type = raw.pop("model_type")
    return AutoConfig.for_model(model_type, **raw)


def _random_model(spec: ModelSpec, device: str, dtype: torch.dtype, max_memory: dict | None = None):
    """Build on the target device directly: a 7B model initialised on the CPU in fp32 takes minutes.
    On CUDA a model that does not fit the first GPU (or any model given ``max_memory``) is spread
    over the GPUs as accelerate's device_map="auto" spreads a checkpoint (see _random_split_model)."""
    from transformers import AutoModelForCausalLM

    config = load_bundled_config(spec.config_name)
    if spec.init_std is not None:
        config.initializer_range = spec.init_std
    if device_map_for(device, config, dtype, max_memory) == "auto":
        return _random_split_model(config, dtype, max_memory)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


ONE_GPU_FRACTION = 0.9  # of the GPU's memory for weights; the rest for the cache and activations


def device_map_for(device: str, config, dtype: torch.dtype, max_memory: dict | None) -> str | None:
    """None on the CPU; on CUDA the one GPU when the weights fit it (a model spread over GPUs loses
    the CUDA-graph decode, and transformers' "auto" would spread even a small model over every
    visible GPU); "auto" (accelerate's plan) when they do not, or when ``max_memory`` asks for a split."""
    if not is_cuda(device):
        return None
    gpu_bytes = torch.cuda.get_device_properties(torch.device(device)).total_memory
    return choose_device_map(device, weight_bytes(config, dtype), gpu_bytes, max_memory)


def choose_device_map(device: str, model_bytes: int, gpu_bytes: int, max_memory: dict | None) -> str:
    if max_memory or model_bytes > ONE_GPU_FRACTION * gpu_bytes:
        return "auto"
    return device


def weight_bytes(config, dtype: torch.dtype) -> int:
    """The weights' size at ``dtype``, from an empty (meta) model of the config."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        empty = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return sum(p.numel() for p in empty.parameters()) * torch.finfo(dtype).bits // 8


def _random_split_model(config, dtype: torch.dtype, max_memory: dict | None):
    """Random weights laid out the way from_pretrained(device_map="auto") lays out a checkpoint:
    accelerate plans whole decoder layers per GPU (balanced over the visible GPUs, or within
    ``max_memory``), each tensor is created on its device (no 140 GB host copy), then
    ``dispatch_model`` adds the hooks that move activations between devices."""
    from accelerate import dispatch_model, infer_auto_device_map, init_empty_weights
    from accelerate.utils import get_balanced_memory, set_module_tensor_to_device
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    no_split = list(model._no_split_modules or [])
    budget = get_balanced_memory(model, max_memory=max_memory, no_split_module_classes=no_split, dtype=dtype)
    device_map = infer_auto_device_map(model, max_memory=budget, no_split_module_classes=no_split, dtype=dtype)
    std = getattr(config, "initializer_range", 0.02)
    for name, param in list(model.named_parameters()):
        target = _placed(name, device_map)
        value = torch.empty(param.shape, dtype=dtype, device=target)
        if param.dim() == 1:  # norm weights and biases
            value.fill_(1.0 if name.endswith("weight") else 0.0)
        else:
            value.normal_(0.0, std)
        set_module_tensor_to_device(model, name, target, value=value)
    model.tie_weights()  # a tied LM head shares the embedding made above (accelerate keeps them on one device)
    model = dispatch_model(model, device_map=device_map)
    model.hf_device_map = device_map
    return model.eval()


def _placed(name: str, device_map: dict):
    """The device accelerate's map gives a parameter: its longest matching module prefix."""
    for prefix in sorted(device_map, key=len, reverse=True):
        if prefix == "" or name == prefix or name.startswith(prefix + "."):
            where = device_map[prefix]
            return torch.device("cuda", where) if isinstance(where, int) else torch.device(where)
    raise ModelLoadError(f"accelerate placed no module holding {name}")


def _source(spec: ModelSpec) -> str:
    return spec.local_dir or spec.model_id


def _pretrained_model(spec: ModelSpec, device: str, dtype: torch.dtype, max_memory: dict | None = None):
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        device_map = None
        if is_cuda(device):
            config = AutoConfig.from_pretrained(_source(spec), revision=spec.revision, trust_remote_code=False)
            device_map = device_map_for(device, config, dtype, max_memory)
        return AutoModelForCausalLM.from_pretrained(
            _source(spec), revision=spec.revision, dtype=dtype, trust_remote_code=False, use_safetensors=True,
            device_map=device_map, max_memory=max_memory if device_map == "auto" else None)
    except (OSError, ValueError) as err:
        raise ModelLoadError(_load_hint(spec, err)) from err


def _tokenizer(spec: ModelSpec):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(_source(spec), revision=spec.revision, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise ModelLoadError(_load_hint(spec, err)) from err


def _load_hint(spec: ModelSpec, err: Exception) -> str:
    where = f"folder {spec.local_dir}" if spec.local_dir else f"'{spec.model_id}' from the Hugging Face Hub"
    return (f"Could not load {where}: {err}. If this machine is offline, use the 'offline' preset, or "
            f"download the model first (huggingface-cli download {spec.model_id}) and point "
            f"HF_HOME at that cache. Only safetensors weights are loaded, and models that need "
            f"trust_remote_code are not supported.")


def _card_for(spec: ModelSpec, model, dtype: torch.dtype) -> ArchitectureCard:
    """What the model is; how it runs (``card.path``) is the engine's to say (engines.select)."""
    device_map = getattr(model, "hf_device_map", None)
    counts = param_counts(model)
    card = build_card(spec.model_id, model.config, counts.total, str(dtype), str(model.device),
                      json.dumps(device_map) if device_map else str(model.device), spec.random_weights,
                      notes=training_notes(spec) + init_notes(spec, model.config), counts=counts)
    card.data = spec.data
    facts = _training_facts(spec)
    card.test_perplexity = facts["test_ppl"] if facts and not spec.random_weights else None
    return card


def _training_facts(spec: ModelSpec) -> dict | None:
    if not spec.local_dir or not (path := Path(spec.local_dir) / "training.json").exists():
        return None
    return json.loads(path.read_text())


def init_notes(spec: ModelSpec, config) -> list[str]:
    """How random weights were drawn (a random fp16 Mamba at its config's 0.1 overflows to inf)."""
    if not spec.random_weights:
        return []
    return [f"random weights: normal with std {config.initializer_range}"
            + (" (set for this run)" if spec.init_std is not None else " (the config's)")]


def training_notes(spec: ModelSpec) -> list[str]:
    """What a model trained by comparer is (size, data, held-out perplexity), from the training.json
    that scripts/train_demo_pair.py writes beside its weights."""
    facts = _training_facts(spec)
    if facts is None:
        return []
    return [f"trained by comparer: {facts['parameters'] / 1e6:.2f}M parameters, {facts['tokens_seen'] / 1e6:.0f}M "
            f"tokens of eleven public-domain books (assets/demo/SOURCES.md) in {facts['train_s']:.0f} s on "
            f"{facts['device']}; held-out test perplexity {facts['test_ppl']:.1f} (per token, shared tokenizer)"]


def remote_card(spec: ModelSpec, device: str, server_model: str, server_meta: dict,
                notes: list[str], hardware: str = "") -> tuple[ArchitectureCard, object | None]:
    """A served model's card and local tokenizer: the architecture from its config where one is here (its
    folder or the bundled config), counted on the meta device (no weights); else what the server says."""
    config = _remote_config(spec)
    tokenizer = _tokenizer(spec) if spec.local_dir else None
    if config is None:
        card = ArchitectureCard(spec.model_id, "unknown (no config here)", str(server_meta.get("model_type", "?")),
                                [], int(server_meta.get("n_params") or 0), 0, 0, "the server's", device,
                                f"server hardware: {hardware}", 0, 0, "trained", notes=notes)
    else:
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config)
        counts = param_counts(skeleton)
        card = build_card(spec.model_id, config, counts.total, "float16", device, f"server hardware: {hardware}",
                          False, notes=training_notes(spec) + notes, counts=counts)
        card.dtype = "the server's"  # state/cache sizes above are at fp16
        facts = _training_facts(spec)
        card.test_perplexity = facts["test_ppl"] if facts else None
    card.data = spec.data
    card.notes.insert(0, f"served as {server_model!r}; architecture "
                         + ("from its config" if config is not None else "unknown: no config here"))
    return card, tokenizer


def _remote_config(spec: ModelSpec):
    from transformers import AutoConfig

    if spec.local_dir:
        return AutoConfig.from_pretrained(spec.local_dir, trust_remote_code=False)
    if spec.config_name:
        return load_bundled_config(spec.config_name)
    return None
