import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from comparer.kernels.available import module_available
from comparer.settings import GenerationSettings, SettingsError

PROMPT = "Maia gets ready for her next adventure. She finds a toy boat and"


def _ids(model):
    return model.tokenizer(PROMPT)["input_ids"]


@pytest.mark.parametrize("side", ["left", "right"])
def test_shipped_demo_models_load_through_from_pretrained_and_say_what_they_are(offline_pair, side):
    card = offline_pair[side].card
    assert card.weights == "trained"
    assert card.family == ("SSM" if side == "left" else "Transformer")
    assert 6.0e6 < card.n_params < 7.5e6
    note = card.notes[0]
    assert "public-domain books" in note and re.search(r"held-out test perplexity \d+\.\d", note)


def test_the_demo_pair_is_within_40_mb_in_safetensors():
    from comparer.models.presets import get_preset

    preset = get_preset("offline")
    sizes = [sum(f.stat().st_size for f in Path(s.local_dir).iterdir()) for s in (preset.left, preset.right)]
    assert sum(sizes) <= 40e6
    assert all((Path(s.local_dir) / "model.safetensors").exists() for s in (preset.left, preset.right))


@pytest.mark.parametrize("side", ["left", "right"])
def test_streamed_tokens_equal_generate_with_greedy_decoding(offline_pair, side):
    model = offline_pair[side]
    streamed = []
    result = model.engine.generate(_ids(model), GenerationSettings(max_new_tokens=24, fixed_length=True),
                                   on_token=lambda ev: streamed.append(ev.token_id))
    with torch.inference_mode():
        ids = torch.tensor([_ids(model)])
        reference = model.engine.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                                max_new_tokens=24, min_new_tokens=24, pad_token_id=0)
    assert streamed == result.token_ids == reference[0, ids.shape[1]:].tolist()


def test_token_timestamps_are_increasing_and_after_start(offline_pair):
    model = offline_pair["right"]
    result = model.engine.generate(_ids(model), GenerationSettings(max_new_tokens=10, fixed_length=True))
    assert len(result.token_times_s) == 10
    assert result.t_start_s < result.token_times_s[0]
    assert result.token_times_s == sorted(result.token_times_s)


def test_seeded_sampling_reproduces_a_pane_and_differs_across_seeds(offline_pair):
    model = offline_pair["left"]

    def sample(seed):
        s = GenerationSettings(max_new_tokens=20, do_sample=True, temperature=1.5, top_k=50, top_p=0.95,
                               seed=seed, fixed_length=True)
        return model.engine.generate(_ids(model), s).token_ids

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_stop_event_ends_a_long_generation_early(offline_pair):
    model, stop = offline_pair["right"], threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    t0 = time.perf_counter()
    result = model.engine.generate(_ids(model), GenerationSettings(max_new_tokens=4096, fixed_length=True),
                                   stop=stop)
    assert time.perf_counter() - t0 < 1.3
    assert result.stopped_early and 0 < len(result.token_ids) < 4096


@pytest.mark.parametrize("bad", [dict(max_new_tokens=0), dict(max_new_tokens=1.5), dict(temperature=0),
                                 dict(top_p=1.5), dict(top_k=-1), dict(repetition_penalty=9),
                                 dict(max_new_tokens="ten"), dict(seed=True)])
def test_out_of_range_settings_are_rejected_with_the_field_name(bad):
    with pytest.raises(SettingsError, match=next(iter(bad))):
        GenerationSettings(**bad)


def test_random_weight_mode_builds_the_exact_config_and_streams_with_byte_tokens():
    from comparer.engines.loaded import load_model
    from comparer.models.presets import ModelSpec
    from comparer.pair import PairRun

    spec = ModelSpec("state-spaces/mamba-130m-hf", config_name="mamba-130m").with_random_weights()
    model = load_model(spec, "cpu")
    assert model.card.n_params == 129_135_360 and model.card.weights == "random (untrained)"
    run = PairRun({"left": model, "right": model}, "moon", GenerationSettings(max_new_tokens=3, fixed_length=True))
    for panes in run:
        pass
    assert all(len(p.token_ids) == 3 and p.status == "done" for p in panes.values())


