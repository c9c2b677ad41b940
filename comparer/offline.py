"""The embedded default pair: works with no network at all.

A tiny Mamba and a tiny Llama-style Transformer of similar size are built from the configs in
assets/configs with seeded random weights and a byte-level BPE tokenizer trained, here and now,
on the bundled prompts. They are saved with ``save_pretrained`` and loaded back through
``from_pretrained`` like any Hub model, so the offline demo exercises the real loading path.
Their output is noise: the UI labels them untrained, for mechanics only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from comparer.loading import load_bundled_config
from comparer.prompts import corpus_texts

OFFLINE_CONFIGS = {"offline-mamba": "tiny-mamba", "offline-transformer": "tiny-llama"}
VOCAB_SIZE = 1024
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>"]  # ids 0, 1, 2, as in the tiny configs
BUILD_MARKER = "comparer-offline.json"
BUILD_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("COMPARER_CACHE", Path.cwd() / "data" / "offline-models"))


def build_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE):
    """Byte-level BPE trained on ``texts``: any input text encodes, nothing is downloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def build_model_dir(config_name: str, tokenizer, out_dir: Path, seed: int) -> Path:
    """Seeded random weights for a bundled config, saved as safetensors with the tokenizer."""
    from transformers import AutoModelForCausalLM

    config = load_bundled_config(config_name)
    config.vocab_size = len(tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def ensure_offline_pair(cache_dir: Path | None = None) -> dict[str, Path]:
    """Folders of the two offline models, building them once (a few seconds) if missing."""
    cache_dir = Path(cache_dir or default_cache_dir())
    dirs = {name: cache_dir / name for name in OFFLINE_CONFIGS}
    if all(_is_built(d) for d in dirs.values()):
        return dirs
    tokenizer = build_tokenizer(corpus_texts())
    for seed, (name, config_name) in enumerate(OFFLINE_CONFIGS.items()):
        build_model_dir(config_name, tokenizer, dirs[name], seed)
        (dirs[name] / BUILD_MARKER).write_text(json.dumps({"version": BUILD_VERSION, "config": config_name}))
    return dirs


def _is_built(model_dir: Path) -> bool:
    marker = model_dir / BUILD_MARKER
    return marker.exists() and json.loads(marker.read_text()).get("version") == BUILD_VERSION
