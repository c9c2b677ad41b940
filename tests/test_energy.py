"""Energy per token: the arithmetic of the benchmark's split, RAPL's wrapping counter read from a powercap
tree laid out as the kernel's, and the pane strip showing J/token only where a counter measured it."""

import pytest

from comparer import energy
from comparer.bench.measure import energy_per_token


def test_decode_energy_excludes_the_prefill_each_decode_run_repeats():
    # a 1-token run used 5 J (100 prompt tokens); a run of 11 tokens 15 J, of which the same 5 J of prefill
    per_prompt, per_generated = energy_per_token(5.0, 15.0, context=100, new_tokens=11)
    assert per_prompt == pytest.approx(0.05) and per_generated == pytest.approx(1.0)
    assert energy_per_token(1.0, 2.0, 10, 1)[1] is None  # one token: no decode span


def test_energy_is_counted_over_a_span_long_enough_for_the_counter(offline_pair):
    """A counter that moves only every 0.25 s reads 0 J over one short run; runs repeated for a second
    give the true joules per run."""
    import time

    from comparer.bench import measure

    t0 = time.perf_counter()
    meter = energy.EnergyMeter(lambda: 100.0 * int((time.perf_counter() - t0) / 0.25) * 0.25, "coarse 100 W")
    engine = offline_pair["left"].engine
    started = time.perf_counter()
    per_run_j = measure._energy_per_run(engine, list(range(1, 40)), 4, None, meter)
    spent_s = time.perf_counter() - started
    assert spent_s >= measure.ENERGY_SPAN_S and per_run_j > 0


def _zone(root, name: str, uj: int, max_uj: int = 1000) -> None:
    zone = root / name
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "energy_uj").write_text(f"{uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")


def test_rapl_sums_packages_and_survives_the_counter_wrapping(tmp_path):
    _zone(tmp_path, "intel-rapl:0", 900)
    _zone(tmp_path, "intel-rapl:1", 100)
    _zone(tmp_path, "intel-rapl:0:0", 5)  # a sub-zone (cores) inside package 0: not counted twice
    meter = energy.rapl_meter(str(tmp_path))
    assert meter is not None and "2 package" in meter.source and meter.read_j() == 0.0
    _zone(tmp_path, "intel-rapl:0", 50)   # wrapped: 900 -> 1000 -> 50 is 150 uJ
    _zone(tmp_path, "intel-rapl:1", 400)  # 300 uJ
    assert meter.read_j() == pytest.approx(450e-6)


def test_no_counter_says_not_measured(tmp_path):
    assert energy.rapl_meter(str(tmp_path)) is None
    assert energy.meter_for("remote:http://x") is None


def test_the_strip_shows_j_per_token_only_where_a_counter_measured_it(offline_pair, monkeypatch):
    from comparer.pair import PairRun
    from comparer.settings import GenerationSettings
    from comparer.ui.panes import pane_outputs

    clock = iter(range(0, 10_000, 3))  # a counter that gains 3 J per read
    meter = energy.EnergyMeter(lambda: float(next(clock)), "test counter")
    monkeypatch.setattr(energy, "meter_for", lambda device: meter)
    final = list(PairRun(offline_pair, "Once upon a time", GenerationSettings(max_new_tokens=6, fixed_length=True)))[-1]
    _, _, left_md, _, stats = pane_outputs(final)
    assert "J/token" in left_md and stats["left"]["energy_j_per_token"] == pytest.approx(3 / 6)
    shared = list(PairRun(offline_pair, "Once upon a time", GenerationSettings(max_new_tokens=6), mode="shared"))[-1]
    assert "J/token" not in pane_outputs(shared)[2]  # sharing the device, no figure is one model's
    monkeypatch.setattr(energy, "meter_for", lambda device: None)  # this CPU: no RAPL exposed
    plain = list(PairRun(offline_pair, "Once upon a time", GenerationSettings(max_new_tokens=4)))[-1]
    assert "J/token" not in pane_outputs(plain)[2] and pane_outputs(plain)[4]["left"]["energy_j_per_token"] is None


def test_the_energy_plot_draws_j_per_token_per_model_and_is_absent_without_a_counter():
    from comparer.bench.plots import energy_figure, model_colours
    from comparer.bench.records import BenchRecord
    from comparer.paths import RECORDS_DIR

    record = BenchRecord.load(RECORDS_DIR / "cpu-offline-demo.json")
    assert energy_figure([record]) is None  # this CPU has no counter: no plot, not a plot of zeros
    for run in record.models:
        for i, point in enumerate(run.points):
            point.prefill_j_per_token, point.decode_j_per_token = 1e-3 * (i + 1), 0.05 + i * 1e-3
    figure = energy_figure([record])
    colours = model_colours([record])
    assert len(figure.data) == 2 * len(record.models)
    for trace in figure.data:
        assert trace.line.color == colours[trace.meta["model"]] and len(trace.x) == len(record.models[0].points)
    assert record.environment.energy_source in figure.layout.title.text
