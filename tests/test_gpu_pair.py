"""Both fast engines through PairRun, the path the app uses, on one GPU (skipped without CUDA, the
mamba-ssm kernels and Triton): the same tokens as each alone in every mode, and in the default fair
race each pane's figures within 10 % of the same model measured alone by ``comparer.bench.measure``."""

import statistics
import time

import pytest
import torch

from comparer.kernels.available import mamba_kernels_available, module_available
from comparer.models.arch import FAST, SSM, TRANSFORMER
from comparer.settings import GenerationSettings

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
              pytest.mark.skipif(not (mamba_kernels_available() and module_available("triton")),
                                 reason="needs mamba-ssm, causal-conv1d and triton")]

PROMPT = "Maia gets ready for her next adventure. She finds a toy boat and"


def _pair(preset: str):
    from comparer.pool import ModelPool

    return ModelPool("cuda:0", random_weights=True, engine="auto", init_std=0.02).pair(preset)


@pytest.mark.parametrize("mode", ["auto", "shared"])
def test_auto_engines_stream_side_by_side_with_the_tokens_each_gives_alone(mode):
    from comparer.pair import PairRun

    models = _pair("small")
    assert all(m.card.path.engine == FAST and m.card.path.cuda_graph for m in models.values())
    assert models["left"].card.family == SSM and models["right"].card.family == TRANSFORMER
    settings = GenerationSettings(max_new_tokens=48, fixed_length=True)
    final = list(PairRun(models, PROMPT, settings, mode=mode))[-1]
    for side, model in models.items():
        alone = model.engine.generate(model.tokenizer(PROMPT)["input_ids"], settings).token_ids
        assert final[side].status == "done" and final[side].token_ids == alone
        assert len(set(alone)) > 1  # std-0.02 weights stay finite in fp16: not one token repeated


def test_fair_race_panes_show_each_paper_model_as_it_runs_alone():
    from comparer.bench import measure
    from comparer.pair import PairRun, prompt_ids_for

    models = _pair("paper")
    prompt = (PROMPT + " ") * 40  # ~500 byte tokens
    settings = GenerationSettings(max_new_tokens=256, fixed_length=True)
    list(PairRun(models, prompt, settings))  # warm-up race
    races = [list(PairRun(models, prompt, settings))[-1] for _ in range(7)]
    for side, model in models.items():
        ids = prompt_ids_for(model, prompt, 256)[0]
        point = measure.measure_point(model.engine, ids, 256, 7)
        pane_ttft = statistics.median(r[side].stats.ttft_s for r in races)
        pane_decode = statistics.median(r[side].stats.decode_tok_per_s for r in races)
        assert races[0][side].label == "alone, shown on one clock"
        assert abs(pane_decode / point.decode_tok_per_s.median - 1) < 0.10, (side, pane_decode,
                                                                             point.decode_tok_per_s.median)
        # TTFT here is 20-110 ms and host-bound; alone it scatters by +-20 % from run to run, so the
        # pane's median must lie within 10 % of the span the alone runs themselves covered
        low_s, high_s = min(point.ttft_s.values), max(point.ttft_s.values)
        assert 0.9 * low_s <= pane_ttft <= 1.1 * high_s, (side, pane_ttft, point.ttft_s.values)


def test_pane_memory_on_cuda_is_the_models_own_tensors_and_prefill_peak():
    from comparer.pair import PairRun

    models = _pair("small")
    final = list(PairRun(models, PROMPT, GenerationSettings(max_new_tokens=8, fixed_length=True)))[-1]
    for side, model in models.items():
        stats = final[side].stats
        own = sum(p.numel() * p.element_size() for p in model.engine.model.parameters())
        assert stats.weights_bytes >= own and stats.cache_bytes == model.engine.cache_bytes() > 0
        assert stats.workspace_bytes is not None and stats.workspace_bytes > 0
        assert "prefill peak, measured" in stats.memory_kind


def test_each_models_resident_bytes_are_its_own_and_add_up_to_the_device():
    """Both models loaded, as in the app's live sweep: each one's resident bytes (allocated while it
    loaded) hold at least its weights, the two add up to what the device holds, and a point measured
    beside the other model counts the same memory as that model alone would (not the device total)."""
    import gc

    from comparer.bench.measure import measure_point, random_prompt_ids

    gc.collect()
    torch.cuda.empty_cache()
    before_b = torch.cuda.memory_allocated()  # earlier tests' pools may still hold their pairs
    models = _pair("small")
    held_b = torch.cuda.memory_allocated() - before_b
    for model in models.values():
        assert model.resident_bytes >= model.engine.weight_bytes() + (model.engine.cache_bytes() or 0)
    assert abs(sum(m.resident_bytes for m in models.values()) - held_b) < 64 * 2**20
    left, right = models["left"], models["right"]
    prompt = random_prompt_ids(left.engine.vocab_size(), 512)
    point = measure_point(left.engine, prompt, 16, 1, own_before_b=left.own_bytes())
    assert left.resident_bytes <= point.model_peak_bytes < point.peak_allocated_bytes - right.resident_bytes / 2


def test_nvml_counts_energy_of_a_generation_and_the_benchmark_records_j_per_token():
    """The H200's NVML counter rises over a generation; a benchmark point carries J per prompt token and
    per generated token, positive and below what the board's 700 W for the run's whole time allows."""
    from comparer import energy
    from comparer.bench.measure import measure_point, random_prompt_ids

    models = _pair("small")
    left = models["left"]
    meter = energy.meter_for(left.card.device)
    assert meter is not None and "NVML" in meter.source
    prompt = random_prompt_ids(left.engine.vocab_size(), 2048)
    t0_s, e0_j = time.perf_counter(), meter.read_j()
    point = measure_point(left.engine, prompt, 64, 3, own_before_b=left.own_bytes())
    elapsed_s, used_j = time.perf_counter() - t0_s, meter.read_j() - e0_j
    assert used_j > 0
    assert 0 < point.prefill_j_per_token * 2048 < 700 * point.ttft_s.median * 1.5  # at most 700 W, with slack
    assert 0 < point.decode_j_per_token < 700 / point.decode_tok_per_s.median * 1.5
    assert used_j < 700 * elapsed_s
