"""GPU correctness of the fast Mamba path (skipped without CUDA and the mamba-ssm kernels)."""

import pytest
import torch

from comparer.kernels import mamba_kernels_available
from comparer.settings import GenerationSettings

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
              pytest.mark.skipif(not mamba_kernels_available(), reason="needs mamba-ssm and causal-conv1d")]

PROMPT = list("Maia gets ready for her next adventure. She finds a toy boat and".encode())


def _model(dtype):
    from comparer.loading import load_bundled_config
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(load_bundled_config("mamba-130m"), dtype=dtype).eval()


def _reference_tokens(model, n):
    ids = torch.tensor([PROMPT], device="cuda")
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                             min_new_tokens=n, pad_token_id=0)
    return out[0, len(PROMPT):].tolist()


def _fast(model, chunk_tokens=8192):
    from comparer.engines.mamba_fast import MambaFastEngine
    from comparer.engines.mamba_ops import KernelOps

    return MambaFastEngine(model, None, KernelOps(), cuda_graph=True, chunk_tokens=chunk_tokens)


def test_fast_path_gives_the_same_64_greedy_tokens_as_transformers_in_fp32():
    model = _model(torch.float32)
    fast = _fast(model).generate(PROMPT, GenerationSettings(max_new_tokens=64, fixed_length=True)).token_ids
    assert fast == _reference_tokens(model, 64)


def test_chunked_prefill_carries_state_exactly_across_chunk_boundaries_in_fp32():
    model = _model(torch.float32)
    long_prompt = (PROMPT * 40)[:2000]
    whole = _fast(model, chunk_tokens=4096).prefill(long_prompt)
    chunked = _fast(model, chunk_tokens=300).prefill(long_prompt)
    assert torch.allclose(whole, chunked, rtol=1e-3, atol=1e-3)
    assert whole.argmax() == chunked.argmax()


def test_fast_path_matches_transformers_in_fp16_within_tolerance():
    model = _model(torch.float16)
    fast = _fast(model).generate(PROMPT, GenerationSettings(max_new_tokens=64, fixed_length=True)).token_ids
    ref = _reference_tokens(model, 64)
    agree = sum(a == b for a, b in zip(fast, ref))
    print(f"fp16 greedy agreement: {agree}/64 (first divergence at {next((i for i, (a, b) in enumerate(zip(fast, ref)) if a != b), None)})")
    assert fast[:16] == ref[:16]