@pytest.mark.parametrize("ops_name", ["pytorch", "cpp"])
def test_fast_mamba_engine_on_cpu_matches_transformers_greedy_across_prefill_chunks(offline_dirs, ops_name):
    """comparer's Mamba engine on the CPU (PyTorch blocked scan, or the compiled C scan) against
    transformers' generate, with the prompt split into several prefill chunks so the state is carried
    across chunk boundaries."""
    from comparer.engines.mamba_ops import CScanOps
    from comparer.engines.mamba_fast import MambaFastEngine
    from comparer.engines.mamba_ops import TorchOps
    from comparer.engines.loaded import load_model
    from comparer.models.presets import ModelSpec

    model = load_model(ModelSpec("m", local_dir=str(offline_dirs["demo-mamba"])), "cpu").engine.model
    ops = TorchOps() if ops_name == "pytorch" else CScanOps()
    fast = MambaFastEngine(model, None, ops, cuda_graph=False, chunk_tokens=50)
    for length in (1, 7, 128, 1000):
        ids = torch.randint(3, 1000, (1, length), generator=torch.Generator().manual_seed(length))
        with torch.inference_mode():
            ref_logits = model(ids).logits[0, -1]
            ref = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=16,
                                 min_new_tokens=16, pad_token_id=0, repetition_penalty=1.2)[0, length:].tolist()
        assert torch.allclose(fast.prefill(ids[0].tolist())[0], ref_logits, atol=1e-4, rtol=1e-4)
        settings = GenerationSettings(max_new_tokens=16, fixed_length=True, repetition_penalty=1.2)
        assert fast.generate(ids[0].tolist(), settings).token_ids == ref


def test_engine_choice_names_the_path_on_the_card(offline_dirs):
    from comparer.engines.loaded import load_model
    from comparer.models.presets import ModelSpec

    spec = ModelSpec("m", local_dir=str(offline_dirs["demo-mamba"]))
    from comparer.models.arch import FAST, HF_REFERENCE_SCAN, KernelPath

    reference = load_model(spec, "cpu", engine="hf").card
    assert reference.path.engine == HF_REFERENCE_SCAN and reference.engine == HF_REFERENCE_SCAN
    for choice in ("fast", "auto"):  # auto picks the compiled scan on the CPU
        fast = load_model(spec, "cpu", engine=choice)
        assert fast.card.path == KernelPath(FAST, "compiled C scan (CPU)", "chunks of 8,192 tokens carrying the state",
                                            "PyTorch step, eager", compile_s=fast.card.path.compile_s,
                                            compiled="C scan")
        assert fast.card.path.compile_s is not None
        assert any("C scan compiled or loaded from cache" in note for note in fast.card.notes)
        assert fast.card.kernel_path == fast.card.path.describe() == fast.card.to_dict()["kernel_path"]
    llama = load_model(ModelSpec("t", local_dir=str(offline_dirs["demo-llama"])), "cpu", engine="fast").card
    assert llama.path.engine == FAST and llama.path.kernels == "PyTorch" and not llama.path.cuda_graph
    assert "preallocated KV cache" in llama.kernel_path and "PyTorch attention, eager" in llama.kernel_path


