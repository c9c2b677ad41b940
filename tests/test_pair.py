import threading
import time

import pytest

from comparer.models.arch import ArchitectureCard, KernelPath
from comparer.engines.base import Engine, GenerationResult, TokenEvent
from comparer.engines.loaded import LoadedModel
from comparer.models.presets import ModelSpec
from comparer.pair import PairRun
from comparer.settings import GenerationSettings

MAIA = "Maia gets ready for her next adventure. She finds a toy boat and"


class CharTokenizer:
    def __call__(self, text):
        return {"input_ids": [ord(c) % 256 for c in text]}

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(97 + i % 26) for i in ids)


class ScriptedEngine(Engine):
    """Emits ``n`` tokens ``delay_s`` apart, optionally waiting on ``gate`` first or raising."""

    def __init__(self, n=20, delay_s=0.0, gate=None, fail_after=None):
        self.n, self.delay_s, self.gate, self.fail_after = n, delay_s, gate, fail_after
        self.card = ArchitectureCard("fake", "SSM", "fake", [], 1, 1, 1, "float32", "cpu", "cpu", 0, 0, "fake", "random")
        self.card.path = self.describe()
        self.device = "cpu"

    def describe(self):
        return KernelPath("scripted", "none", "none", "a token every delay_s")

    def generate(self, prompt_ids, settings, on_token=None, stop=None):
        t0 = time.perf_counter()
        if self.gate is not None:
            self.gate.wait(10)
        ids, times = [], []
        for i in range(self.n):
            if stop is not None and stop.is_set():
                break
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("injected failure")
            time.sleep(self.delay_s)
            ids.append(i)
            times.append(time.perf_counter())
            if on_token is not None:
                on_token(TokenEvent(i, times[-1]))
        return GenerationResult(ids, t0, times, stopped_early=stop is not None and stop.is_set())


def fake(engine, name):
    return LoadedModel(ModelSpec(name), engine, CharTokenizer(), 0.0)


def test_merge_never_holds_the_fast_side_back_for_the_slow_one():
    gate = threading.Event()
    run = PairRun({"left": fake(ScriptedEngine(n=20), "fast"), "right": fake(ScriptedEngine(gate=gate), "slow")},
                  MAIA, GenerationSettings(max_new_tokens=20), mode="shared", refresh_s=0.01)
    seen_fast_done_while_slow_blocked = False
    for panes in run:
        if panes["left"].status == "done" and not gate.is_set():
            seen_fast_done_while_slow_blocked = len(panes["left"].token_ids) == 20 and not panes["right"].token_ids
            gate.set()
    assert seen_fast_done_while_slow_blocked
    assert panes["right"].status == "done" and len(panes["right"].token_ids) == 20


@pytest.mark.parametrize("mode", ["alone", "shared"])
def test_snapshots_are_throttled_to_the_refresh_interval(mode):
    run = PairRun({"left": fake(ScriptedEngine(n=200, delay_s=0.001), "a"),
                   "right": fake(ScriptedEngine(n=200, delay_s=0.001), "b")},
                  MAIA, GenerationSettings(max_new_tokens=200), mode=mode, refresh_s=0.05)
    t0, count = time.perf_counter(), 0
    for _ in run:
        count += 1
    elapsed = time.perf_counter() - t0
    assert count <= elapsed / 0.05 + 2  # 400 tokens, far fewer UI updates


@pytest.mark.parametrize("mode", ["alone", "shared"])
def test_exception_in_one_engine_shows_in_its_pane_and_the_other_finishes(mode):
    run = PairRun({"left": fake(ScriptedEngine(n=30, fail_after=5), "broken"), "right": fake(ScriptedEngine(n=30), "ok")},
                  MAIA, GenerationSettings(max_new_tokens=30), mode=mode)
    for panes in run:
        pass
    assert panes["left"].status == "error" and "injected failure" in panes["left"].error
    assert panes["right"].status == "done" and len(panes["right"].token_ids) == 30
    assert run.threads_alive == 0


@pytest.mark.parametrize("mode", ["alone", "shared"])
def test_stop_ends_both_streams_within_one_second(offline_pair, mode):
    run = PairRun(offline_pair, MAIA, GenerationSettings(max_new_tokens=4096, fixed_length=True), mode=mode)
    stop_at = {}
    threading.Timer(1.0, lambda: (stop_at.setdefault("t", time.perf_counter()), run.stop())).start()
    for panes in run:
        pass
    assert time.perf_counter() - stop_at["t"] < 1.0
    assert {p.status for p in panes.values()} == {"stopped"}
    produced = sorted(len(p.token_ids) for p in panes.values())
    if mode == "shared":
        assert all(0 < n < 4096 for n in produced)
    else:  # the first model was being measured alone; the second never started
        assert produced[0] == 0 and 0 < produced[1] < 4096
    assert run.threads_alive == 0


