"""Hostile input, injected faults, load, cancels: through gradio_client against a launched app."""

import json
import math
import threading
import time
from pathlib import Path

import pytest

from comparer import lanes
from comparer.models.presets import get_preset
from comparer.validation import InputError, check_prompt, prompt_token_limit, trim_prompt_ids
from tests.test_app_api import _free_port, start_streaming

gradio_client = pytest.importorskip("gradio_client")
QUEUE_MAX = 6


@pytest.fixture(scope="module")
def app(offline_dirs, tmp_path_factory):
    from comparer.ui.app import create_app, launch_kwargs
    from comparer.ui.handlers import Limits
    demo = create_app("offline", "offline,small", "cpu", db_path=tmp_path_factory.mktemp("db") / "r.sqlite",
                      limits=Limits(max_time_s=60, per_session_per_min=10_000, per_address_per_min=10_000))
    port = _free_port()
    demo.queue(max_size=QUEUE_MAX).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                          ssr_mode=False, quiet=True, **launch_kwargs())
    demo.url = f"http://127.0.0.1:{port}/"
    yield demo
    demo.close()


def _error_text(err: Exception) -> str:
    response = getattr(err, "response", None)
    if response is not None:
        return json.loads(response.text).get("detail", response.text)
    return str(err)


GRADIO_FIRST = ("less than minimum value", "greater than maximum value", "not in the list of choices",
                "Could not preprocess input component", "not JSON compliant")
HOSTILE = [
    dict(prompt=""), dict(prompt="   "), dict(prompt="\n\t\n"), dict(prompt="a\x00b"), dict(prompt="\x1b[31mred"),
    dict(prompt="ring\x07"), dict(prompt="c1 \x85 control"), dict(prompt="x" * 150_000), dict(prompt=None),
    dict(prompt="\x7f delete"), dict(prompt="\u0000" * 10), dict(max_new_tokens=0), dict(max_new_tokens=-5),
    dict(max_new_tokens=10**9), dict(max_new_tokens="many"), dict(max_new_tokens=1.5), dict(temperature=0),
    dict(temperature=-1), dict(temperature=1e9), dict(temperature=math.nan), dict(top_p=0), dict(top_p=2),
    dict(top_k=-3), dict(top_k="k"), dict(repetition_penalty=0), dict(repetition_penalty=100), dict(seed=-1),
    dict(seed="s"), dict(do_sample="yes"), dict(fixed_length="no"), dict(preset="nope"),
    dict(preset="../../etc/passwd"), dict(blind="maybe"), dict(top_p=math.inf), dict(race="sideways"),
]


@pytest.mark.parametrize("bad", HOSTILE, ids=[str(list(b.items())[0])[:40] for b in HOSTILE])
def test_hostile_input_gets_a_clear_error_and_the_server_keeps_serving(app, bad):
    client = gradio_client.Client(app.url, verbose=False)
    kwargs = {"prompt": "fine prompt", "max_new_tokens": 4, **bad}
    with pytest.raises(Exception) as info:
        client.predict(**kwargs, api_name="/compare")
    message = _error_text(info.value)
    field = next(iter(bad))
    if field in message.lower():  # our validator: names the input that failed and says what it wants
        assert any(w in message for w in ("must", "between", "limit", "empty", "remove it", "Choose one of")), message
    else:  # Gradio's own component check ran first (API calls only; the UI cannot send these values): it
        # names the bound or the choices but not the input (filed as an issue); NaN and inf do not leave
        # gradio_client, which refuses to encode them
        assert any(w in message for w in GRADIO_FIRST), message
    assert "Traceback" not in message and "Exception" not in message
    assert app.comparer.service.active_runs() == 0
    assert client.predict("still serving?", max_new_tokens=2, api_name="/compare")[4]["left"]["status"] == "done"


class BrokenEngine:
    """Test hook: wraps a real engine and raises after a few tokens, as an OOM inside generate would."""

    def __init__(self, inner):
        self.inner, self.card, self.device, self.released = inner, inner.card, inner.device, 0

    def generate(self, prompt_ids, settings, on_token=None, stop=None):
        def exploding(event, seen=[]):
            seen.append(event)
            if len(seen) == 3:
                raise RuntimeError("CUDA out of memory (injected by the test)")
            on_token(event)

        return self.inner.generate(prompt_ids, settings, exploding, stop)

    def release(self):
        self.released += 1

    def __getattr__(self, name):  # everything else (weights and cache bytes, model) is the real engine's
        return getattr(self.inner, name)


