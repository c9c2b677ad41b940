"""The launched app, driven through gradio_client as an API user would."""

import os
import socket
import time

import pytest

gradio_client = pytest.importorskip("gradio_client")


def start_streaming(client, prompt: str, max_new_tokens: int = 1024):
    """Submit a long fixed-length comparison and return its job once a model is past its prefill
    (transformers' generate checks Stop only between tokens). In the fair race that is the first
    model being measured alone: its pane shows progress, not yet text."""
    job = client.submit(prompt, max_new_tokens=max_new_tokens, fixed_length=True, api_name="/compare")
    deadline = time.time() + 60
    while not _past_prefill(job) and time.time() < deadline:
        time.sleep(0.02)
    return job


def _past_prefill(job) -> bool:
    outputs = job.outputs()
    if not outputs:
        return False
    stats = outputs[-1][4]
    return any(isinstance(stats, dict) and stats.get(side, {}).get("produced_tokens", 0) > 0 for side in ("left", "right"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_compare_endpoint_returns_two_non_empty_texts_and_stats(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    left, right, left_md, right_md, stats, comparison_id = client.predict(
        "How far away is the moon?", max_new_tokens=12, fixed_length=True, api_name="/compare")
    assert left.strip() and right.strip()
    assert "TTFT" in left_md and "decode" in right_md and "alone, shown on one clock" in left_md
    assert stats["left"]["model_id"] == "demo-mamba" and stats["right"]["model_id"] == "demo-llama"
    assert stats["left"]["mode"] == stats["right"]["mode"] == "alone, shown on one clock"
    assert stats["left"]["weights_bytes"] > 0 and stats["right"]["cache_bytes"] > 0
    assert stats["left"]["tokens"] == stats["right"]["tokens"] == 12
    assert stats["left"]["status"] == stats["right"]["status"] == "done"
    assert len(comparison_id) == 32


def test_compare_both_at_once_is_an_explicit_option_named_in_every_pane(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    *_, stats, _ = client.predict("How far away is the moon?", max_new_tokens=8, fixed_length=True, race="shared",
                                  api_name="/compare")
    assert stats["left"]["mode"] == stats["right"]["mode"] == "both at once, sharing one device"
    with pytest.raises(Exception):  # not one of the radio's choices: refused before it is queued
        client.predict("How far away is the moon?", max_new_tokens=8, race="fastest", api_name="/compare")
    *_, stats, _ = client.predict("How far away is the moon?", max_new_tokens=4, api_name="/compare")
    assert stats["left"]["status"] == "done"  # and the app keeps serving


def test_compare_streams_intermediate_updates(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    job = client.submit("Write a silly story about an AI who fell in love", max_new_tokens=300,
                        fixed_length=True, api_name="/compare")
    job.result(timeout=120)
    updates = job.outputs()
    assert len(updates) > 2
    assert len(updates[0][0]) <= len(updates[-1][0])


def test_stop_endpoint_ends_a_running_comparison_within_a_second(app_url):
    """Timed on the server side (the app runs in this process): from the /stop request until both
    generation threads have ended; the client then sees both panes 'stopped'."""
    client = gradio_client.Client(app_url, verbose=False)
    job = start_streaming(client, open("prompts/maia.txt").read())
    assert _generation_threads()
    t0 = time.perf_counter()
    client.predict(api_name="/stop")
    while _generation_threads() and time.perf_counter() - t0 < 5:
        time.sleep(0.01)
    assert time.perf_counter() - t0 < 1.0
    final = job.result(timeout=30)
    assert final[4]["left"]["status"] == final[4]["right"]["status"] == "stopped"
    assert final[4]["left"]["tokens"] < 1024


def test_empty_prompt_is_a_clear_error_and_the_server_keeps_serving(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    with pytest.raises(Exception, match="prompt is empty"):
        client.predict("   ", api_name="/compare")
    assert client.predict("moon", max_new_tokens=4, api_name="/compare")[0]


def test_no_generation_thread_is_left_running_after_comparisons(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    client.predict("moon", max_new_tokens=8, api_name="/compare")
    time.sleep(0.2)
    assert not _generation_threads()


def test_scaling_live_sweep_through_the_api_returns_a_record_and_csv(app_url):
    import json

    client = gradio_client.Client(app_url, verbose=False)
    plot, table, json_path, csv_path = client.predict("offline", "8,16,32", 4, 1, api_name="/sweep")
    record = json.loads(open(json_path).read())
    assert [p["context_tokens"] for p in record["models"][0]["points"]] == [8, 16, 32]
    assert open(csv_path).read().count("\n") == 1 + 2 * 3
    assert "demo-mamba" in table


def test_scaling_live_sweep_rejects_bad_contexts_clearly(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    with pytest.raises(Exception, match="whole numbers"):
        client.predict("offline", "8,abc", 4, 1, api_name="/sweep")
    with pytest.raises(Exception, match="1 to 4096"):
        client.predict("offline", "100000", 4, 1, api_name="/sweep")
    with pytest.raises(Exception, match="at most 6 contexts"):  # the 4,096-context call that stalled the app
        client.predict("offline", ",".join(str(c) for c in range(1, 4097)), 4, 1, api_name="/sweep")
    with pytest.raises(Exception, match="at most 6 contexts"):
        client.predict("offline", "1,2,3,4,5,6,7", 4, 1, api_name="/sweep")


def test_a_live_sweep_ends_at_its_budget_or_on_stop_and_is_operator_only_when_public(offline_pair, tmp_path,
                                                                                   monkeypatch):
    """The sweep holds the generation slot, so it is bounded: past its time budget, or after Stop, it ends
    with the points measured so far and says so; on a public deployment it is refused unless opened."""
    import threading

    import gradio as gr

    from comparer.ui.app import _live_sweep_open
    from comparer.ui.scaling import ScalingService

    class Pool:
        random_weights = False

        def pair(self, preset):
            return offline_pair

    service = ScalingService(Pool(), tmp_path, budget_s=0.0)
    _plot, table, json_path, _csv = service.run_live("offline", "8,16,32", 4, 1, progress=lambda *a, **k: None)
    assert "ended early" in table and "budget" in table
    service = ScalingService(Pool(), tmp_path, budget_s=600)
    done = {}
    worker = threading.Thread(target=lambda: done.update(out=service.run_live(
        "offline", "1024,2048,4096", 64, 10, progress=lambda *a, **k: None)))
    worker.start()
    assert service.measuring.wait(60)
    time.sleep(0.3)
    service.stop_live()
    worker.join(30)
    assert not worker.is_alive() and "ended early by Stop" in done["out"][1]
    with pytest.raises(gr.Error, match="operator-only"):
        ScalingService(Pool(), tmp_path, live_sweep=False).run_live("offline", "8", 4, 1)
    monkeypatch.setenv("COMPARER_PUBLIC", "1")
    assert not _live_sweep_open()
    monkeypatch.setenv("COMPARER_LIVE_SWEEP", "1")
    assert _live_sweep_open()


def test_a_client_that_cancels_like_a_closed_tab_stops_both_generations(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    job = start_streaming(client, open("prompts/maia.txt").read())
    assert _generation_threads(), "the comparison should be running"
    job.cancel()
    deadline = time.time() + 3
    while _generation_threads() and time.time() < deadline:
        time.sleep(0.05)
    assert not _generation_threads()


def _generation_threads():
    """Generations still running on the lanes (comparer.lanes: long-lived, one task at a time)."""
    from comparer import lanes

    return lanes.running()


def test_ten_blind_comparisons_voted_tallied_and_exported_in_three_formats(app_url):
    import csv
    import json

    client = gradio_client.Client(app_url, verbose=False)
    votes = ["left", "right", "tie", "both_bad", "left", "left", "right", "left", "tie", "right"]
    ids = []
    for i, vote in enumerate(votes):
        *_, stats, cid = client.predict(f"blind prompt {i}", max_new_tokens=4, blind=True, api_name="/compare")
        assert stats["left"]["model_id"].startswith("Model A (hidden") and stats["right"]["model_id"].startswith("Model B")
        reveal, tally_md = client.predict(cid, vote, ["fluent"], f"note {i}", api_name="/vote")
        assert "demo-mamba" in reveal and "demo-llama" in reveal
        ids.append(cid)
    rows, tally_md, _ = client.predict("", "", "", api_name="/history")
    line = next(l for l in tally_md.splitlines() if "demo-mamba" in l)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert sum(int(c) for c in cells[2:6]) >= 10
    exported = {fmt: client.predict(fmt, api_name="/export")[0] for fmt in ("csv", "jsonl", "llm-comparator")}
    assert not any("gradio-cache" in text or os.getcwd() in text for text in exported.values())  # no server path
    csv_ids = {r["id"] for r in csv.DictReader(exported["csv"].splitlines())}
    jsonl = {json.loads(l)["id"]: json.loads(l) for l in exported["jsonl"].splitlines()}
    assert set(ids) <= csv_ids and set(ids) <= set(jsonl)
    assert all(jsonl[i]["blind"] and jsonl[i]["votes"][-1]["note"] for i in ids)
    comparator = json.loads(exported["llm-comparator"])
    assert {m["name"] for m in comparator["models"]} == {"demo-mamba", "demo-llama"}
    assert len(comparator["examples"]) >= 10


def test_vote_for_an_unknown_comparison_is_a_clear_error(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    with pytest.raises(Exception, match="No comparison with id"):
        client.predict("not-an-id", "left", [], "", api_name="/vote")


def test_reopen_shows_both_outputs_and_a_diff(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    left, right, *_, cid = client.predict("moon", max_new_tokens=6, api_name="/compare")
    prompt, left_out, right_out, header, diff = client.predict(cid, api_name="/reopen")
    assert (prompt, left_out, right_out) == ("moon", left, right)
    assert "demo-mamba" in header and "<span" in diff


def test_a_random_blind_pair_is_drawn_from_the_pairs_that_can_load_and_named_only_after_the_vote(app_url):
    """'random' draws a loadable offered pair (here, offline, 'small' cannot load, so the demo pair), runs it
    blind even with the box unticked, and the history hides pair and preset until the vote."""
    client = gradio_client.Client(app_url, verbose=False)
    *_, stats, cid = client.predict("random pair prompt", max_new_tokens=4, preset="random", blind=False,
                                    api_name="/compare")
    assert stats["left"]["model_id"].startswith("Model A (hidden") and stats["right"]["model_id"].startswith("Model B")
    rows, *_ = client.predict("", "", "", api_name="/history")
    row = next(r for r in rows["data"] if r[-1] == cid)
    assert "demo-" not in str(row) and row[1] == "hidden until a vote" and row[4] is True
    reveal, _ = client.predict(cid, "tie", [], "", api_name="/vote")
    assert "demo-mamba" in reveal and "demo-llama" in reveal
    rows, *_ = client.predict("", "", "", api_name="/history")
    assert next(r for r in rows["data"] if r[-1] == cid)[1] == "offline"


def test_the_random_draw_covers_every_loadable_pair_and_refuses_when_none_can_load(monkeypatch):
    from comparer.pool import ModelPool
    from comparer.ui.handlers import CompareService

    service = CompareService(ModelPool("cpu", random_weights=True), ["offline", "small"])
    assert service.loadable_presets() == ["offline", "small"]  # random weights build from the bundled configs
    assert {service._drawn("random") for _ in range(60)} == {"offline", "small"}
    assert CompareService(ModelPool("cpu"), ["offline", "small"]).loadable_presets() == ["offline"]  # no network
    monkeypatch.setattr("comparer.ui.handlers.why_not_loadable", lambda spec: "needs network")
    import gradio as gr

    with pytest.raises(gr.Error, match="pick a preset"):
        service._drawn("random")
