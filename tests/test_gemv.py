"""The tiled decode GEMV's activations and bias (kernels/gemv.py), and the Transformer decode step
that uses them, run by Triton's CPU interpreter against eager PyTorch (fp32)."""

import os
import subprocess
import sys

import pytest
import torch

from comparer.engines.projections import fuse_rows
from comparer.kernels.available import module_available

ACTS = """
import torch
import torch.nn.functional as F
from comparer.kernels import gemv
from comparer.kernels.gemv import Tiles
g = torch.Generator().manual_seed(3)
tiles = Tiles(rows=16, block_k=128)
for n, k, act, bias in ((40, 384, None, True), (33, 256, "gelu", True), (24, 384, "silu_gate", False),
                        (24, 384, "silu_gate", True)):
    rows = 2 * n if act == "silu_gate" else n  # [gate; up]
    w = torch.randn(rows, k, generator=g) / 8
    b = torch.randn(rows, generator=g) if bias else None
    x = torch.randn(1, k, generator=g)
    y = F.linear(x, w, b)
    if act == "gelu":
        want = F.gelu(y)
    elif act == "silu_gate":
        want = F.silu(y[:, :n]) * y[:, n:]
    else:
        want = y
    got = gemv.tiled(x, w, tiles, bias=b, act=act)
    assert got.shape == (1, n) and torch.allclose(got, want, rtol=1e-4, atol=1e-4), (act, (got - want).abs().max())
    print("ok", act, bias)
for args, kwargs, words in (((torch.randn(1, 256), torch.randn(8, 256), Tiles(8, 128, parts=2)),
                              {"bias": torch.randn(8)}, "partial rows"),
                             ((torch.randn(1, 200), torch.randn(8, 200), tiles), {}, "not a multiple"),
                             ((torch.randn(1, 256), torch.randn(7, 256), tiles), {"act": "silu_gate"}, "even row"),
                             ((torch.randn(1, 256), torch.randn(8, 256), tiles), {"bias": torch.randn(4)}, "bias of"),
                             ((torch.randn(2, 256)[:, ::1][0:1, :].t().t(), torch.randn(256, 8).t(), tiles), {},
                              "contiguous")):
    try:
        gemv.tiled(*args, **kwargs)
        raise AssertionError(f"accepted {words}")
    except ValueError as e:
        assert words in str(e), (words, str(e))
print("ok refused")
"""

ENGINE = """
import torch
from comparer.engines.projections import CUBLAS, DecodeKernels
from comparer.engines.transformer_fast import TransformerFastEngine
from comparer.kernels.gemv import Tiles
from tests.test_transformer_fast import MODELS, PROMPT, fixed, reference_tokens, small_model
tiles = Tiles(rows=32, block_k=128)  # tiny-llama's 640-wide down projection takes 128-column tiles
kernels = DecodeKernels(qkv=tiles, out=tiles, up=tiles, down=tiles)
for name in ("llama with grouped KV heads", "pythia (partial rotary, parallel residual)"):
    config_name, overrides = MODELS[name]
    model = small_model(config_name, **overrides)
    ref = reference_tokens(model, PROMPT, 5)
    engine = TransformerFastEngine(model, None, max_context_tokens=1100, use_triton=True, kernels=kernels)
    fast = engine.generate(PROMPT, fixed(5)).token_ids
    assert fast == ref, (name, fast, ref)
    # every projection went through the tiled kernel (a fallback to F.linear would give the same tokens)
    assert {role for role, _ in engine.project.tiled_calls} == {"qkv", "out", "up", "down"}, engine.project.tiled_calls
    assert not engine.project.linear_calls and "tiled Triton GEMVs" in engine.describe().decode
    # the model's own forward reads the fused weights too: a second engine, and transformers, agree
    assert reference_tokens(model, PROMPT, 5) == ref
    before = TransformerFastEngine(model, None, max_context_tokens=1100, use_triton=True, kernels=CUBLAS)
    assert before.generate(PROMPT, fixed(5)).token_ids == ref
    assert not before.project.tiled_calls and "the model's own projections" in before.describe().decode
    print("ok", name)
"""


def _interpret(code: str) -> str:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.skipif(not module_available("triton"), reason="needs triton (requirements-dev.txt)")
def test_tiled_gemv_folds_gelu_silu_gate_and_bias_into_the_product_under_the_interpreter():
    """gelu and silu(gate) * up (gate and up rows in one program) applied to the rows as they are
    stored, the bias added first, a partial row block; a K-split GEMV with a bias is refused (its
    partial rows have nowhere to add it)."""
    assert _interpret(ACTS).count("ok ") == 5


@pytest.mark.skipif(not module_available("triton"), reason="needs triton (requirements-dev.txt)")
def test_decode_step_with_tiled_gemvs_and_fused_llama_weights_gives_generate_tokens_under_the_interpreter():
    """Every projection of a Llama (grouped KV heads, q/k/v and gate/up fused into one weight each,
    silu-gating inside the gate/up GEMV) and of a Pythia (GELU inside the up GEMV, biases) through the
    tiled GEMV: the same greedy tokens as transformers' generate, before and after the fusion."""
    assert _interpret(ENGINE).count("ok ") == 2


def test_fused_rows_share_the_modules_memory_and_a_second_fusion_copies_nothing():
    lins = [torch.nn.Linear(8, n, bias=False) for n in (8, 4, 4)]
    weights = [lin.weight.detach().clone() for lin in lins]
    fused = fuse_rows(lins)
    assert fused.shape == (16, 8) and torch.equal(fused, torch.cat(weights))
    assert lins[1].weight.data_ptr() == fused[8:].data_ptr()  # the module reads the fused memory
    again = fuse_rows(lins)
    assert again.data_ptr() == fused.data_ptr() and torch.equal(again, fused)
    assert fuse_rows(lins, "bias") is None
