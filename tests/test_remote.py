"""Served models against a real server: llama.cpp's OpenAI-compatible server (llama-cpp-python) serving the
demo pair, converted to GGUF by scripts/to_gguf.py. Faults come from real servers stopped, paused or
killed; only the malformed-chunk case uses a minimal HTTP server that writes bad SSE (no real server
sends one on purpose). CI installs the server and sets COMPARER_REQUIRE_SERVER=1, so it never skips there.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from comparer.engines.remote import REMOTE, SETTINGS, RemoteError, request_body
from comparer.models.arch import SSM, TRANSFORMER
from comparer.paths import ASSETS_DIR
from comparer.settings import GenerationSettings

try:
    import llama_cpp  # noqa: F401
except ImportError:
    if os.environ.get("COMPARER_REQUIRE_SERVER") == "1":
        raise
    pytest.skip("llama-cpp-python[server] not installed (pip install -r requirements-dev.txt)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"demo-mamba": ASSETS_DIR / "models" / "demo-mamba", "demo-llama": ASSETS_DIR / "models" / "demo-llama"}
PROMPT = "Once upon a time there lived a poor miller who had"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `python -m llama_cpp.server` process serving one GGUF file."""

    def __init__(self, gguf: Path, alias: str, n_ctx: int = 2048):
        self.port, self.alias = _free_port(), alias
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--port",
                                      str(self.port), "--model_alias", alias, "--n_ctx", str(n_ctx)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server for {alias} did not start")

    @property
    def endpoint(self) -> str:
        return f"{self.url}#{self.alias}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory):
    from scripts.to_gguf import convert

    out = tmp_path_factory.mktemp("gguf")
    return {name: convert(folder, out / f"{name}.gguf") for name, folder in MODELS.items()}


@pytest.fixture(scope="module")
def servers(ggufs):
    running = {name: Server(path, name) for name, path in ggufs.items()}
    yield running
    for server in running.values():
        server.stop()


def _served(servers, name: str = "served", hardware: dict | None = None):
    from comparer.models.presets import served_preset

    return served_preset(name, {"left": (servers["demo-mamba"].endpoint, str(MODELS["demo-mamba"])),
                                "right": (servers["demo-llama"].endpoint, str(MODELS["demo-llama"]))}, {},
                         hardware=hardware)


def _load(spec):
    from comparer.engines.loaded import load_model

    return load_model(spec)