def test_compiled_cpu_scan_equals_the_pytorch_recurrence_from_a_nonzero_state():
    from comparer.engines.mamba_ops import CScanOps
    from comparer.engines.mamba_ops import TorchOps

    g = torch.Generator().manual_seed(0)
    b, d, n, seq = 1, 48, 16, 137
    u, dt, z = (torch.randn(b, d, seq, generator=g) for _ in range(3))
    B, C = (torch.randn(b, n, seq, generator=g) for _ in range(2))
    A, D, bias = -torch.rand(d, n, generator=g) * 8, torch.randn(d, generator=g), torch.randn(d, generator=g)
    h0 = torch.randn(b, d, n, generator=g)
    y_ref, h_ref = TorchOps().scan(u, dt, A, B, C, D, z, bias, h0)
    y, h = CScanOps().scan(u, dt, A, B, C, D, z, bias, h0)
    assert torch.allclose(y, y_ref, rtol=1e-4, atol=1e-5) and torch.allclose(h, h_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("d_inner, seq", [(48, 37), (44, 3)])
def test_compiled_cpu_chunk_mixer_equals_the_pytorch_mixer_and_carries_both_states(d_inner, seq):
    """The C conv + scan (time-major) against the PyTorch mixer (channel-major): same output and the
    same conv window and SSM state afterwards, from non-zero states, for a width that is not a
    multiple of eight and a chunk shorter than the conv window."""
    from types import SimpleNamespace

    from comparer.engines.mamba_ops import CScanOps
    from comparer.engines.mamba_ops import TorchOps

    g = torch.Generator().manual_seed(d_inner + seq)
    hidden, n, rank, width = 24, 16, 4, 4

    def rand(*shape, scale=0.3):
        return torch.randn(*shape, generator=g) * scale

    layer = SimpleNamespace(in_proj=rand(2 * d_inner, hidden), conv_w=rand(d_inner, width, scale=0.5),
                            conv_b=rand(d_inner), x_proj=rand(rank + 2 * n, d_inner), dt_proj=rand(d_inner, rank),
                            dt_bias=rand(d_inner), A=-torch.rand(d_inner, n, generator=g) * 8, D=rand(d_inner),
                            out_proj=rand(hidden, d_inner))
    normed = rand(1, seq, hidden, scale=1.0)
    states = {}
    for name, ops in (("pytorch", TorchOps()), ("c", CScanOps())):
        conv_state, ssm_state = rand(1, d_inner, width, scale=0), rand(1, d_inner, n, scale=0)
        g.manual_seed(7)
        conv_state.copy_(rand(1, d_inner, width, scale=1.0))
        ssm_state.copy_(rand(1, d_inner, n, scale=1.0))
        out = ops.chunk_mixer(layer, normed, conv_state, ssm_state, rank)
        states[name] = (out, conv_state, ssm_state)
    for got, want in zip(states["c"], states["pytorch"]):
        assert got.shape == want.shape
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)