def test_a_failure_in_one_engine_shows_in_its_pane_and_the_other_finishes(app):
    models = app.comparer.pool.pair("offline")
    original = models["left"].engine
    models["left"].engine = BrokenEngine(original)
    try:
        client = gradio_client.Client(app.url, verbose=False)
        *_, stats, _ = client.predict("moon", max_new_tokens=16, fixed_length=True, api_name="/compare")
        assert stats["left"]["status"] == "error" and "out of memory" in stats["left"]["error"]
        assert stats["right"]["status"] == "done" and stats["right"]["tokens"] == 16
        assert models["left"].engine.released == 1
    finally:
        models["left"].engine = original
    assert client.predict("moon", max_new_tokens=4, api_name="/compare")[4]["left"]["status"] == "done"


def test_sixteen_concurrent_clients_each_finish_or_are_told_the_queue_is_full(app):
    results, bound_s = [], 180

    def one(i):
        client = gradio_client.Client(app.url, verbose=False)
        t0 = time.perf_counter()
        try:
            client.predict(f"client {i}", max_new_tokens=24, fixed_length=True, api_name="/compare")
            results.append(("done", time.perf_counter() - t0))
        except Exception as err:
            results.append(("full" if "queue is full" in _error_text(err).lower() else _error_text(err),
                            time.perf_counter() - t0))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(bound_s)
    assert len(results) == 16, "a client hung"
    outcomes = [r for r, _ in results]
    assert set(outcomes) <= {"done", "full"} and outcomes.count("done") >= QUEUE_MAX
    assert max(s for _, s in results) < bound_s


def _submit_and_cancel(client, i):
    start_streaming(client, f"cancel me {i}").cancel()


def test_fifty_cancels_leave_no_generation_thread_behind(app):
    client = gradio_client.Client(app.url, verbose=False)
    for i in range(3):  # warm the server's and the client's worker pools before taking the baseline
        _submit_and_cancel(client, i)
    time.sleep(1)
    baseline = threading.active_count()
    for i in range(50):
        _submit_and_cancel(client, i)
    deadline = time.time() + 15
    while time.time() < deadline and (lanes.running() or app.comparer.service.active_runs()):
        time.sleep(0.1)
    assert lanes.running() == 0 and len([t for t in threading.enumerate() if t.name.startswith("lane-")]) <= 3
    assert app.comparer.service.active_runs() == 0
    assert threading.active_count() <= baseline + 4  # client/server worker pools may grow a little


def test_a_prompt_beyond_the_transformers_positions_is_trimmed_with_a_visible_warning(app):
    client = gradio_client.Client(app.url, verbose=False)
    prompt = open("prompts/long_lighthouse.txt").read() * 6  # ~13,000 words, far beyond 2,048 positions
    _, _, left_md, right_md, stats, _ = client.predict(prompt, max_new_tokens=8, api_name="/compare")
    transformer = next(s for s in stats.values() if s["model_id"] == "demo-llama")
    positions = json.loads((Path(get_preset("offline").right.local_dir) / "config.json").read_text())[
        "max_position_embeddings"]
    assert transformer["warning"].startswith(f"prompt trimmed: kept the last {positions - 8:,}")
    assert "prompt trimmed" in left_md + right_md


def test_session_rate_limit_tells_the_visitor_how_long_to_wait():
    import gradio as gr

    from comparer.ui.handlers import CompareService, Limits

    service = CompareService(pool=None, presets=["offline"], limits=Limits(per_session_per_min=3))
    for _ in range(3):
        service._rate_check("s1")
    with pytest.raises(gr.Error, match="Too many comparisons from this session"):
        service._rate_check("s1")
    service._rate_check("s2")  # other visitors are unaffected


def test_new_sessions_from_one_address_do_not_escape_the_limit_and_forwarded_for_counts_only_when_trusted(app):
    """Every raw HTTP call is a new session: the address limit still applies (35 of 35 got through before)."""
    import gradio as gr

    from comparer.ui.handlers import CompareService, Limits, _client_address

    service = CompareService(pool=None, presets=["offline"], limits=Limits(per_session_per_min=30,
                                                                           per_address_per_min=5))
    for n in range(5):
        service._rate_check(f"fresh-session-{n}", "203.0.113.7")
    with pytest.raises(gr.Error, match="from your address"):
        service._rate_check("yet-another-session", "203.0.113.7")
    service._rate_check("other", "198.51.100.1")

    class Request:
        headers = {"x-forwarded-for": "203.0.113.9, 10.0.0.1"}
        client = type("Client", (), {"host": "10.0.0.1"})()
    assert _client_address(Request(), trust_proxy=True) == "203.0.113.9"
    assert _client_address(Request(), trust_proxy=False) == "10.0.0.1"  # a forged header counts for nothing


