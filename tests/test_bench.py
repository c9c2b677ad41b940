import json
import time
from types import SimpleNamespace

import pytest
import torch

from comparer.bench.__main__ import main as bench_main
from comparer.bench.run import run_bench, summary_table
from comparer.engines.base import Engine, GenerationResult
from comparer.engines.loaded import LoadedModel
from comparer.models.presets import ModelSpec
from comparer.paths import RECORDS_DIR
from comparer.bench.measure import measure_point, sweep
from comparer.bench.plots import FIGURE_HEIGHT_PX, scaling_figure
from comparer.bench.records import BenchRecord, Summary, to_csv
from tests.test_pair import ScriptedEngine

STORED = RECORDS_DIR


def test_summary_median_and_percentiles_from_values():
    s = Summary.from_values([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.median, s.p10, s.p90) == (3.0, 1.4, 4.6)


def test_sweep_of_the_demo_pair_at_three_contexts_yields_a_valid_record(tmp_path):
    record = run_bench("offline", [8, 32, 128], new_tokens=6, repeats=2, random_weights=False, device="cpu")
    record.save(tmp_path / "run.json")
    loaded = BenchRecord.load(tmp_path / "run.json")
    assert [m.model_id for m in loaded.models] == ["demo-mamba", "demo-llama"]
    assert loaded.weights == "trained (the shipped demo pair)" and loaded.environment.device_type == "cpu"
    assert loaded.environment.measured_bandwidth_bytes_per_s > 0
    for run in loaded.models:
        assert run.warmup_s > 0 and run.card["kernel_path"]
        assert [p.context_tokens for p in run.points] == [8, 32, 128]
        for p in run.points:
            assert p.status == "ok" and len(p.ttft_s.values) == 2 and p.decode_tok_per_s.median > 0
            assert p.peak_rss_bytes > 0


class OomAtLongContext(Engine):
    """Raises CUDA's out-of-memory error past ``limit`` prompt tokens, as a too-long KV cache would."""

    def __init__(self, limit):
        self.inner, self.limit, self.device = ScriptedEngine(n=10), limit, "cpu"
        self.card = self.inner.card
        self.model = SimpleNamespace(config=SimpleNamespace(vocab_size=100))

    def weight_bytes(self):
        return 0

    def describe(self):
        return self.inner.describe()

    def generate(self, prompt_ids, settings, on_token=None, stop=None):
        if len(prompt_ids) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")
        return self.inner.generate(prompt_ids, settings, on_token, stop)


def test_a_point_counts_its_own_model_memory_not_another_models_loaded_beside_it(offline_pair):
    """The live sweep keeps both models loaded: 300 MB held by 'the other model' grows the process peak
    but not this model's figure, which is at least its weights."""
    engine = offline_pair["left"].engine
    prompt = list(range(64))
    alone = measure_point(engine, prompt, new_tokens=4, repeats=1)
    other = torch.ones(300 * 2**20 // 4)  # touched: resident
    beside = measure_point(engine, prompt, new_tokens=4, repeats=1)
    assert beside.peak_rss_bytes - alone.peak_rss_bytes > 250 * 2**20
    assert abs(beside.model_peak_bytes - alone.model_peak_bytes) < 50 * 2**20
    assert beside.model_peak_bytes >= engine.weight_bytes() and float(other[0]) == 1.0


def test_out_of_memory_at_one_context_is_recorded_and_the_sweep_goes_on():
    model = LoadedModel(ModelSpec("fake"), OomAtLongContext(limit=100), None, 0.0)
    run = sweep(model, [10, 1000, 50], new_tokens=5, repeats=2)
    assert [p.status for p in run.points] == ["ok", "oom", "ok"]
    assert "out of memory" in run.points[1].error and run.points[1].decode_tok_per_s is None


class FixedClockEngine(Engine):
    """Reports tokens at fixed times: first token 0.5 s after start, then one every 0.1 s."""

    def __init__(self):
        self.inner = ScriptedEngine()
        self.card, self.device = self.inner.card, "cpu"

    def describe(self):
        return self.inner.describe()

    def generate(self, prompt_ids, settings, on_token=None, stop=None):
        n = settings.max_new_tokens
        return GenerationResult(list(range(n)), 100.0, [100.5 + 0.1 * i for i in range(n)])


def test_ttft_is_the_first_token_and_decode_rate_excludes_it():
    point = measure_point(FixedClockEngine(), [1, 2, 3], new_tokens=5, repeats=2)
    assert point.ttft_s.median == pytest.approx(0.5)
    assert point.decode_tok_per_s.median == pytest.approx(10.0)  # 4 gaps of 0.1 s, not 5 tokens / 0.9 s


@pytest.mark.parametrize("name", sorted(p.name for p in STORED.glob("*.json")))
def test_plots_build_from_every_stored_record_without_a_gpu(name):
    record = BenchRecord.load(STORED / name)
    fig = scaling_figure([record])
    assert fig.layout.height == FIGURE_HEIGHT_PX
    measured = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(measured) == 3 * len(record.models)
    assert f"weights {record.weights}" in fig.layout.title.text.replace("<br>", " ")
    assert record.environment.device_name in fig.layout.title.text
    assert len(to_csv(record).splitlines()) == 1 + sum(len(m.points) for m in record.models)
    assert record.models[0].card["kernel_path"] in summary_table(record)


def test_stored_h200_paper_record_is_labelled_random_weights_on_an_h200():
    record = BenchRecord.load(STORED / "h200-paper-random.json")
    assert record.weights == "random (exact configs)" and "H200" in record.environment.device_name
    assert {m.model_id for m in record.models} == {"state-spaces/mamba-2.8b-hf", "EleutherAI/pythia-6.9b"}
    assert {p.context_tokens for m in record.models for p in m.points} == {512, 2048, 8192, 32768, 131072}


def test_bench_command_line_writes_json_and_html(tmp_path):
    out, html = tmp_path / "run.json", tmp_path / "run.html"
    assert bench_main(["--preset", "offline", "--contexts", "8,16,32", "--new-tokens", "4", "--repeats", "1",
                       "--device", "cpu", "--out", str(out), "--plot", str(html)]) == 0
    assert len(json.loads(out.read_text())["models"]) == 2
    assert "plotly" in html.read_text()


def test_bench_command_line_reports_an_unknown_preset(tmp_path, capsys):
    assert bench_main(["--preset", "nope", "--out", str(tmp_path / "x.json")]) == 2
    assert "Unknown preset" in capsys.readouterr().err


def test_cpu_peak_rss_sees_a_transient_allocation_freed_before_the_read():
    from comparer import memory

    memory.reset_peak("cpu")
    before = memory.process_rss_bytes()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    time.sleep(0.1)
    del block
    time.sleep(0.05)
    peak = memory.peak_bytes("cpu")["rss_bytes"]
    assert peak - before > 48 * 2**20


def test_a_stored_record_says_whose_figures_it_shows_when_shown_elsewhere():
    """On a Space (or any machine) the H200 records are labelled as the H200's, not this machine's GPU."""
    from comparer.bench.records import BenchRecord
    from comparer.ui.scaling import provenance_line

    record = BenchRecord.load("assets/benchmarks/records/h200-paper-mamba-triton.json")
    elsewhere = provenance_line(record, "NVIDIA RTX PRO 6000 Blackwell")
    assert "NVIDIA H200" in elsewhere and "not of this one" in elsewhere and "RTX PRO 6000" in elsewhere
    assert "this machine" in provenance_line(record, record.environment.device_name)


class RecordingEngine(FixedClockEngine):
    """FixedClockEngine that logs each call; its first generation (the warm-up) is ten times slower."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def generate(self, prompt_ids, settings, on_token=None, stop=None):
        self.log.append(("generate", len(prompt_ids), settings.max_new_tokens))
        slow = 10.0 if len([e for e in self.log if e[0] == "generate"]) == 1 else 1.0
        n = settings.max_new_tokens
        return GenerationResult(list(range(n)), 100.0, [100.0 + slow * (0.5 + 0.1 * i) for i in range(n)])


def test_the_warm_up_runs_at_the_measured_length_is_excluded_and_every_timer_follows_a_sync(monkeypatch):
    from comparer.bench import measure

    log = []
    monkeypatch.setattr(measure, "_sync", lambda device: log.append(("sync",)))
    point = measure_point(RecordingEngine(log), [1, 2, 3], new_tokens=6, repeats=3)
    generations = [e for e in log if e[0] == "generate"]
    assert generations[0] == ("generate", 3, 6)  # warm-up: the measured prompt and length
    assert len(generations) == 1 + 3 + 3  # warm-up, TTFT repeats, decode repeats
    assert all(log[i - 1] == ("sync",) for i, e in enumerate(log) if e[0] == "generate")
    assert point.ttft_s.values == pytest.approx([0.5] * 3)  # the 5 s warm-up TTFT is in no figure
    assert point.decode_tok_per_s.values == pytest.approx([10.0] * 3)


def test_bandwidth_reads_in_units_that_do_not_round_to_zero():
    from comparer.bench.run import bandwidth_text

    assert bandwidth_text(17.5e9) == "17.5 GB/s" and bandwidth_text(4.2e12) == "4.20 TB/s"
    assert "GB/s" in summary_table(BenchRecord.load(STORED / "cpu-small-auto.json"))


def test_the_plot_says_where_a_fast_transformer_counts_its_preallocated_cache():
    from comparer.bench.plots import preallocated_cache_models

    fast = BenchRecord.load(STORED / "h200-paper-pythia-fast.json")
    assert preallocated_cache_models([fast]) == ["EleutherAI/pythia-6.9b"]
    assert preallocated_cache_models([BenchRecord.load(STORED / "h200-paper-random.json")]) == []
    notes = [a.text for a in scaling_figure([fast]).layout.annotations]
    assert any("KV cache preallocated" in text for text in notes)


def test_every_dashed_bound_has_its_models_colour():
    fig = scaling_figure([BenchRecord.load(STORED / "h200-paper-random.json")])
    colours = {}
    for trace in fig.data:
        if trace.meta.get("model"):
            colours.setdefault(trace.meta["model"], set()).add(trace.line.color)
    assert all(len(c) == 1 for c in colours.values()), colours
    bounds = [t for t in fig.data if t.meta.get("kind") == "bound"]
    assert bounds and all(t.line.dash == "dash" for t in bounds)


def test_a_preset_sweep_frees_each_model_before_loading_the_next(monkeypatch):
    """run_bench measures one model at a time: by the time the second is loaded, the first is gone."""
    import gc
    import weakref

    from comparer.bench import run as bench_run

    alive = []

    def fake_load(spec, device, engine, max_context_tokens):
        gc.collect()
        alive.append(sum(r() is not None for r in refs))
        model = LoadedModel(spec, OomAtLongContext(limit=10**9), None, 0.0)
        refs.append(weakref.ref(model))
        return model

    refs = []
    monkeypatch.setattr(bench_run, "load_model", fake_load)
    monkeypatch.setattr(bench_run, "environment", lambda device, dtype: None)
    monkeypatch.setattr(bench_run, "method_for", lambda device_type: "")
    monkeypatch.setattr(bench_run, "new_record", lambda *a: BenchRecord("small", "w", None, {"contexts": [8]}))
    bench_run.run_bench("small", [8], 3, 1, random_weights=True, device="cpu")
    assert alive == [0, 0]


def test_a_sweep_record_says_what_each_memory_figure_counts(tmp_path):
    """Each memory field of a point is named in the record for its device, and every ok point carries
    the model's own figure (what the plots and tables show), at least its weights."""
    record = run_bench("offline", [8, 32], new_tokens=4, repeats=1, random_weights=False, device="cpu")
    assert set(record.memory_counts) == {"model_peak_bytes", "peak_rss_bytes"}
    assert "this model only" in record.memory_counts["model_peak_bytes"]
    assert "whole process" in record.memory_counts["peak_rss_bytes"]
    for run in record.models:
        assert run.weight_bytes > 0 and run.resident_bytes is None  # CPU: its tensors are counted
        for p in run.points:
            assert run.weight_bytes <= p.model_peak_bytes < p.peak_rss_bytes


def _param_bytes(card: dict) -> int:
    from comparer import analytic
    return card["n_params"] * analytic.dtype_bytes(card["dtype"])


@pytest.mark.parametrize("path", sorted(STORED.glob("*.json")), ids=lambda p: p.name)
def test_every_committed_memory_figure_is_the_models_own(path):
    """No point of a committed record shows a device total or a process RSS as a model's memory: each
    ok point has model_peak_bytes, at least the model's weights and (on CUDA) at most the device peak,
    and the record names what it counts."""
    record = BenchRecord.load(path)
    assert "this model only" in record.memory_counts["model_peak_bytes"]
    for run in record.models:
        for p in run.points:
            if p.status != "ok":
                continue
            assert p.model_peak_bytes is not None, (run.model_id, p.context_tokens)
            assert p.model_peak_bytes >= 0.99 * _param_bytes(run.card), (run.model_id, p.context_tokens)
            cache_b = run.card["kv_bytes_per_token"] * (p.context_tokens + p.new_tokens) + run.card["ssm_state_bytes"]
            if run.card["family"] == "Transformer" and record.environment.device_type == "cpu":
                # the KV cache is in the figure (a reused RSS showed none: the demo Llama read flat)
                assert p.model_peak_bytes >= run.weight_bytes + cache_b, (run.model_id, p.context_tokens)
            if record.environment.device_type == "cuda":
                assert p.model_peak_bytes <= p.peak_allocated_bytes, (run.model_id, p.context_tokens)
            else:
                assert p.model_peak_bytes < p.peak_rss_bytes, (run.model_id, p.context_tokens)


def test_the_pair_record_measured_beside_mamba_shows_pythia_without_mamba():
    """h200-paper-fast-schema3: Pythia ran while Mamba-2.8B (5.3 GiB) was still allocated; its figure
    is the device peak minus Mamba's resident bytes, not the device peak."""
    record = BenchRecord.load(STORED / "h200-paper-fast-schema3.json")
    mamba, pythia = record.models
    mamba_resident = mamba.points[0].baseline_allocated_bytes
    for p in pythia.points:
        assert p.model_peak_bytes == p.peak_allocated_bytes - mamba_resident
