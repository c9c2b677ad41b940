"""The Scaling tab's figure and choices, without a browser: which records are shown by default, one
colour per model, readable ticks, the stacked phone shape, the spread warning and the sweep's progress."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from comparer.bench.plots import (ATTENTION_COLOURS, BOUND_LEGEND, FIGURE_HEIGHT_PX, SSM_COLOURS,
                                  STACKED_HEIGHT_PX, context_label, context_ticks, log_ticks, model_colours,
                                  scaling_figure)
from comparer.bench.records import BenchRecord, Summary
from comparer.ui.scaling import (DEFAULT_RECORDS, STORED_DIR, ScalingService, StoredRecord, default_records,
                                 shown_line, spread_note, spread_warnings)

DEMO = "cpu-offline-demo.json"
CPU, H200 = "AMD EPYC (2 cores)", "NVIDIA H200"


def _load(*names: str) -> list[BenchRecord]:
    return [BenchRecord.load(STORED_DIR / n) for n in names]


def _stored(name, preset, device, models=("a", "b"), created="2026-12-01") -> StoredRecord:
    return StoredRecord(name, preset, device, tuple(models), created)


CATALOGUE = [_stored(n, "paper", H200, created="2026-11-28") for n in DEFAULT_RECORDS] + [
    _stored("h200-paper-newer.json", "paper", H200, created="2026-12-03"),
    _stored("cpu-offline.json", "offline", CPU),
    _stored("cpu-small-old.json", "small", CPU, created="2026-11-01"),
    _stored("cpu-small-new.json", "small", CPU, created="2026-12-02"),
    _stored("cpu-small-one-model.json", "small", CPU, models=("a",), created="2026-12-09"),
    _stored("h200-small.json", "small", H200, created="2026-12-09"),
]


def test_the_default_is_the_pair_on_screen_measured_on_this_device():
    assert default_records("offline", CPU, CATALOGUE) == ["cpu-offline.json"]
    # several of the pair on this device: the newest holding both models, not another device's newer one
    assert default_records("small", CPU, CATALOGUE) == ["cpu-small-new.json"]


def test_the_default_falls_back_to_another_device_then_to_the_h200_paper_pair():
    assert default_records("offline", H200, CATALOGUE) == ["cpu-offline.json"]
    assert default_records("small", "NVIDIA RTX PRO 6000", CATALOGUE) == ["h200-small.json"]
    assert default_records("seed", CPU, CATALOGUE) == DEFAULT_RECORDS
    assert default_records("paper", CPU, CATALOGUE) == DEFAULT_RECORDS  # the curated headline, not the newest


def test_the_shipped_records_give_the_demo_pair_its_cpu_record_and_say_whose_figures_they_are():
    stored = [StoredRecord.read(p) for p in sorted(STORED_DIR.glob("*.json"))]
    assert default_records("offline", CPU, stored) == [DEMO]
    record = BenchRecord.load(STORED_DIR / DEMO)
    assert record.preset == "offline" and record.environment.device_type == "cpu"
    assert {m.model_id for m in record.models} == {"demo-mamba", "demo-llama"}
    here = shown_line([DEMO], [record], record.environment.device_name)
    assert DEMO in here and "this machine" in here and "another machine" not in here
    elsewhere = shown_line([DEMO], [record], H200, preset="offline")
    assert "another machine's figures" in elsewhere and record.environment.device_name in elsewhere
    fallback = shown_line(DEFAULT_RECORDS, _load(*DEFAULT_RECORDS), CPU, preset="seed")
    assert fallback.startswith("No stored record of the seed pair") and "NVIDIA H200" in fallback


def test_the_scaling_default_follows_the_compare_pair_until_records_are_picked(tmp_path):
    service = ScalingService(pool=None, live_dir=tmp_path)
    choice, shown, *_ = service.follow_preset("paper", picked=False)
    assert choice["value"] == DEFAULT_RECORDS and "the paper pair" in shown
    untouched = service.follow_preset("paper", picked=True)
    assert len(untouched) == 6 and all(out.get("__type__") == "update" and len(out) == 1 for out in untouched)


def test_one_colour_per_model_across_records_and_every_bound_in_its_models_colour():
    records = _load(*DEFAULT_RECORDS)  # Mamba and Pythia eager, then each one's fast engine: 4 runs
    fig = scaling_figure(records)
    colours = model_colours(records)
    assert colours == {"state-spaces/mamba-2.8b-hf": SSM_COLOURS[0], "EleutherAI/pythia-6.9b": ATTENTION_COLOURS[0]}
    drawn = [t for t in fig.data if t.meta.get("model")]
    assert all(t.line.color == colours[t.meta["model"]] for t in drawn if t.line.color)
    bounds = [t for t in drawn if t.meta["kind"] == "bound"]
    assert {t.meta["model"] for t in bounds} == set(colours) and all(t.line.dash == "dash" for t in bounds)
    measured = [t for t in drawn if t.meta["kind"] == "measured"]
    for model in colours:  # the same model's two runs: one hue, two markers
        assert len({t.marker.symbol for t in measured if t.meta["model"] == model}) == 2
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert len(legend) == 4 + 1 and legend[-1] == BOUND_LEGEND  # one per model-run, one for all bounds


def test_context_ticks_are_powers_of_two_labelled_128_1k_128k():
    assert context_ticks([64, 256, 1024]) == [64, 128, 256, 512, 1024]
    assert context_ticks([512, 2048, 8192, 32768, 131072]) == [512, 2048, 8192, 32768, 131072]
    assert [context_label(v) for v in (128, 1024, 8192, 131072, 2**20)] == ["128", "1K", "8K", "128K", "1M"]
    assert len(context_ticks([1, 2**20])) <= 7


def test_log_ticks_are_full_numbers_in_order_at_decades_or_1_2_5():
    assert log_ticks([0.004, 0.14]) == [0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
    assert log_ticks([0.02, 100.0]) == [0.01, 0.1, 1.0, 10.0, 100.0]
    fig = scaling_figure(_load(DEMO))
    ttft = fig.layout.yaxis2
    assert ttft.type == "log" and ttft.tickmode == "array" and list(ttft.tickvals) == sorted(ttft.tickvals)
    assert list(ttft.ticktext) == [f"{v:g}" for v in ttft.tickvals]
    assert list(fig.layout.xaxis.ticktext) == ["64", "128", "256", "512", "1K"]


def test_the_figure_carries_a_stacked_shape_whose_panels_share_x_and_do_not_overlap_in_y():
    fig = scaling_figure(_load(*DEFAULT_RECORDS))
    wide, stacked = fig.layout.meta["wide"], fig.layout.meta["stacked"]
    assert wide["height"] == FIGURE_HEIGHT_PX == fig.layout.height and stacked["height"] == STACKED_HEIGHT_PX
    ys = sorted(stacked[f"yaxis{n}.domain"] for n in ("", "2", "3"))
    assert all(low[1] < high[0] for low, high in zip(ys, ys[1:]))
    assert all(stacked[f"xaxis{n}.domain"] == [0.0, 1.0] for n in ("", "2", "3"))
    xs = sorted(wide[f"xaxis{n}.domain"] for n in ("", "2", "3"))
    assert all(left[1] < right[0] for left, right in zip(xs, xs[1:]))


def test_the_memory_panel_reads_mib_for_the_demo_pair_and_gib_for_the_h200_pair():
    demo = scaling_figure(_load(DEMO))
    assert "(MiB)" in demo.layout.annotations[2].text
    peaks = [y for t in demo.data if t.meta.get("kind") == "measured" and t.yaxis == "y3" for y in t.y]
    assert 5 < min(peaks) and max(peaks) < 200  # tens of MiB, not 0.03
    assert "(GiB)" in scaling_figure(_load("h200-paper-random.json")).layout.annotations[2].text


def _with_values(record: BenchRecord, ttft_values: list[float]) -> BenchRecord:
    varied = copy.deepcopy(record)
    point = varied.models[0].points[0]
    point.ttft_s = Summary.from_values(ttft_values)
    point.decode_tok_per_s = Summary.from_values([100.0, 101.0, 102.0])
    for run in varied.models:
        for p in run.points[1:] if run is varied.models[0] else run.points:
            p.ttft_s = p.decode_tok_per_s = Summary.from_values([1.0, 1.0, 1.0])
    return varied


def test_a_spread_warning_names_the_points_whose_repeats_vary():
    record = _load(DEMO)[0]
    steady = _with_values(record, [0.10, 0.101, 0.102])
    assert spread_warnings(steady) == [] and spread_note([steady], live=True) == ""
    varied = _with_values(record, [0.10, 0.10, 0.15])  # p10 0.10, p90 0.14: 40 %
    model, context = varied.models[0].model_id, varied.models[0].points[0].context_tokens
    assert spread_warnings(varied) == [f"{model} TTFT at {context} tokens: 40 %"]
    note = spread_note([varied], live=True)
    assert "Runs vary" in note and "another process may be using the device" in note and "40 %" in note


def test_a_live_sweep_labels_its_progress_before_loading_the_pair(offline_pair, tmp_path):
    events = []

    class Pool:
        random_weights = False

        def pair(self, preset):
            events.append("pair loaded")
            return offline_pair

    def progress(fraction, desc=None):
        events.append((fraction, desc))

    service = ScalingService(Pool(), tmp_path)
    _plot, table, json_path, _csv = service.run_live("offline", "8", 2, 1, progress=progress)
    assert events[0] == (0, "loading the offline pair…") and events[1] == "pair loaded"
    point_labels = [e[1] for e in events[2:] if isinstance(e, tuple) and "points" in e[1]]
    assert point_labels[-1].startswith("2/2 points · demo-llama @ 8")
    assert Path(json_path).exists() and "demo-mamba" in table
    choice, shown = service.live_shown("offline")
    assert choice["value"] == [] and "live sweep" in shown and "offline" in shown


@pytest.mark.parametrize("name", sorted(p.name for p in STORED_DIR.glob("*.json")))
def test_every_stored_record_plots_with_one_legend_entry_per_run(name):
    record = BenchRecord.load(STORED_DIR / name)
    legend = [t.name for t in scaling_figure([record]).data if t.showlegend is not False]
    assert len(legend) == len(record.models) + 1