def test_the_converted_demo_pair_gives_the_greedy_tokens_of_transformers(servers):
    """Same weights, same text: the served Mamba and Llama continue greedily exactly as transformers does
    (fp32 GGUF), so a served pane shows the model, not a conversion artefact."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    preset = _served(servers)
    for spec, folder in ((preset.left, MODELS["demo-mamba"]), (preset.right, MODELS["demo-llama"])):
        model = _load(spec)
        result = model.engine.generate(model.tokenizer(PROMPT)["input_ids"],
                                       GenerationSettings(max_new_tokens=24, repetition_penalty=1.0))
        served = model.tokenizer.decode(result.token_ids)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
        reference = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).generate(
            ids, max_new_tokens=24, do_sample=False)
        expected = tokenizer.decode(reference[0][ids.shape[1]:], skip_special_tokens=True)
        assert served.strip() and served == expected[:len(served)] and len(served) >= len(expected) - 2


def test_two_served_models_race_at_once_only_on_hardware_named_apart(servers):
    """Two servers on one host may share its GPU: by default they take turns (the fair race, replayed on
    one clock). Named as different hardware (two GPUs, one per server) they run at once, each alone."""
    from comparer.pair import PairRun

    settings = GenerationSettings(max_new_tokens=32, fixed_length=True)
    same_host = {"left": _load(_served(servers).left), "right": _load(_served(servers).right)}
    run = PairRun(same_host, PROMPT, settings)
    final = list(run)[-1]
    assert run.mode == "alone" and all(p.label == "alone, shown on one clock" for p in final.values())
    preset = _served(servers, hardware={"left": "gpu-0", "right": "gpu-1"})
    models = {"left": _load(preset.left), "right": _load(preset.right)}
    assert models["left"].card.family == SSM and models["right"].card.family == TRANSFORMER  # from the configs
    for model in models.values():
        assert model.card.path.engine == REMOTE and "llama-cpp-python" in model.card.kernel_path
        assert any("timed at the client, network included" in n for n in model.card.notes)
        assert model.card.test_perplexity is not None
    run = PairRun(models, PROMPT, settings)
    final = list(run)[-1]
    assert run.mode == "per-gpu"  # apart: both at once, nothing replayed
    for pane in final.values():
        assert pane.status == "done" and pane.error is None and len(pane.token_ids) == 32
        assert pane.label == "alone on its server, timed at the client (network included)"
        assert pane.stats.ttft_s > 0 and pane.stats.decode_tok_per_s > 0 and pane.prompt_tokens > 5
        assert pane.stats.memory_bytes is None  # on the server: not measured here, not invented


def test_a_served_point_says_when_the_server_counted_other_tokens_than_it_names(servers):
    from comparer.bench.measure import random_prompt_ids, served_counts_note

    model = _load(_served(servers).right)
    ids = random_prompt_ids(model.engine.vocab_size(), 128)
    sent = model.engine.prompt_tokens_sent(ids)
    note = served_counts_note(model.engine, ids, 8)
    assert sent is not None and ((sent == 128 and note is None) or f"got {sent} prompt tokens" in note)
    typed = model.tokenizer(PROMPT)["input_ids"]
    assert model.engine.prompt_tokens_sent(typed) == len(typed)  # typed text round-trips exactly


def test_an_endpoint_url_with_credentials_is_refused_before_it_can_be_shown_or_stored():
    from comparer.models.endpoints import Endpoint

    for url in ("http://user:secret@host:8000#m", "http://host:8000/v1?api_key=secret#m"):
        with pytest.raises(ValueError, match="no user, password or query"):
            Endpoint.parse(url)
    endpoint = Endpoint.parse("http://10.0.0.5:8000/v1#m", api_key_env="MY_KEY")
    assert (endpoint.base_url, endpoint.model, endpoint.hardware) == ("http://10.0.0.5:8000", "m", "10.0.0.5")
    os.environ["MY_KEY"] = "sk-test"
    try:
        assert endpoint.headers() == {"Authorization": "Bearer sk-test"} and "sk-test" not in repr(endpoint)
    finally:
        del os.environ["MY_KEY"]


def test_each_server_kind_gets_the_settings_it_takes_and_the_card_names_the_rest(servers):
    sample = GenerationSettings(do_sample=True, top_k=40, repetition_penalty=1.3, fixed_length=True,
                                max_new_tokens=50, seed=5, temperature=0.7, top_p=0.9)
    body, refused = request_body(sample, "hi", "m", "vllm")
    assert (body["top_k"], body["repetition_penalty"], body["min_tokens"], body["ignore_eos"]) == (40, 1.3, 50, True)
    assert refused == [] and body["temperature"] == 0.7 and body["seed"] == 5
    body, refused = request_body(sample, "hi", "m", "llama-cpp-python")
    assert body["repeat_penalty"] == 1.3 and body["min_tokens"] == 50 and "ignore_eos" not in body and refused == []
    body, refused = request_body(sample, "hi", "m", "openai-compatible")
    assert set(refused) == {"top_k", "repetition_penalty", "min_tokens", "ignore_eos"}
    greedy, _ = request_body(GenerationSettings(), "hi", "m", "sglang")
    assert greedy["temperature"] == 0.0 and greedy["top_k"] == 0
    assert set(SETTINGS) == {"vllm", "sglang", "llama.cpp", "llama-cpp-python", "openai-compatible"}
    model = _load(_served(servers).left)
    assert model.engine.server.flavour == "llama-cpp-python"
    assert not any("does not take" in note for note in model.card.notes)  # it takes all four


def _engine_at(model, url: str, first_byte_s: float = 60.0):
    """The same served model's engine pointed at another address (a stopped or paused server)."""
    from dataclasses import replace

    from comparer.engines.remote import RemoteEngine

    engine = model.engine
    return RemoteEngine(replace(engine.endpoint, base_url=url), engine.server, engine.card, engine.tokenizer,
                        connect_s=2.0, first_byte_s=first_byte_s)


def test_a_server_that_is_down_fails_its_pane_with_a_sentence_and_the_other_pane_finishes(servers):
    from comparer.pair import PairRun

    preset = _served(servers)
    models = {"left": _load(preset.left), "right": _load(preset.right)}
    models["left"].engine = _engine_at(models["left"], f"http://127.0.0.1:{_free_port()}")
    t0 = time.monotonic()
    final = list(PairRun(models, PROMPT, GenerationSettings(max_new_tokens=16)))[-1]
    assert time.monotonic() - t0 < 15
    assert final["left"].status == "error" and "cannot reach" in final["left"].error
    assert "is the server running" in final["left"].error
    assert final["right"].status == "done" and final["right"].text


def test_a_server_that_sends_no_first_byte_times_out_and_stop_closes_a_stream_within_a_second(ggufs):
    server = Server(ggufs["demo-mamba"], "demo-mamba")
    try:
        from comparer.models.presets import served_preset

        spec = served_preset("one", {"left": (server.endpoint, str(MODELS["demo-mamba"])),
                                     "right": (server.endpoint, str(MODELS["demo-mamba"]))}, {}).left
        model = _load(spec)
        ids = model.tokenizer(PROMPT)["input_ids"]
        stop = threading.Event()
        threading.Timer(0.5, stop.set).start()
        t0 = time.monotonic()
        result = model.engine.generate(ids, GenerationSettings(max_new_tokens=4000, fixed_length=True), stop=stop)
        assert result.stopped_early and time.monotonic() - t0 < 1.5 and result.token_ids

        os.kill(server.proc.pid, signal.SIGSTOP)  # alive, accepting, silent
        try:
            slow = _engine_at(model, server.url, first_byte_s=1.0)
            t0 = time.monotonic()
            with pytest.raises(RemoteError, match="sent nothing for 1 s"):
                slow.generate(ids, GenerationSettings(max_new_tokens=8))
            assert time.monotonic() - t0 < 5
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)

        killer = threading.Timer(0.4, server.stop)
        killer.start()
        with pytest.raises(RemoteError, match="broke after|cannot reach"):
            model.engine.generate(ids, GenerationSettings(max_new_tokens=4000, fixed_length=True))
    finally:
        server.stop()