FUSED_DECODE = """
import torch
from transformers import AutoModelForCausalLM
from comparer.kernels import mamba_decode
from comparer.engines.mamba_fast import MambaFastEngine
from comparer.engines.mamba_ops import FusedDecodeMixin, TorchOps
from comparer.settings import GenerationSettings

from dataclasses import replace

# few programs (the interpreter runs them one by one): 640 channels in full and masked blocks, three
# blocks adding into each x_proj accumulator
SMALL = mamba_decode.DecodeSettings(conv_block=256, step_block=512, fused_in_proj=None)

class FusedTorchOps(FusedDecodeMixin, TorchOps):
    def __init__(self, settings):
        self.decode_settings = settings

model = AutoModelForCausalLM.from_pretrained("assets/models/demo-mamba", dtype=torch.float32).eval()
prompt = list(range(40, 75))
ids = torch.tensor([prompt])
settings = GenerationSettings(max_new_tokens=6, fixed_length=True, repetition_penalty=1.2)
ref = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=6, min_new_tokens=6,
                     pad_token_id=0, repetition_penalty=1.2)[0, len(prompt):].tolist()

launches = {"norm_in_conv": 0}
one_kernel = mamba_decode.norm_in_conv
def counted(*args, **kwargs):
    launches["norm_in_conv"] += 1
    return one_kernel(*args, **kwargs)
mamba_decode.norm_in_conv = counted

def check(label, kernels):
    launches["norm_in_conv"] = 0
    fused = MambaFastEngine(model, None, FusedTorchOps(kernels), cuda_graph=False)
    plain = MambaFastEngine(model, None, TorchOps(), cuda_graph=False)
    for engine in (fused, plain):
        engine.prefill(prompt)
    token = torch.tensor([7])
    for step in range(3):
        a, b = fused.decode_step(token).clone(), plain.decode_step(token).clone()
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (label, step, (a - b).abs().max())
        assert torch.allclose(fused.ssm_state, plain.ssm_state, atol=1e-5, rtol=1e-4)
        assert torch.allclose(fused.conv_state, plain.conv_state, atol=1e-5, rtol=1e-4)
        assert not fused.xproj_acc[:-1].any()  # clear between steps; the last is cleared by the next step
        token = a.argmax(-1)
    print("ok logits and states", label)
    got = fused.generate(prompt, settings).token_ids
    assert got == ref, (label, got, ref)
    # every layer (8) of every step through the one kernel, or none: 3 steps above, 5 in generate (its first
    # token comes from the prefill)
    assert launches["norm_in_conv"] == (8 * (3 + 5) if kernels.fused_in_proj else 0), (label, launches)
    print("ok tokens", label)

check("small-weight kernels", SMALL)
# the large-weight path on the same model: tiled in_proj, out_proj as two K-split partial rows that the
# next add_rms (and, after the last layer, the final norm) adds up
check("tiles", replace(SMALL, gemv_max_bytes=0, tiles_in_proj=mamba_decode.Tiles(rows=256, block_k=64),
                       tiles_out_proj=mamba_decode.Tiles(rows=256, block_k=64, parts=2)))
# add_rms + in_proj + conv_xproj in one kernel: 5 channel programs and 5 gate programs of 128 rows, the norm
# and in_proj in two 256-column tiles over the 320 hidden columns (the second one masked), after the small
# out_proj GEMV (one row) and after two K-split partial rows
fused = mamba_decode.Tiles(rows=128, block_k=256)
check("fused in_proj", replace(SMALL, fused_in_proj=fused))
check("fused in_proj after partial rows", replace(SMALL, fused_in_proj=fused, gemv_max_bytes=0, tiles_in_proj=None,
                                                  tiles_out_proj=mamba_decode.Tiles(rows=256, block_k=64, parts=2)))
# one layer: its norm would clear the accumulator it adds into, so it takes the separate kernels (and says so)
config = model.config.__class__(**{**model.config.to_dict(), "num_hidden_layers": 1})
torch.manual_seed(0)
one_layer = AutoModelForCausalLM.from_config(config).eval()
launches["norm_in_conv"] = 0
fused_1 = MambaFastEngine(one_layer, None, FusedTorchOps(replace(SMALL, fused_in_proj=fused)), cuda_graph=False)
plain_1 = MambaFastEngine(one_layer, None, TorchOps(), cuda_graph=False)
a, b = fused_1.prefill(prompt), plain_1.prefill(prompt)
for _ in range(3):
    token = b.argmax(-1)
    a, b = fused_1.decode_step(token).clone(), plain_1.decode_step(token).clone()
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()
assert launches["norm_in_conv"] == 0 and "in one kernel" not in fused_1.describe().decode
print("ok one layer")
"""


@pytest.mark.skipif(not module_available("triton"), reason="needs triton (requirements-dev.txt)")
def test_fused_triton_mamba_decode_matches_the_pytorch_step_and_generate_under_the_interpreter():
    """The GPU decode kernels (add+RMSNorm, conv+x_proj split-K, dt_proj+state update, and the one kernel
    for add+RMSNorm, in_proj and conv+x_proj) run by
    Triton's CPU interpreter inside the engine on the trained demo Mamba: same logits and states as
    the PyTorch step, and the same greedy tokens as transformers' generate."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", FUSED_DECODE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for label in ("small-weight kernels", "tiles", "fused in_proj", "fused in_proj after partial rows"):
        assert f"ok logits and states {label}" in done.stdout and f"ok tokens {label}" in done.stdout
    assert "ok one layer" in done.stdout


SCAN = """
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM
from comparer.kernels import mamba_conv, mamba_scan
from comparer.engines.mamba_fast import MambaFastEngine
from comparer.engines.mamba_ops import TorchOps, TritonOps
g = torch.Generator().manual_seed(1)
# the scan kernel alone, in the engine's padded layout: u and z halves of one (2d, cols) tensor, B and C rows
# of another, a nonzero start state, `seq` valid steps of `cols` (the state carried out is step seq's), a
# partial last tile, a chunk shorter than a tile, a tile count above one
for d, n, cols, seq, rank in ((10, 16, 272, 260, 3), (6, 16, 16, 5, 2), (5, 8, 512, 512, 4)):
    xz = torch.randn(2 * d, cols, generator=g)
    xdbl = torch.randn(2 * n + rank, cols, generator=g)
    args = (xz[:d], torch.randn(d, cols, generator=g) - 1, -torch.rand(d, n, generator=g) * 3, xdbl[rank:rank + n],
            xdbl[rank + n:], torch.randn(d, generator=g), xz[d:], torch.randn(d, generator=g) * 0.5)
    h0 = torch.randn(d, n, generator=g)
    got_state, want_state = h0.clone(), h0.clone()
    got = mamba_scan.scan(*args, got_state, seq=seq)
    want = mamba_scan.scan_reference(*args, want_state, seq=seq)
    assert torch.allclose(got[:, :seq], want[:, :seq], rtol=1e-4, atol=1e-4), (d, n, seq, (got - want).abs().max())
    assert torch.allclose(got_state, want_state, rtol=1e-4, atol=1e-4)
    print("ok scan", d, n, seq)
