"""GPU correctness of the fast Transformer path (skipped without CUDA and Triton)."""

import pytest
import torch

from comparer.kernels.available import module_available
from comparer.settings import GenerationSettings
from tests.greedy import reference_tokens as _reference_tokens

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
              pytest.mark.skipif(not module_available("triton"), reason="needs triton")]

PROMPT = list(range(100, 161))


def _model(dtype, config_name="pythia-160m"):
    from comparer.models.loading import load_bundled_config
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(load_bundled_config(config_name), dtype=dtype).eval()


def _fast(model, max_context_tokens=4096):
    from comparer.engines.transformer_fast import TransformerFastEngine

    return TransformerFastEngine(model, None, max_context_tokens=max_context_tokens)


def _fixed(n):
    return GenerationSettings(max_new_tokens=n, fixed_length=True)


@pytest.mark.parametrize("config_name", ["pythia-160m", "tiny-llama"])
def test_graph_decode_gives_the_same_64_greedy_tokens_as_generate_in_fp32(config_name):
    model = _model(torch.float32, config_name)
    engine = _fast(model)
    assert engine.graphs, "expected CUDA graphs to be captured at load"
    assert engine.generate(PROMPT, _fixed(64)).token_ids == _reference_tokens(model, PROMPT, 64)
    long_prompt = (PROMPT * 30)[:1500]  # the 2,048 bucket: three key splits
    assert engine.generate(long_prompt, _fixed(64)).token_ids == _reference_tokens(model, long_prompt, 64)


def test_varied_prompt_lengths_never_capture_or_compile_after_load():
    from comparer.kernels.decode_attention import compiled_kernel_variants

    engine = _fast(_model(torch.float16))
    captures, variants = engine.captures, compiled_kernel_variants()
    for n in (1, 7, 300, 1000, 1025, 2047, 3000, 4000):
        engine.generate((PROMPT * 70)[:n], _fixed(16))
    print(f"{captures} graphs and {variants} Triton binaries at load; after 8 prompt lengths: "
          f"{engine.captures} and {compiled_kernel_variants()}")
    assert (engine.captures, compiled_kernel_variants()) == (captures, variants)


def test_fp16_graph_decode_is_as_close_to_fp32_as_transformers_fp16():
    """Teacher-forced logits for 32 steps: each fp16 path against the fp32 model with the same
    weights. The fast path must be no further from fp32 than transformers' own fp16 path (+10 %)."""
    model = _model(torch.float32)
    ids = torch.tensor([PROMPT + _reference_tokens(model, PROMPT, 32)], device="cuda")
    with torch.inference_mode():
        exact = model(ids).logits[0, len(PROMPT) - 1:-1].float()  # (32, vocab)
        model.half()
        hf16 = model(ids).logits[0, len(PROMPT) - 1:-1].float()
        engine = _fast(model)
        steps = [engine.prefill(PROMPT, 32)[0].clone()]
        for token in ids[0, len(PROMPT):-1]:
            steps.append(engine.decode_step(token.reshape(1))[0].clone())
    fast16 = torch.stack(steps)
    err = {name: ((x - exact).norm(dim=-1) / exact.norm(dim=-1)).max().item()
           for name, x in (("transformers fp16", hf16), ("fast fp16", fast16))}
    print("max relative L2 error vs fp32:", err)
    assert err["fast fp16"] <= 1.1 * err["transformers fp16"] + 1e-3


def test_a_model_split_between_gpu_and_cpu_falls_back_to_transformers_and_says_so(tmp_path):
    """The one-GPU stand-in for a multi-GPU split: accelerate's max_memory puts part of the layers on
    the CPU; the fast engine cannot run those, so the card names transformers and the reason."""
    from comparer.engines.loaded import load_model
    from comparer.models.presets import ModelSpec

    _model(torch.float16).save_pretrained(tmp_path)
    from comparer.models.tokenizers import build_tokenizer

    build_tokenizer(["a tokenizer for the split test"], vocab_size=300).save_pretrained(tmp_path)
    loaded = load_model(ModelSpec("split", local_dir=str(tmp_path)), "cuda", torch.float16, engine="fast",
                        max_memory={0: "250MiB", "cpu": "4GiB"})
    devices = {p.device.type for p in loaded.engine.model.parameters()}  # offloaded ones may show as 'meta'
    assert "cuda" in devices and len(devices) > 1
    assert loaded.card.kernel_path.startswith("transformers")
    assert any("offloaded to the CPU" in note for note in loaded.card.notes)
    result = loaded.engine.generate(PROMPT[:20], _fixed(8))
    assert len(result.token_ids) == 8


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
@pytest.mark.parametrize("source", ["checkpoint", "random weights"])
def test_a_model_split_over_two_gpus_runs_the_fast_engine_with_transformers_tokens(tmp_path, source):
    """accelerate's max_memory spreads the decoder layers over two GPUs (from_pretrained with
    device_map="auto" for a checkpoint; comparer's own layout for random weights); the fast engine
    runs them eagerly, each layer's kernels on its GPU, and gives transformers' greedy tokens."""
    from comparer.models.tokenizers import build_tokenizer
    from comparer.engines.loaded import load_model
    from comparer.models.presets import ModelSpec

    max_memory = {0: "400MiB", 1: "8GiB"}
    if source == "checkpoint":
        _model(torch.float32).save_pretrained(tmp_path)
        build_tokenizer(["a tokenizer for the split test"], vocab_size=300).save_pretrained(tmp_path)
        spec = ModelSpec("split", local_dir=str(tmp_path))
    else:
        spec = ModelSpec("pythia-160m", config_name="pythia-160m", random_weights=True)
    loaded = load_model(spec, "cuda", torch.float32, engine="fast", max_memory=max_memory, max_context_tokens=1024)
    engine = loaded.engine
    print(source, "layer devices:", sorted({str(d) for d in engine.layer_devices}), loaded.card.kernel_path)
    assert len(set(engine.layer_devices)) == 2 and "2 GPUs" in loaded.card.kernel_path
    want = _reference_tokens(engine.model, PROMPT, 24)
    assert engine.generate(PROMPT, _fixed(24)).token_ids == want