def test_http_errors_and_a_request_the_server_drops_are_said_not_shown_as_an_empty_answer(ggufs):
    """A wrong path answers HTTP 404 (said with the server's words); a prompt beyond the server's context
    makes llama-cpp-python end the stream with nothing and no [DONE]: an error, not a finished empty pane."""
    server = Server(ggufs["demo-llama"], "demo-llama", n_ctx=64)
    try:
        from comparer.models.presets import served_preset

        model = _load(served_preset("short", {"left": (server.endpoint, str(MODELS["demo-llama"])),
                                              "right": (server.endpoint, str(MODELS["demo-llama"]))}, {}).left)
        ids = model.tokenizer(PROMPT)["input_ids"]
        with pytest.raises(RemoteError, match=r"HTTP 404"):
            _engine_at(model, server.url + "/nope").generate(ids, GenerationSettings(max_new_tokens=8))
        too_long = model.tokenizer(PROMPT * 20)["input_ids"]
        with pytest.raises(RemoteError, match=r"ended without \[DONE\] after 0 tokens"):
            model.engine.generate(too_long, GenerationSettings(max_new_tokens=8))
    finally:
        server.stop()


class _BadChunks(http.server.BaseHTTPRequestHandler):
    """Answers /v1/models like llama-cpp-python and streams one good chunk, then garbage."""

    def do_GET(self):  # noqa: N802
        self._send(b'{"object":"list","data":[{"id":"bad","object":"model","owned_by":"me"}]}', "application/json")

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path.startswith("/extras/tokenize"):
            return self._send(b'{"tokens":[1]}', "application/json")
        self._send(b'data: {"choices":[{"text":" fine","index":0}]}\n\ndata: {not json\n\n', "text/event-stream")

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_malformed_chunk_is_named_in_the_pane_error():
    from comparer.models.presets import served_preset

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BadChunks)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}#bad"
        model = _load(served_preset("bad", {"left": (url, str(MODELS["demo-mamba"])),
                                            "right": (url, str(MODELS["demo-mamba"]))}, {}).left)
        with pytest.raises(RemoteError, match="malformed chunk"):
            model.engine.generate(model.tokenizer("hi")["input_ids"], GenerationSettings(max_new_tokens=4))
    finally:
        httpd.shutdown()


def test_the_benchmark_sweeps_served_models_and_its_record_says_remote_timed_at_the_client(servers, tmp_path):
    from comparer.bench.__main__ import main
    from comparer.bench.records import BenchRecord

    out = tmp_path / "served.json"
    args = ["--endpoint", servers["demo-mamba"].endpoint, "--endpoint-dir", str(MODELS["demo-mamba"]),
            "--endpoint", servers["demo-llama"].endpoint, "--endpoint-dir", str(MODELS["demo-llama"]),
            "--contexts", "32,128", "--new-tokens", "8", "--repeats", "2", "--out", str(out)]
    assert main(args) == 0
    record = BenchRecord.load(out)
    assert record.method.startswith("remote, timed at the client") and record.environment.device_type == "remote"
    assert [m.model_id for m in record.models] == ["demo-mamba", "demo-llama"]
    for run in record.models:
        assert [p.status for p in run.points] == ["ok", "ok"] and all(p.model_peak_bytes is None for p in run.points)
        for point in run.points:  # random ids decoded to text and re-tokenized by the server: said when it differs
            assert point.error is None or f"for this context of {point.context_tokens}" in point.error
        assert all(p.decode_tok_per_s.median > 0 for p in run.points)
    from comparer.bench.plots import scaling_figure

    figure = scaling_figure([record])  # plotted like any record, without bounds (the server's hardware is unseen)
    assert figure.data and not [t for t in figure.data if (t.meta or {}).get("kind") == "bound"]


def test_the_app_compares_two_served_models_through_its_api(servers, tmp_path):
    from gradio_client import Client

    from comparer.models.presets import register_preset
    from comparer.ui.app import create_app, launch_kwargs

    register_preset(_served(servers, "served-test"))
    demo = create_app("served-test", "served-test", "cpu", db_path=tmp_path / "r.sqlite")
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, ssr_mode=False,
                        quiet=True, **launch_kwargs())
    try:
        left, right, left_md, right_md, stats, cid = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            PROMPT, 24, api_name="/compare", preset="served-test")
        assert left and right and cid
        assert "alone, shown on one clock" in left_md and "alone, shown on one clock" in right_md  # one host
        assert stats["left"]["model_id"] == "demo-mamba" and stats["right"]["memory_bytes"] is None
    finally:
        demo.close()