def test_prompt_checks_and_trimming_units():
    with pytest.raises(InputError, match="U\\+001B"):
        check_prompt("esc \x1b")
    assert check_prompt("tabs\tand\nnewlines\r fine") == "tabs\tand\nnewlines\r fine"
    assert prompt_token_limit(2048, 128, app_cap=32768) == 1920
    assert prompt_token_limit(None, 128, app_cap=500) == 500
    ids, warning = trim_prompt_ids(list(range(10)), 4)
    assert ids == [6, 7, 8, 9] and "last 4 of 10" in warning
    assert trim_prompt_ids([1, 2], 4) == ([1, 2], None)


def test_model_ids_come_only_from_the_presets_unless_free_entry_is_enabled(offline_dirs, tmp_path):
    from comparer.ui.app import create_app

    for free_entry in (False, True):
        demo = create_app("offline", "offline", "cpu", db_path=tmp_path / f"{free_entry}.db",
                          free_entry=free_entry)
        port = _free_port()
        demo.queue(max_size=4).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                      ssr_mode=False, quiet=True)
        try:
            client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
            endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
            assert ("/load_custom" in endpoints) is free_entry
            with pytest.raises(Exception) as info:
                client.predict("hi", preset="custom", api_name="/compare")
            assert "custom" in _error_text(info.value)
            if free_entry:
                with pytest.raises(Exception, match="not a Hub model id"):
                    client.predict("../../etc", "a/b", api_name="/load_custom")
        finally:
            demo.close()


def test_zerogpu_path_imports_and_runs_on_the_cpu_when_spaces_is_present(offline_dirs, tmp_path, monkeypatch):
    """With ``spaces`` installed and ZeroGPU forced, one @spaces.GPU generator streams both models;
    its arguments and every yielded value must pickle (ZeroGPU sends them between processes)."""
    import pickle

    pytest.importorskip("spaces")
    from comparer.engines import deferred
    from comparer.ui import zerogpu
    from comparer.ui.app import create_app

    monkeypatch.setenv("COMPARER_ZEROGPU", "1")
    demo = create_app("offline", "offline", "cpu", db_path=tmp_path / "z.db")
    service = demo.comparer.service
    assert service.gpu_stream is not None
    # weights loaded at start, engines not built: ZeroGPU allows no GPU work outside the task
    models = demo.comparer.pool.pair("offline")
    assert all(not m.engine.is_built() and deferred.NOTE in m.card.notes for m in models.values())
    args = ("moon", {"max_new_tokens": 6, "fixed_length": True}, "offline", False, False)
    pickle.dumps(args)
    outputs = list(zerogpu.stream_outputs(*args))
    assert all(m.engine.is_built() and m.card.kernel_path.startswith(("comparer fast", "transformers"))
               for m in models.values())
    pickle.dumps(outputs)
    from comparer.ui.panes import pane_outputs

    assert pane_outputs(outputs[-1])[4]["left"]["tokens"] == pane_outputs(outputs[-1])[4]["right"]["tokens"] == 6
    *_, stats, cid = list(service.compare("moon", max_new_tokens=6, fixed_length=True))[-1]
    assert stats["left"]["status"] == "done" and demo.comparer.store.get(cid)["status"] == "done"


def test_zerogpu_asks_for_the_gpu_time_a_comparison_needs_within_bounds():
    """The duration callable grows with the prompt and max new tokens, stays within ZeroGPU's bounds, and
    covers both models running in turn at the deliberately slow rates (the fair race runs them alone)."""
    from comparer.ui import zerogpu

    short = zerogpu.duration_s("Once upon a time", {"max_new_tokens": 64})
    default = zerogpu.duration_s("Once upon a time", {"max_new_tokens": 256})
    long = zerogpu.duration_s("x" * 100000, {"max_new_tokens": 1024})
    assert zerogpu.MIN_DURATION_S <= short <= default < long <= zerogpu.MAX_DURATION_S
    assert default >= zerogpu.SETUP_S + 2 * 256 / zerogpu.DECODE_TOK_PER_S - 1
    assert long == zerogpu.MAX_DURATION_S


def test_every_response_carries_nosniff_and_a_frame_policy_that_lets_hugging_face_embed_it(app):
    import urllib.request

    with urllib.request.urlopen(app.url, timeout=30) as response:
        headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors" in policy and "'self'" in policy and "huggingface.co" in policy and ".hf.space" in policy