# the conv kernel against PyTorch's conv from the carried inputs (bias or not, a chunk shorter than the width)
# ((2, 16, 1): the width-4 kernel in programs of 16 steps, so each reads the 3 inputs before it from the
# previous program's range; width 3: the generic kernel)
for d, cols, seq, width, bias, setting in ((20, 272, 260, 4, True, None), (6, 16, 2, 4, False, None),
                                           (5, 64, 50, 4, True, (2, 16, 1)), (5, 32, 32, 3, True, None)):
    xz = torch.randn(2 * d, cols, generator=g)
    w, b = torch.randn(d, width, generator=g), (torch.randn(d, generator=g) if bias else None)
    state = torch.randn(d, width, generator=g)
    got, last = mamba_conv.conv(xz[:d], state, w, b, seq=seq, setting=setting)
    want, want_last = TorchOps().conv(xz[None, :d, :seq], state[None], w, b)
    assert torch.allclose(got[:, :seq], want[0], atol=1e-5) and torch.equal(last, want_last[0]), (d, seq)
    print("ok conv", d, seq)

# TritonOps inside the engine on the trained demo Mamba: chunks of 16 tokens and a padded last chunk (35
# tokens), the conv and row norm kernels and the fused decode as written, the scan as the step-by-step
# reference checked above (the interpreter runs the kernel's scan element by element: minutes at this size;
# the GPU tests run it in the engine). Logits, both states and three decode steps as the PyTorch mixer.
mamba_scan.scan = mamba_scan.scan_reference
model = AutoModelForCausalLM.from_pretrained("assets/models/demo-mamba", dtype=torch.float32).eval()
prompt = list(range(40, 75))
fused = MambaFastEngine(model, None, TritonOps(), cuda_graph=False, chunk_tokens=16)
plain = MambaFastEngine(model, None, TorchOps(), cuda_graph=False, chunk_tokens=16)
a, b = fused.prefill(prompt), plain.prefill(prompt)
assert torch.allclose(a, b, rtol=1e-4, atol=1e-4), (a - b).abs().max()
assert torch.allclose(fused.ssm_state, plain.ssm_state, rtol=1e-4, atol=1e-5)
assert torch.allclose(fused.conv_state, plain.conv_state, rtol=1e-4, atol=1e-5)  # fp32 GEMM order differs
for _ in range(3):
    token = b.argmax(-1)
    a, b = fused.decode_step(token), plain.decode_step(token)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4), (a - b).abs().max()
print("ok engine")
"""


@pytest.mark.skipif(not module_available("triton"), reason="needs triton (requirements-dev.txt)")
def test_triton_mamba_ops_match_the_step_by_step_recurrence_and_the_pytorch_mixer_under_the_interpreter():
    """The Triton-only Mamba path (no mamba-ssm): the scan kernel against the recurrence step by step
    (padded rows, nonzero start state, partial tiles), the conv kernel against PyTorch's, and TritonOps in
    the engine on the trained demo Mamba in 16-token chunks with a padded last chunk: the same logits,
    states and decode steps as the PyTorch mixer (the GPU tests compare greedy tokens with transformers)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", SCAN], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ok scan") == 3 and done.stdout.count("ok conv") == 4 and "ok engine" in done.stdout


