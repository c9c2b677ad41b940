"""Convert a transformers Mamba or Llama checkpoint folder (the demo pair) to GGUF, for llama.cpp's server.

Why our own: llama.cpp's converter rejects the demo tokenizer ("BPE pre-tokenizer was not recognized").
This one writes with the `gguf` package (GGUFWriter and its HF -> GGUF tensor-name map) and declares the
tokenizer for what it is: byte-level BPE with GPT-2's pre-tokenizer. What llama.cpp computes differently
from the HF layout is done here and said: Mamba's A is stored as -exp(A_log) and its conv weight as 2-D;
Llama's q/k rows are permuted from HF's rotate-half order to llama.cpp's interleaved rotary order.

    python scripts/to_gguf.py assets/models/demo-mamba /tmp/demo-mamba.gguf
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file


def convert(model_dir: Path, out_path: Path) -> Path:
    import gguf

    config = json.loads((model_dir / "config.json").read_text())
    kind = config["model_type"]
    if kind not in ("mamba", "llama"):
        raise SystemExit(f"{model_dir}: model_type {kind!r}; this converter knows mamba and llama")
    arch = gguf.MODEL_ARCH.MAMBA if kind == "mamba" else gguf.MODEL_ARCH.LLAMA
    writer = gguf.GGUFWriter(str(out_path), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(model_dir.name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    (_mamba_keys if kind == "mamba" else _llama_keys)(writer, config)
    _tokenizer(writer, model_dir, config)
    names = gguf.get_tensor_name_map(arch, config["num_hidden_layers"])
    for hf_name, tensor in load_file(str(model_dir / "model.safetensors")).items():
        _add_tensor(writer, names, hf_name, _as_llama_cpp(kind, hf_name, tensor.float(), config))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path


def _mamba_keys(writer, config: dict) -> None:
    writer.add_context_length(2**20)  # no positions: any length
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(0)
    writer.add_head_count(0)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_ssm_conv_kernel(config["conv_kernel"])
    writer.add_ssm_inner_size(config["intermediate_size"])
    writer.add_ssm_state_size(config["state_size"])
    writer.add_ssm_time_step_rank(config["time_step_rank"])
    writer.add_layer_norm_rms_eps(config["layer_norm_epsilon"])


def _llama_keys(writer, config: dict) -> None:
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    rope = config.get("rope_parameters") or {}
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])


def _tokenizer(writer, model_dir: Path, config: dict) -> None:
    """Byte-level BPE as GPT-2's: tokens in id order, special ones marked control, merges as 'a b'."""
    raw = json.loads((model_dir / "tokenizer.json").read_text())
    vocab = raw["model"]["vocab"]
    special = {t["id"] for t in raw.get("added_tokens", []) if t.get("special")}
    tokens = [None] * config["vocab_size"]
    for token, idx in vocab.items():
        tokens[idx] = token
    tokens = [t if t is not None else f"[PAD{i}]" for i, t in enumerate(tokens)]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if i in special else 1 for i in range(len(tokens))])  # 1 normal, 3 control
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in raw["model"]["merges"]])
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_pad_token_id(config.get("pad_token_id", 0))
    writer.add_add_bos_token(False)  # the demo pair was trained without a BOS in front


def _as_llama_cpp(kind: str, hf_name: str, tensor: torch.Tensor, config: dict) -> torch.Tensor:
    if kind == "mamba" and hf_name.endswith("A_log"):
        return -torch.exp(tensor)
    if kind == "mamba" and hf_name.endswith("conv1d.weight"):
        return tensor.squeeze(1)
    if kind == "llama" and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
        heads = config["num_attention_heads"] if "q_proj" in hf_name else config["num_key_value_heads"]
        return _permute_rotary(tensor, heads)
    return tensor


def _permute_rotary(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """HF's rotate-half rows (first half, second half of each head) -> interleaved pairs per head."""
    rows = weight.shape[0]
    return weight.reshape(n_heads, 2, rows // n_heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _add_tensor(writer, names, hf_name: str, tensor: torch.Tensor) -> None:
    name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None and hf_name.endswith(("A_log", ".D")):
        name = names.get_name(hf_name)
    if name is None:
        raise SystemExit(f"no GGUF name for tensor {hf_name}")
    writer.add_tensor(name, np.ascontiguousarray(tensor.numpy().astype(np.float32)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    print("wrote", convert(args.model_dir, args.out))


if __name__ == "__main__":
    main()