def _post(url: str, body: bytes, chunked: bool = False) -> tuple[int, str]:
    import http.client
    from urllib.parse import urlparse

    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    if chunked:
        conn.putrequest("POST", parts.path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for start in range(0, len(body), 65536):
                piece = body[start:start + 65536]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
    else:
        conn.request("POST", parts.path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read().decode()


def test_an_oversized_body_is_refused_before_it_is_parsed_and_uploads_are_refused(app):
    """A 50 MB /compare body gets 413 with a clear message and the server's memory barely moves (it used to
    grow by 1 GB parsing 200 MB); a chunked one is cut as it passes the limit; uploads: 403."""
    import psutil

    rss_before = psutil.Process().memory_info().rss
    huge = b'{"data": ["' + b"x" * 50_000_000 + b'"]}'
    status, text = _post(app.url + "gradio_api/call/compare", huge)
    assert status == 413 and "shorter prompt" in text
    status, text = _post(app.url + "gradio_api/call/compare", huge[:5_000_000], chunked=True)
    assert status == 413
    assert psutil.Process().memory_info().rss - rss_before < 100 * 2**20
    status, text = _post(app.url + "gradio_api/upload", b"--x\r\n\r\nfile\r\n--x--")
    assert status == 403 and "no file uploads" in text
    left, right, *_ = gradio_client.Client(app.url, verbose=False).predict("moon", max_new_tokens=2, api_name="/compare")
    assert left and right  # still serving


def test_a_call_with_missing_inputs_is_told_which_without_python_object_addresses(app):
    """Gradio's 400 listed the inputs as '<gradio.components.slider.Slider object at 0x7f…>'."""
    status, text = _post(app.url + "gradio_api/call/compare", b'{"data": ["only the prompt"]}')
    assert status == 400 and "needed: 12, got: 1" in text
    assert "object at 0x" not in text and "Textbox, Slider" in text


def test_a_lone_surrogate_in_raw_json_gets_a_clear_error_and_the_store_survives(app):
    """JSON can carry "\\ud800" (no client library encodes it): the validator names it; nothing crashes."""
    import urllib.error
    import urllib.request

    body = b'{"data": ["lone \\ud800 surrogate", 4, false, 1.0, 1.0, 0, 1.0, 0, false, "offline", false, "auto"]}'
    request = urllib.request.Request(app.url + "gradio_api/call/compare", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        event_id = json.loads(urllib.request.urlopen(request, timeout=30).read())["event_id"]
        answer = urllib.request.urlopen(f"{app.url}gradio_api/call/compare/{event_id}", timeout=60).read().decode()
    except urllib.error.HTTPError as err:  # refused while parsing: fine if it says why
        answer = err.read().decode()
    print(answer[:400])
    assert "surrogate" in answer.lower() and "generating" not in answer, answer[-500:]
    assert gradio_client.Client(app.url, verbose=False).predict("ok", max_new_tokens=2,
                                                                  api_name="/compare")[4]["left"]["status"] == "done"


def test_a_pair_that_cannot_load_here_is_refused_at_once_and_the_loaded_pair_stays(app, monkeypatch):
    """Offline, naming a Hub preset used to wait ~24 s for the download to fail after unloading the pair
    everyone was using; now it is refused in well under a second and the loaded pair stays."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pool = app.comparer.pool
    before = pool.pair("offline")
    client = gradio_client.Client(app.url, verbose=False)
    t0 = time.perf_counter()
    with pytest.raises(Exception) as info:
        client.predict("moon", max_new_tokens=2, preset="small", api_name="/compare")
    assert time.perf_counter() - t0 < 5
    assert "cannot load here" in _error_text(info.value) and "needs network" in _error_text(info.value)
    assert pool.pair("offline") is before  # nothing was unloaded or reloaded


def test_an_unexpected_server_failure_is_said_in_a_sentence_not_as_a_null_error(app, monkeypatch):
    """A storage failure inside /vote (the kind that used to reach the client as {"error": null})."""
    import sqlite3

    client = gradio_client.Client(app.url, verbose=False)
    *_, cid = client.predict("moon", max_new_tokens=2, api_name="/compare")

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(app.comparer.store, "add_vote", broken)
    with pytest.raises(Exception) as info:
        client.predict(cid, "left", [], "", api_name="/vote")
    message = _error_text(info.value)
    assert "Recording the vote failed" in message and "OperationalError" in message and "keeps serving" in message
    assert "disk I/O" not in message  # details stay in the log