@pytest.mark.parametrize("mode", ["alone", "shared"])
def test_closing_the_consumer_like_a_disconnect_stops_both_producers(mode):
    gates = [ScriptedEngine(n=10_000, delay_s=0.001), ScriptedEngine(n=10_000, delay_s=0.001)]
    run = PairRun({"left": fake(gates[0], "a"), "right": fake(gates[1], "b")}, MAIA,
                  GenerationSettings(max_new_tokens=4096), mode=mode, refresh_s=0.01)
    stream = iter(run)
    for _ in range(5):
        next(stream)
    stream.close()
    assert run.stop_event.is_set() and run.threads_alive == 0


@pytest.mark.parametrize("mode, label", [("auto", "alone, shown on one clock"),
                                         ("shared", "both at once, sharing one device")])
def test_pane_stats_report_ttft_and_decode_rate_from_timestamps_and_name_the_mode(offline_pair, mode, label):
    run = PairRun(offline_pair, MAIA, GenerationSettings(max_new_tokens=16, fixed_length=True), mode=mode)
    for panes in run:
        pass
    for side, pane in panes.items():
        s = pane.stats
        assert s.tokens == 16 and s.ttft_s > 0 and s.decode_tok_per_s > 0
        own_b = offline_pair[side].engine.weight_bytes()  # ~26 MiB each: the other model is not counted
        assert own_b <= s.memory_bytes < own_b + 8 * 2**20, (side, s.memory_bytes, own_b)
        expected = 15 / (pane.token_times_s[-1] - pane.token_times_s[0])
        assert abs(s.decode_tok_per_s - expected) < 1e-6
        assert s.label == label


@pytest.mark.parametrize("mode", ["alone", "shared"])
def test_a_producer_that_never_sends_does_not_hang_the_consumer(mode):
    gate = threading.Event()  # never set by the test: the right engine hangs before its first token
    run = PairRun({"left": fake(ScriptedEngine(n=5), "ok"), "right": fake(ScriptedEngine(gate=gate), "dead")},
                  MAIA, GenerationSettings(max_new_tokens=5), mode=mode, refresh_s=0.01, stall_timeout_s=0.5)
    t0 = time.perf_counter()
    for panes in run:
        pass
    assert time.perf_counter() - t0 < 8  # stall timeout + bounded join, never forever
    assert panes["left"].status == "done"
    assert panes["right"].status == "error" and "no token for" in panes["right"].error
    gate.set()


def test_a_run_cut_by_the_time_limit_is_stopped_with_a_warning_not_done(offline_pair):
    """Both engines (transformers generate and the fast Mamba's token loop) say when the time limit cut
    them; the pane is 'stopped' and says why, and the stored status is 'stopped: time limit'."""
    from comparer.engines.loaded import load_model
    from comparer.models.presets import ModelSpec
    from comparer.ui.panes import pane_outputs

    fast = load_model(ModelSpec("demo-mamba", local_dir=offline_pair["left"].spec.local_dir), "cpu", engine="auto")
    settings = GenerationSettings(max_new_tokens=1024, fixed_length=True, max_time_s=0.3)
    for engine in (fast.engine, offline_pair["right"].engine):
        result = engine.generate(list(range(5, 20)), settings)
        assert result.time_limited and len(result.token_ids) < 1024
    assert not fast.engine.generate(list(range(5, 20)), GenerationSettings(max_new_tokens=4)).time_limited
    run = PairRun(offline_pair, MAIA, settings, refresh_s=0.01)
    *_, panes = list(run)
    for pane in panes.values():
        assert pane.status == "stopped" and "time limit" in pane.warning
    *_, stats = pane_outputs(panes)
    assert "time limit" in stats["left"]["warning"]


def test_the_stored_status_comes_from_the_panes_not_their_wording():
    """A run cut while both panes were still measuring (shared mode) is stored 'stopped', not 'done';
    the time limit is read from the pane's flag."""
    from comparer.pair import PaneState
    from comparer.ui.panes import stored_result

    def panes(*states):
        return {side: PaneState(side, side, status=status, time_limited=limited)
                for side, (status, limited) in zip(("left", "right"), states)}

    assert stored_result(panes(("measuring", False), ("measuring", False))).status == "stopped"
    assert stored_result(panes(("done", False), ("done", False))).status == "done"
    assert stored_result(panes(("stopped", True), ("done", False))).status == "stopped: time limit"
    assert stored_result(panes(("error", False), ("done", False))).status == "error"
