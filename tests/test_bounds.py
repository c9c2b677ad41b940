"""The analytic bounds bound: no committed record point beats its bound, and the counts behind them
are the module's own (issue 21)."""

import pytest
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, MambaConfig, MambaForCausalLM

from comparer import analytic
from comparer.bench.plots import decode_bound, ttft_bound
from comparer.bench.records import BenchRecord
from comparer.models.arch import param_counts
from comparer.paths import RECORDS_DIR

RECORDS = sorted(RECORDS_DIR.glob("*.json"))


def _points(record):
    for run in record.models:
        for point in run.points:
            if point.status == "ok":
                yield run, point


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_no_committed_point_beats_its_ttft_or_decode_bound(path):
    """Every repeat, not just the median: the fastest TTFT is no shorter than the prefill's FLOPs at the
    device's peak rate, the fastest decode no quicker than bandwidth over the bytes a token must read."""
    record = BenchRecord.load(path)
    checked = 0
    for run, point in _points(record):
        assert min(point.ttft_s.values) >= ttft_bound(record, run.card, point.context_tokens), (run.model_id, point)
        assert max(point.decode_tok_per_s.values) <= decode_bound(record, run.card, point.context_tokens)
        checked += 1
    assert checked > 0


def test_the_bound_that_was_beaten_is_no_longer():
    """cpu-small-random-hf: Pythia-160M measured 2.29 s at 1,024 tokens against a 3.43 s 'bound' that
    counted the embedding and the LM head at every position."""
    record = BenchRecord.load(RECORDS_DIR / "cpu-small-random-hf.json")
    run = next(m for m in record.models if m.model_id == "EleutherAI/pythia-160m")
    point = next(p for p in run.points if p.context_tokens == 1024)
    card = run.card
    old = analytic.prefill_bound_s(2.0 * card["n_params"] * 1024 + 2.0 * card["n_layers"] * 768 * 1024**2,
                                   record.environment.measured_matmul_flops_per_s)
    assert old > point.ttft_s.median  # what the issue found
    assert ttft_bound(record, card, 1024) < min(point.ttft_s.values)


def test_param_counts_split_embedding_head_and_layers_tied_and_untied():
    mamba = MambaForCausalLM(MambaConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, state_size=4,
                                         tie_word_embeddings=True))
    counts = param_counts(mamba)
    assert counts.head == 100 * 16  # tied: the head is the embedding matrix, read every decode step
    assert counts.decode_read == counts.total == sum(p.numel() for p in mamba.parameters())
    layer_2d = sum(p.numel() for n, p in mamba.named_parameters() if p.dim() >= 2 and "embeddings" not in n)
    assert counts.layer_weights == layer_2d
    neox = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2,
                                            num_attention_heads=2, intermediate_size=32))
    counts = param_counts(neox)
    embed = neox.get_input_embeddings().weight.numel()
    assert counts.head == 100 * 16 and counts.decode_read == counts.total - embed + 16  # one row of it
    assert counts.layer_weights == sum(p.numel() for n, p in neox.named_parameters()
                                       if p.dim() >= 2 and "embed" not in n and "lm_head" not in n)


def test_prefill_flops_count_the_head_once_and_causal_pairs():
    assert analytic.prefill_flops(1000, 10) == 20_000
    assert analytic.prefill_flops(1000, 10, head_params=50) == 20_000 + 100
    # 2 layers, width 4, T = 10: 55 causal pairs x (QK^T + AV) x 2 FLOPs x width, per layer
    assert analytic.prefill_flops(0, 10, n_attn_layers=2, attn_width=4) == 2 * 55 * 2 * 2 * 4


def test_the_h200_bound_uses_its_datasheet_peak_and_the_cpu_what_its_vector_units_could_issue():
    """A measured CPU rate is not a ceiling: the 2026-12-03 reference run's Pythia-160M beat a bound made from
    its own record's measured rate (1.30 s against 1.53 s at 1,024 tokens)."""
    from comparer.bench.ceilings import CPU_MAX_CLOCK_HZ, cpu_peak, matmul_peak

    assert matmul_peak("NVIDIA H200", "float16", 7.5e14) == (989.4e12, "datasheet dense float16 peak of the NVIDIA H200")
    avx512 = cpu_peak("flags\t: fpu sse2 avx2 fma avx512f\n", logical_cpus=2)
    assert avx512.flops_per_s == 2 * 64 * CPU_MAX_CLOCK_HZ and "upper bound" in avx512.source
    assert cpu_peak("flags\t: sse2 avx2 fma\n", logical_cpus=4).flops_per_s == 4 * 32 * CPU_MAX_CLOCK_HZ
    rate, source = matmul_peak("AMD EPYC (2 cores)", "float32", 1.4e11, avx512)
    assert rate == avx512.flops_per_s > 1.4e11 and source == avx512.source
    assert matmul_peak("AMD EPYC (2 cores)", "float32", 1.4e11) == (1.4e11, "measured (best of the benchmark's "
                                                                     "matmul shapes; no datasheet entry)")


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_reserved_memory_is_never_below_allocated_in_a_record(path):
    """The allocator reserves what it allocates: a reserved peak below the allocated one means the two
    were read from different GPUs (the two-GPU record before the fix)."""
    for _, point in _points(BenchRecord.load(path)):
        if point.peak_reserved_bytes is not None and point.peak_allocated_bytes is not None:
            assert point.peak_reserved_bytes >= point.peak_allocated_bytes, point.context_tokens


def test_every_record_says_how_it_was_made():
    for path in RECORDS:
        record = BenchRecord.load(path)
        env = record.environment
        assert env.matmul_rate_source and env.git_commit and record.method
        assert ("synchronize" in record.method) == (env.device_type == "cuda"), path.name
        if env.device_name == "NVIDIA H200":  # run on the lent host's own stack, not the pins
            assert set(env.pinned_versions) == {"torch", "transformers", "python"}, path.name
