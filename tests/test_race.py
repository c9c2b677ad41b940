"""The fair race: who computes when, and the one clock both panes are shown on.

A paced fake engine with known token costs (sleeping stands in for device work) records when it
computes, so the tests can check that two models never compute at once in alone mode, that every
token appears at its own run's offset, and that Stop ends every mode within a second."""

import threading
import time

import pytest

from comparer import race
from comparer.engines.base import GenerationResult, TokenEvent
from comparer.models.arch import KernelPath
from comparer.pair import PairRun, progress_line
from comparer.pool import side_devices
from comparer.settings import GenerationSettings
from tests.test_pair import MAIA, ScriptedEngine, fake


class PacedEngine(ScriptedEngine):
    """``ttft_s`` before the first token, ``token_s`` per later token; logs (name, start, end) of each run."""

    def __init__(self, name, ttft_s, token_s, log, n=20):
        super().__init__(n=n)
        self.name, self.ttft_s, self.token_s, self.log = name, ttft_s, token_s, log
        self.results = []

    def weight_bytes(self):
        return 4096

    def generate(self, prompt_ids, settings, on_token=None, stop=None):
        t0 = time.perf_counter()
        ids, times = [], []
        for i in range(min(self.n, settings.max_new_tokens)):
            if stop is not None and stop.is_set():
                break
            time.sleep(self.ttft_s if i == 0 else self.token_s)
            ids.append(i)
            times.append(time.perf_counter())
            if on_token is not None:
                on_token(TokenEvent(i, times[-1], 1000 + i))
        self.log.append((self.name, t0, time.perf_counter()))
        result = GenerationResult(ids, t0, times, stopped_early=stop is not None and stop.is_set())
        self.results.append(result)
        return result


def paced_pair(log, left=(0.05, 0.01), right=(0.02, 0.02), n=20):
    engines = {"left": PacedEngine("left", *left, log, n), "right": PacedEngine("right", *right, log, n)}
    return engines, {side: fake(engine, side) for side, engine in engines.items()}


def overlap_s(log) -> float:
    (_, a0, a1), (_, b0, b1) = log
    return max(0.0, min(a1, b1) - max(a0, b0))


def test_alone_mode_never_has_two_models_computing_at_once():
    log = []
    _, models = paced_pair(log)
    final = list(PairRun(models, MAIA, GenerationSettings(max_new_tokens=20), refresh_s=0.01))[-1]
    assert {p.status for p in final.values()} == {"done"}
    assert len(log) == 2 and overlap_s(log) == 0.0


def test_shared_mode_runs_both_at_once():
    log = []
    _, models = paced_pair(log)
    list(PairRun(models, MAIA, GenerationSettings(max_new_tokens=20), mode="shared", refresh_s=0.01))
    assert overlap_s(log) > 0.1


def test_both_panes_start_together_and_every_token_keeps_its_own_offset():
    log = []
    engines, models = paced_pair(log)
    run = PairRun(models, MAIA, GenerationSettings(max_new_tokens=20), refresh_s=0.01)
    final = list(run)[-1]
    assert final["left"].t_start_s == final["right"].t_start_s  # one clock, one start
    for side, engine in engines.items():
        own = engine.results[-1]
        shown = [t - final[side].t_start_s for t in final[side].token_times_s]
        assert shown == pytest.approx([t - own.t_start_s for t in own.token_times_s], abs=1e-9)
        assert final[side].stats.ttft_s == pytest.approx(own.ttft_s, abs=1e-9)
        own_decode = (len(own.token_times_s) - 1) / (own.token_times_s[-1] - own.token_times_s[0])
        assert final[side].stats.decode_tok_per_s == pytest.approx(own_decode, rel=1e-9)