CARRY = """
import torch
from comparer.kernels import mamba_carry
g = torch.Generator().manual_seed(3)
for d, n, seq in ((40, 16, 300), (16, 4, 5)):
    dt, z, y = (torch.randn(1, d, seq, generator=g) for _ in range(3))
    C = torch.randn(1, n, seq, generator=g)
    A, bias = -torch.rand(d, n, generator=g) * 4, torch.randn(d, generator=g) - 2
    h0, last = torch.randn(1, d, n, generator=g), torch.randn(1, d, n, generator=g)
    want = mamba_carry.add_initial_state_reference(y.clone(), last.clone(), dt, A, C, z, bias, h0)
    got = mamba_carry.launch(y.clone(), last.clone(), dt, A, C, z, bias, h0)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), (d, n, seq, (a - b).abs().max())
    print("ok", d, n, seq)
"""


@pytest.mark.skipif(not module_available("triton"), reason="needs triton (requirements-dev.txt)")
def test_triton_chunk_carry_kernel_equals_the_pytorch_sum_under_the_interpreter():
    """The state carried into a prefill chunk (tiled running cumsum, in-place y): two tiles plus a
    partial one, a channel count that is not a multiple of the block, and a short chunk."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", CARRY], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ok ") == 2


GEMV = """
import torch
from comparer.kernels import mamba_decode
g = torch.Generator().manual_seed(5)
for n, k, programs in ((40, 1024, 3), (7, 512, 4), (64, 1536, 64)):
    w, x = torch.randn(n, k, generator=g), torch.randn(1, k, generator=g)
    got = mamba_decode.gemv(x, w, programs=programs)
    assert got.shape == (1, n) and torch.allclose(got, x @ w.t(), rtol=1e-4, atol=1e-3), (n, k)
    print("ok", n, k)
for n, k, parts in ((40, 768, 1), (33, 768, 3)):
    w, x = torch.randn(n, k, generator=g), torch.randn(1, k, generator=g)
    got = mamba_decode.gemv_tiles(x, w, parts, rows=16, block_k=128, evict=parts > 1)
    want_shape = (1, n) if parts == 1 else (parts, 1, n)
    assert got.shape == want_shape, got.shape
    assert torch.allclose((got.sum(0) if parts > 1 else got), x @ w.t(), rtol=1e-4, atol=1e-3), (n, k, parts)
    print("ok", n, k)
# four of a split's six tiles loaded before the (PDL) wait, the rest in the loop
w, x = torch.randn(40, 768, generator=g), torch.randn(1, 768, generator=g)
got = mamba_decode.gemv_tiles(x, w, 1, rows=16, block_k=128, settings=mamba_decode.DecodeSettings(pre_tiles=4))
assert torch.allclose(got, x @ w.t(), rtol=1e-4, atol=1e-3)
print("ok pre-loaded tiles")
# add_rms summing fp16 out_proj's fp32 partial rows: the same rounding and dtypes as the PyTorch norm on
# the summed row, with the residual stream in fp32 and in the model dtype
from comparer.engines.mamba_ops import TorchOps, final_norm
w16, parts = (torch.rand(48, generator=g) + 0.5).half(), torch.randn(3, 1, 48, generator=g)
res16 = torch.randn(1, 48, generator=g).half()
for fp32_residual in (True, False):
    res_in = res16.float() if fp32_residual else res16
    y, res = mamba_decode.add_rms(parts, res_in, w16, 1e-5, fp32_residual)
    y_ref, res_ref = TorchOps().add_norm(parts.sum(0).half(), res_in, w16, 1e-5, fp32_residual)
    assert res.dtype == res_ref.dtype and y.dtype == y_ref.dtype, (res.dtype, res_ref.dtype)
    assert torch.allclose(res.float(), res_ref.float(), rtol=1e-3, atol=1e-3)
    assert torch.allclose(y.float(), y_ref.float(), rtol=1e-2, atol=1e-2)
    print("ok add_rms parts", fp32_residual)
    # norm_f before the LM head: fp32 on the residual stream, no cast of its input to the weight's dtype
    y, _ = mamba_decode.add_rms(parts, res_in, w16, 1e-5, fp32_residual, final=True)
    y_ref = final_norm(parts, res_in, w16, 1e-5, torch.float16)
    assert y.dtype == y_ref.dtype and torch.allclose(y.float(), y_ref.float(), rtol=1e-3, atol=1e-3)
    print("ok final norm", fp32_residual)
