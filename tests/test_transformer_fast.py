"""The fast Transformer engine against transformers' own generate, on the CPU (fp32).

The GPU half (CUDA graphs, fp16) is in test_gpu_transformer_fast.py; here the same engine runs its
PyTorch attention, and its Triton kernels under Triton's CPU interpreter."""

import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM

from comparer.engines.transformer_fast import TransformerFastEngine, buckets_for
from comparer.kernels.available import module_available
from comparer.models.loading import load_bundled_config
from comparer.settings import GenerationSettings
from tests.greedy import reference_tokens

PROMPT = list(range(5, 60))


def small_model(config_name: str, **overrides):
    cfg = load_bundled_config(config_name)
    for key, value in {"num_hidden_layers": 2, **overrides}.items():
        setattr(cfg, key, value)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()


def fixed(n):
    return GenerationSettings(max_new_tokens=n, fixed_length=True)


MODELS = {"pythia (partial rotary, parallel residual)": ("pythia-160m", {}),
          "pythia (sequential residual)": ("pythia-160m", {"use_parallel_residual": False}),
          "llama": ("tiny-llama", {}),
          "llama with grouped KV heads": ("tiny-llama", {"num_key_value_heads": 2})}


@pytest.mark.parametrize("name", list(MODELS))
def test_fast_transformer_gives_the_same_64_greedy_tokens_as_generate(name):
    config_name, overrides = MODELS[name]
    model = small_model(config_name, **overrides)
    engine = TransformerFastEngine(model, None, max_context_tokens=256)
    assert engine.generate(PROMPT, fixed(64)).token_ids == reference_tokens(model, PROMPT, 64)


def test_a_shorter_prompt_after_a_longer_one_is_not_disturbed_by_stale_cache_rows():
    model = small_model("tiny-llama")
    engine = TransformerFastEngine(model, None, max_context_tokens=256)
    engine.generate(PROMPT * 3, fixed(16))
    assert engine.generate(PROMPT[:7], fixed(16)).token_ids == reference_tokens(model, PROMPT[:7], 16)


def test_a_prompt_that_does_not_fit_the_cache_is_refused_with_what_to_do():
    engine = TransformerFastEngine(small_model("tiny-llama"), None, max_context_tokens=64)
    with pytest.raises(ValueError, match="shorten the prompt or load with a larger max_context_tokens"):
        engine.generate(PROMPT, fixed(16))


def test_buckets_double_from_1024_and_end_at_the_cache_size():
    assert buckets_for(4096) == [1024, 2048, 4096]
    assert buckets_for(32896) == [1024, 2048, 4096, 8192, 16384, 32768, 32896]
    assert buckets_for(500) == [500]


INTERPRETED = """
import torch
from tests.test_transformer_fast import MODELS, PROMPT, fixed, reference_tokens, small_model
from comparer.engines.transformer_fast import TransformerFastEngine
for name in ("pythia (partial rotary, parallel residual)", "llama with grouped KV heads"):
    config_name, overrides = MODELS[name]
    model = small_model(config_name, **overrides)
    engine = TransformerFastEngine(model, None, max_context_tokens=1100, use_triton=True)
    fast = engine.generate(PROMPT, fixed(6)).token_ids
    ref = reference_tokens(model, PROMPT, 6)
    assert fast == ref, (name, fast, ref)
    print("ok", name)
"""


@pytest.mark.skipif(not module_available("triton"), reason="needs triton (requirements-dev.txt)")
def test_triton_rope_cache_write_and_split_kv_attention_give_generate_tokens_under_the_interpreter():
    """The GPU kernels' math, run by Triton's CPU interpreter inside the engine (a 61-token context in
    the 1,024-token bucket: two key splits of 512, the second empty)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", INTERPRETED], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ok ") == 2