def test_a_replayed_token_is_never_shown_early_nor_later_than_one_refresh():
    log = []
    _, models = paced_pair(log, left=(0.03, 0.01), right=(0.05, 0.03), n=30)
    refresh_s = 0.02
    run = PairRun(models, MAIA, GenerationSettings(max_new_tokens=30), refresh_s=refresh_s)
    checked = 0
    for panes in run:
        t_obs = time.perf_counter()
        first = panes[run.order[0]]
        if first.shift_s is None:
            continue
        times = first.token_times_s
        assert first.visible_tokens <= race.visible(times, t_obs)  # never before its time
        assert first.visible_tokens >= race.visible(times, t_obs - 3 * refresh_s)  # nor far behind
        checked += 1
    assert checked >= 20


def test_the_side_expected_to_finish_first_runs_first_so_the_race_lasts_the_sum_of_both_runs():
    log = []
    engines, models = paced_pair(log, left=(0.02, 0.03), right=(0.02, 0.005), n=20)  # right is faster
    models["left"].pace, models["right"].pace = race.Pace(0.02, 0.03), race.Pace(0.02, 0.005)
    t0 = time.perf_counter()
    run = PairRun(models, MAIA, GenerationSettings(max_new_tokens=20), refresh_s=0.01)
    list(run)
    wall_s = time.perf_counter() - t0
    assert run.order == ("right", "left") and [name for name, *_ in log] == ["right", "left"]
    runs_s = sum(end - start for _, start, end in log)
    assert wall_s < runs_s + 0.25  # not 2 x the slower run
    assert run.models["right"].pace.s_per_token == pytest.approx(0.005, abs=0.004)  # measured again


def test_while_one_model_is_measured_its_pane_shows_progress_and_the_other_waits():
    log = []
    _, models = paced_pair(log, left=(0.01, 0.01), right=(0.01, 0.01), n=40)
    run = PairRun(models, MAIA, GenerationSettings(max_new_tokens=40), refresh_s=0.01)
    seen = set()
    for panes in run:
        first, second = panes[run.order[0]], panes[run.order[1]]
        if first.status == "measuring" and 0 < len(first.token_ids) < 40:
            seen.add(progress_line(first).split(":")[0])
            assert progress_line(first) == f"measuring alone: {len(first.token_ids)} / 40 tokens"
            assert second.status == "waiting" and first.text == "" and first.stats.tokens == 0
    assert seen == {"measuring alone"}


@pytest.mark.parametrize("mode", ["alone", "shared"])
def test_stop_ends_a_paced_race_within_one_second_in_each_mode(mode):
    log = []
    _, models = paced_pair(log, left=(0.01, 0.01), right=(0.01, 0.01), n=100_000)
    run = PairRun(models, MAIA, GenerationSettings(max_new_tokens=4096), mode=mode, refresh_s=0.01)
    stop_at = {}
    threading.Timer(0.5, lambda: (stop_at.setdefault("t", time.perf_counter()), run.stop())).start()
    for panes in run:
        pass
    assert time.perf_counter() - stop_at["t"] < 1.0
    assert {p.status for p in panes.values()} == {"stopped"} and run.threads_alive == 0


def test_stop_during_the_replay_freezes_both_panes_where_they_are():
    log = []
    _, models = paced_pair(log, left=(0.01, 0.01), right=(0.01, 0.01), n=60)
    run = PairRun(models, MAIA, GenerationSettings(max_new_tokens=60), refresh_s=0.01)
    for panes in run:
        if panes[run.order[1]].visible_tokens >= 10:
            run.stop()
    first = panes[run.order[0]]
    assert first.status == "stopped" and 0 < first.visible_tokens < 60 == len(first.token_ids)


def test_alone_mode_gives_each_run_half_the_time_limit():
    run = PairRun(paced_pair([])[1], MAIA, GenerationSettings(max_new_tokens=5, max_time_s=10.0))
    assert run._run_settings().max_time_s == 5.0
    shared = PairRun(paced_pair([])[1], MAIA, GenerationSettings(max_new_tokens=5, max_time_s=10.0), mode="shared")
    assert shared._run_settings().max_time_s == 10.0