"""


@pytest.mark.skipif(not module_available("triton"), reason="needs triton (requirements-dev.txt)")
def test_triton_gemvs_equal_a_matrix_product_under_the_interpreter():
    """Rows split unevenly over the programs (40 rows over 3), fewer rows than programs, and a K of
    three tiles; the tiled GEMV for large weights with a partial row block, whole and in three K
    splits whose partial rows add up to the product, and with several tiles loaded before the PDL wait;
    add_rms summing partial rows like the PyTorch norm, as a block norm and as the final norm."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", GEMV], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ok ") == 10


def test_kernel_conv_without_concatenation_equals_the_carried_window_conv():
    """KernelOps.conv runs causal-conv1d on the chunk alone (zero left edge), then redoes the first
    width - 1 outputs from the carried inputs: the same outputs and new conv state as convolving the
    concatenated window, for chunks shorter than, equal to and longer than the window. causal-conv1d's
    CUDA function is stood in for by the same zero-padded causal conv in PyTorch."""
    from comparer.engines.mamba_ops import KernelOps, TorchOps

    def causal_conv1d_fn(x, weight, bias, activation=None):
        width = weight.shape[-1]
        return F.silu(F.conv1d(F.pad(x, (width - 1, 0)), weight.unsqueeze(1), bias, groups=x.shape[1]))

    ops = KernelOps.__new__(KernelOps)  # no CUDA kernels to import: only the conv's own logic is under test
    ops._conv_fn = causal_conv1d_fn
    g = torch.Generator().manual_seed(4)
    weight, bias = torch.randn(6, 4, generator=g), torch.randn(6, generator=g)
    for seq in (1, 2, 3, 4, 9):
        x, state = torch.randn(1, 6, seq, generator=g), torch.randn(1, 6, 4, generator=g)
        got, got_state = ops.conv(x, state, weight, bias)
        want, want_state = TorchOps().conv(x, state, weight, bias)
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6), seq
        assert torch.equal(got_state, want_state), seq


@pytest.mark.skipif(not module_available("triton"), reason="needs triton (requirements-dev.txt)")
@pytest.mark.parametrize("capability", [(12, 0), (9, 0), (8, 9), (8, 0)])
def test_triton_mamba_prefill_kernels_build_for_each_gpu_with_its_launch_setting(capability):
    """Triton compiles for a GPU this machine lacks: the scan with the setting comparer picks for that
    architecture (the H200-tuned one on sm_90, elsewhere one ptxas builds without spills) and the conv,
    in the prefill's aligned layout, fit the architecture's shared memory and, off sm_90, spill nothing.
    (The GPU tests build every kernel a real run compiled, for sm_120.)"""
    from comparer.kernels import cross_compile, mamba_conv, mamba_scan

    channels, steps, warps = mamba_scan.SETTINGS.get(capability, mamba_scan.DEFAULT_SETTING)
    ptr = lambda dtype: f"*{dtype}"  # noqa: E731
    scan_sig = {"u_ptr": ptr("fp16"), "dt_ptr": ptr("fp16"), "a_ptr": ptr("fp32"), "b_ptr": ptr("fp16"),
                "c_ptr": ptr("fp16"), "d_ptr": ptr("fp32"), "z_ptr": ptr("fp16"), "dtb_ptr": ptr("fp32"),
                "h_ptr": ptr("fp32"), "y_ptr": ptr("fp16"), "seq": "i32", "cols": "i32", "u_stride": "i32",
                "dt_stride": "i32", "bc_stride": "i32", "z_stride": "i32", "DIM": "constexpr", "N": "constexpr",
                "BD": "constexpr", "BT": "constexpr"}
    conv_sig = {"x_ptr": ptr("fp16"), "state_ptr": ptr("fp16"), "w_ptr": ptr("fp16"), "b_ptr": ptr("fp16"),
                "out_ptr": ptr("fp16"), "x_stride": "i32", "cols": "i32", "DIM": "constexpr", "W": "constexpr",
                "HAS_BIAS": "constexpr", "BD": "constexpr", "BT": "constexpr"}
    cases = [(mamba_scan._scan_kernel, scan_sig, {"DIM": 5120, "N": 16, "BD": channels, "BT": steps}, warps),
             (mamba_conv._conv_kernel, conv_sig, {"DIM": 5120, "W": 4, "HAS_BIAS": True, "BD": mamba_conv.BLOCK_D,
                                                  "BT": mamba_conv.BLOCK_T}, mamba_conv.WARPS)]
    conv4_sig = {k: v for k, v in conv_sig.items() if k != "W"}
    conv4_channels, conv4_steps, conv4_warps = mamba_conv.SETTING_4
    cases.append((mamba_conv._conv4_kernel, conv4_sig, {"DIM": 5120, "HAS_BIAS": True, "BD": conv4_channels,
                                                        "BT": conv4_steps}, conv4_warps))
    for kernel, signature, constants, num_warps in cases:
        aligned = {(kernel.arg_names.index(k),): [["tt.divisibility", 16]] for k, v in signature.items()
                   if v != "constexpr" and k != "seq"}  # the engine pads every row to a multiple of 16
        launch = cross_compile.Launch(kernel, signature, constants, aligned, num_warps, 1)
        for built in cross_compile.build(launch, capability):
            print(capability, vars(built))
            assert built.shared_bytes <= cross_compile.SHARED_LIMIT_BYTES[capability]
            assert built.registers is not None and built.registers <= 255
            if capability != (9, 0):
                assert built.spilled_bytes == 0, built


def test_prefill_chunk_is_the_largest_that_fits_half_the_free_memory_and_never_more_than_the_prompt():
    """Mamba-2.8B's activations (107 KiB a token by the engine's estimate): a 128K prompt on an idle H200
    runs in 32K chunks, a 5,000-token one in one pass; with 1 GiB free the chunk drops to 4K; with almost
    nothing free the smallest choice still runs (flat memory, never a refusal)."""
    from comparer.engines.mamba_fast import CHUNK_CHOICES, chunk_from_free

    per_token_b = 107 * 1024
    assert chunk_from_free(131072, 130 * 2**30, per_token_b) == 32768
    assert chunk_from_free(5000, 130 * 2**30, per_token_b) == 5000
    assert chunk_from_free(131072, 2**30, per_token_b) == 4096  # 4096 * 107 KiB = 428 MiB <= 512 MiB
    assert chunk_from_free(131072, 2**20, per_token_b) == CHUNK_CHOICES[-1] == 1024
    assert chunk_from_free(300, 2**20, per_token_b) == 300


def test_demo_mamba_engine_estimates_its_chunk_memory_from_the_config_and_records_the_chunk(offline_dirs):
    """The estimate follows the config and the dtype (6 values a channel of d_inner, 5 of hidden, x_proj's
    rows, a quarter more); an empty prompt is refused in words; the CPU runs 8,192-token chunks, and a fixed
    chunk_tokens wins."""
    from transformers import AutoModelForCausalLM

    from comparer.engines.mamba_fast import MambaFastEngine
    from comparer.engines.mamba_ops import TorchOps

    model = AutoModelForCausalLM.from_pretrained(offline_dirs["demo-mamba"], dtype=torch.float32).eval()
    cfg = model.config
    engine = MambaFastEngine(model, None, TorchOps(), cuda_graph=False)
    rows = cfg.time_step_rank + 2 * cfg.state_size
    fp32_b = (6 * cfg.intermediate_size + 5 * cfg.hidden_size + rows) * 4 * 5 // 4
    assert engine.activation_bytes_per_token() == fp32_b  # the model's dtype: 4 bytes a value here
    with pytest.raises(ValueError, match="empty"):
        engine.prefill([])
    assert engine.chunk_for(20000) == 8192 and engine.chunk_for(300) == 300
    engine.prefill(list(range(40, 75)))
    assert engine.last_chunk_tokens == 35
    engine.chunk_tokens = 16
    assert engine.chunk_for(35) == 16 and "chunks of 16 tokens" in engine.describe().prefill