def test_pane_memory_is_the_cache_each_token_reports():
    _, models = paced_pair([], n=5)
    final = list(PairRun(models, MAIA, GenerationSettings(max_new_tokens=5)))[-1]
    assert all(p.stats.cache_bytes == 1004 for p in final.values())  # the fake reports 1000 + index


@pytest.mark.parametrize("requested, gpus, expected", [
    ("auto", (None, None), "alone"), ("auto", (0, 0), "alone"), ("auto", (0, 1), "per-gpu"),
    ("shared", (0, 0), "shared"), ("shared", (0, 1), "per-gpu"), ("alone", (0, 1), "alone"),
    ("shared", (None, None), "shared"),
])
def test_race_mode_follows_where_the_models_sit(requested, gpus, expected):
    placements = {side: race.Placement("cpu" if g is None else f"cuda:{g}", g) for side, g in zip(("left", "right"), gpus)}
    assert race.resolve_mode(requested, placements) == expected


def test_a_model_split_over_gpus_has_no_gpu_of_its_own():
    assert race.Placement.of("cuda:0", '{"model.layers.0": 0, "model.layers.1": 1}').gpu is None
    assert race.Placement.of("cuda:1", "cuda:1").gpu == 1 and race.Placement.of("cuda", "cuda").gpu == 0


def test_unknown_or_impossible_race_modes_say_what_to_use():
    with pytest.raises(race.RaceModeError, match="use one of"):
        race.resolve_mode("fastest", {})
    one_gpu = {side: race.Placement("cuda:0", 0) for side in ("left", "right")}
    with pytest.raises(race.RaceModeError, match="Use auto or alone"):
        race.resolve_mode("per-gpu", one_gpu)


def test_two_gpus_put_one_model_on_each_unless_a_device_is_named():
    assert side_devices(None, 2) == {"left": "cuda:0", "right": "cuda:1"}
    assert side_devices("cuda", 4) == {"left": "cuda:0", "right": "cuda:1"}
    assert side_devices("cuda:0", 2) == {"left": "cuda:0", "right": "cuda:0"}
    assert side_devices(None, 1) == {"left": None, "right": None}
    assert side_devices("cpu", 0) == {"left": "cpu", "right": "cpu"}


def test_labels_say_how_each_figure_was_made():
    assert race.mode_label("alone", race.Placement("cpu", None)) == "alone, shown on one clock"
    assert race.mode_label("per-gpu", race.Placement("cuda:1", 1)) == "alone on GPU 1"
    assert race.mode_label("shared", race.Placement("cuda:0", 0)) == "both at once, sharing one device"


def test_unequal_engines_are_said_above_both_panes_and_equal_ones_are_not():
    """A Mamba on transformers' reference scan beside a Transformer on comparer's engine: both panes carry
    the notice (in the stats strip and the API JSON), naming the engines except in blind mode, where they
    would tell the families apart."""
    from comparer.ui.panes import pane_outputs

    log = []
    for left_engine, right_engine, expect in (("comparer fast", "transformers generate, reference scan", True),
                                              ("comparer fast", "comparer fast", False)):
        _, models = paced_pair(log, n=3)
        for side, engine in (("left", left_engine), ("right", right_engine)):
            models[side].card.path = KernelPath(engine, "test kernels", "test prefill", "test decode")
        run = PairRun(models, MAIA, GenerationSettings(max_new_tokens=3), refresh_s=0.01)
        *_, panes = list(run)
        _, _, left_md, right_md, stats = pane_outputs(panes, blind=True)
        _, _, open_md, _, open_stats = pane_outputs(panes, blind=False)
        if expect:
            assert "unequal paths" in left_md and "unequal paths" in right_md
            # blind: the engines would tell the families apart, so they are named only after the vote
            assert "reference scan" not in left_md + str(stats) and "comparer fast" not in left_md + str(stats)
            assert "reference scan" in open_stats["left"]["notice"] and "comparer fast" in open_md
        else:
            assert stats["left"]["notice"] is None and "unequal" not in left_md
