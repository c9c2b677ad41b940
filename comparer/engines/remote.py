"""A model on an OpenAI-compatible server, behind the same Engine interface: streaming /v1/completions.

Why it looks like this: these are base models, so the request is a raw continuation (/v1/completions,
not chat). Each token's time is taken when its chunk reaches this process: "timed at the client,
network included" — said on the card and in every record. A server silently ignores parameters it does
not know, so which settings are sent is decided per server kind (SETTINGS) and what is not sent is named
on the card. Faults end in a sentence for that pane (the other pane carries on): no answer (connect
timeout), no first byte (read timeout), HTTP errors with the server's words, a malformed chunk, a
dropped stream. Stop closes the stream from a watcher thread, so a blocked read ends at once.

Text, not ids, crosses the wire (llama-cpp-python's server takes no token-id prompt): the prompt's ids
map back to the text they came from (RemoteTokenizer), and each streamed piece gets an id of its own
in a piece table, so panes and benchmarks work on ids as with every other engine.
"""

from __future__ import annotations

import json
import threading
import time

import httpx

from comparer.engines.base import Engine, GenerationResult, OnToken, TokenEvent
from comparer.models.arch import ArchitectureCard, KernelPath
from comparer.models.endpoints import Endpoint, ServerInfo
from comparer.settings import GenerationSettings

REMOTE = "remote server"  # KernelPath.engine of every served model
TIMED = "timed at the client, network included"
PIECE_BASE = 1 << 40  # ids of streamed text pieces, above any vocabulary
PROMPTS_KEPT = 16  # prompt texts remembered for their ids (the runs in flight need theirs)

# Which shared decoding settings each server kind accepts, under its own name (None: not accepted).
SETTINGS = {
    "vllm": {"top_k": "top_k", "repetition_penalty": "repetition_penalty", "min_tokens": "min_tokens",
             "ignore_eos": "ignore_eos"},
    "sglang": {"top_k": "top_k", "repetition_penalty": "repetition_penalty", "min_tokens": "min_tokens",
               "ignore_eos": "ignore_eos"},
    "llama.cpp": {"top_k": "top_k", "repetition_penalty": "repeat_penalty", "min_tokens": None,
                  "ignore_eos": "ignore_eos"},
    "llama-cpp-python": {"top_k": "top_k", "repetition_penalty": "repeat_penalty", "min_tokens": "min_tokens",
                         "ignore_eos": None},
    "openai-compatible": {"top_k": None, "repetition_penalty": None, "min_tokens": None, "ignore_eos": None},
}


class RemoteError(RuntimeError):
    """A server fault, said as what happened and what to do."""


def request_body(settings: GenerationSettings, prompt: str, model: str, flavour: str) -> tuple[dict, list[str]]:
    """The /v1/completions body for these settings, and the settings the server would not honour."""
    names = SETTINGS[flavour]
    body = {"model": model, "prompt": prompt, "max_tokens": settings.max_new_tokens, "stream": True,
            "seed": settings.seed, "stream_options": {"include_usage": True},
            "temperature": settings.temperature if settings.do_sample else 0.0,
            "top_p": settings.top_p if settings.do_sample else 1.0}
    wanted = {"top_k": settings.top_k if settings.do_sample else 0, "repetition_penalty": settings.repetition_penalty}
    if settings.fixed_length:
        wanted.update(min_tokens=settings.max_new_tokens, ignore_eos=True)
    refused = []
    for shared, value in wanted.items():
        if names.get(shared):
            body[names[shared]] = value
        elif not _is_default(shared, value):
            refused.append(shared)
    if settings.fixed_length and (names.get("min_tokens") or names.get("ignore_eos")):
        refused = [r for r in refused if r not in ("min_tokens", "ignore_eos")]  # one of the two suffices
    return body, refused


def _is_default(name: str, value) -> bool:
    return (name == "top_k" and value == 0) or (name == "repetition_penalty" and value == 1.0)


class PieceTable:
    """Streamed text pieces by id (ids from PIECE_BASE up), shared by an engine and its tokenizer."""

    def __init__(self):
        self._pieces: list[str] = []
        self._lock = threading.Lock()

    def add(self, text: str) -> int:
        with self._lock:
            self._pieces.append(text)
            return PIECE_BASE + len(self._pieces) - 1

    def text(self, piece_id: int) -> str:
        return self._pieces[piece_id - PIECE_BASE]


class RemoteTokenizer:
    """Prompt text -> ids (the local tokenizer of the same model where there is one, else one piece for
    the whole prompt, its token count then unknown), and ids -> text for panes (pieces and prompt ids)."""

    def __init__(self, pieces: PieceTable, local=None):
        self.pieces, self.local = pieces, local
        self._texts: dict[tuple[int, ...], str] = {}

    def __call__(self, text: str) -> dict:
        ids = list(self.local(text)["input_ids"]) if self.local is not None else [self.pieces.add(text)]
        self._texts[tuple(ids)] = text
        while len(self._texts) > PROMPTS_KEPT:  # visitors' prompts are not kept beyond the runs in flight
            self._texts.pop(next(iter(self._texts)))
        return {"input_ids": ids}

    def text_of(self, ids: list[int]) -> str:
        """The text the server gets for these prompt ids: the typed text when they are its ids, else
        decoded (a trimmed prompt, a benchmark's random ids)."""
        key = tuple(ids)
        if key in self._texts:
            return self._texts[key]
        return self.decode(ids)

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        out, run = [], []
        for i in ids:
            if i >= PIECE_BASE:
                if run:
                    out.append(self._local_decode(run, skip_special_tokens))
                    run = []
                out.append(self.pieces.text(i))
            else:
                run.append(i)
        if run:
            out.append(self._local_decode(run, skip_special_tokens))
        return "".join(out)

    def _local_decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        if self.local is None:
            raise RemoteError("token ids without a local tokenizer of this model cannot become text; "
                              "give the endpoint a tokenizer folder")
        return self.local.decode(ids, skip_special_tokens=skip_special_tokens)


class RemoteEngine(Engine):
    """Streams one served model. ``connect_s``: time to reach the server; ``first_byte_s``: the longest
    wait for a chunk (the first one includes the prompt's prefill)."""

    def __init__(self, endpoint: Endpoint, server: ServerInfo, card: ArchitectureCard, tokenizer: RemoteTokenizer,
                 connect_s: float = 5.0, first_byte_s: float = 60.0):
        self.endpoint, self.server, self.card, self.tokenizer = endpoint, server, card, tokenizer
        self.device = endpoint.device
        self.timeout = httpx.Timeout(connect=connect_s, read=first_byte_s, write=10.0, pool=connect_s)
        self.last_usage: dict | None = None

    def describe(self) -> KernelPath:
        return KernelPath(REMOTE, f"{self.server.flavour} at {self.endpoint.base_url}",
                          f"the server's ({TIMED})", f"the server's, streamed ({TIMED})")

    def vocab_size(self) -> int:
        if self.tokenizer.local is not None:
            return len(self.tokenizer.local)
        return int(self.server.meta.get("n_vocab") or 256)

    def eos_token_ids(self):
        return None  # the server stops at its own EOS

    def weight_bytes(self) -> int | None:
        return None  # on the server: not measured here

    def prompt_tokens_sent(self, prompt_ids: list[int]) -> int | None:
        """How many tokens the text sent for these ids makes, by the local tokenizer (None without one)."""
        if self.tokenizer.local is None:
            return None
        return len(self.tokenizer.local(self.tokenizer.text_of(prompt_ids))["input_ids"])

    def refused(self, settings: GenerationSettings) -> list[str]:
        return request_body(settings, "", self.server.model, self.server.flavour)[1]

    def generate(self, prompt_ids: list[int], settings: GenerationSettings, on_token: OnToken | None = None,
                 stop: threading.Event | None = None) -> GenerationResult:
        body, _ = request_body(settings, self.tokenizer.text_of(prompt_ids), self.server.model, self.server.flavour)
        stop = stop or threading.Event()
        result = GenerationResult([], time.perf_counter(), [])
        try:
            with httpx.Client(timeout=self.timeout) as client:
                with client.stream("POST", f"{self.endpoint.base_url}/v1/completions", json=body,
                                   headers=self.endpoint.headers()) as response:
                    _raise_for_status(response)
                    self._read(response, settings, result, on_token, stop)
        except httpx.ConnectError as err:
            raise RemoteError(f"cannot reach {self.endpoint.base_url} ({err}); is the server running?") from err
        except httpx.TimeoutException as err:
            raise RemoteError(f"{self.endpoint.base_url} sent nothing for {self.timeout.read:.0f} s "
                              f"({type(err).__name__}); the server may be overloaded") from err
        except (httpx.StreamClosed, httpx.ReadError, httpx.RemoteProtocolError) as err:
            if stop.is_set() or result.time_limited:
                result.stopped_early = True
                return result
            raise RemoteError(f"the stream from {self.endpoint.base_url} broke after {len(result.token_ids)} "
                              f"tokens ({type(err).__name__})") from err
        return result

    def _read(self, response, settings, result: GenerationResult, on_token, stop: threading.Event) -> None:
        done = threading.Event()
        deadline_s = result.t_start_s + settings.max_time_s if settings.max_time_s else None
        watcher = threading.Thread(target=_close_when, args=(response, stop, done, deadline_s, result), daemon=True)
        watcher.start()
        try:
            for line in response.iter_lines():
                if stop.is_set():
                    result.stopped_early = True
                    return
                if self._line(line, result, on_token):
                    return
        finally:
            done.set()
        if stop.is_set() or result.time_limited:
            result.stopped_early = True
            return
        raise RemoteError(f"the stream from {self.endpoint.base_url} ended without [DONE] after "
                          f"{len(result.token_ids)} tokens: the server failed mid-request (its log says why; "
                          "a prompt longer than its context is one cause)")

    def _line(self, line: str, result: GenerationResult, on_token) -> bool:
        """One SSE line; True at the end of the stream."""
        if not line.startswith("data:"):
            return False
        data = line[5:].strip()
        if data == "[DONE]":
            return True
        chunk = _parse(data)
        if chunk.get("usage"):
            self.last_usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("text"):
                now_s = time.perf_counter()
                piece = self.tokenizer.pieces.add(choice["text"])
                result.token_ids.append(piece)
                result.token_times_s.append(now_s)
                if on_token is not None:
                    on_token(TokenEvent(piece, now_s))
        return False


def _parse(data: str) -> dict:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as err:
        raise RemoteError(f"the server sent a malformed chunk: {data[:80]!r}") from err
    if not isinstance(chunk, dict):
        raise RemoteError(f"the server sent a malformed chunk: {data[:80]!r}")
    if "error" in chunk:
        raise RemoteError(f"the server reported an error mid-stream: {str(chunk['error'])[:200]}")
    return chunk


def _raise_for_status(response) -> None:
    if response.status_code < 400:
        return
    said = response.read().decode("utf-8", "replace")[:300]
    raise RemoteError(f"the server answered HTTP {response.status_code}: {said}")


def _close_when(response, stop: threading.Event, done: threading.Event, deadline_s: float | None,
                result: GenerationResult) -> None:
    """Close the stream as soon as Stop is pressed or the time limit passes (a read may be blocked)."""
    while not done.wait(0.05):
        if stop.is_set() or (deadline_s is not None and time.perf_counter() > deadline_s):
            result.time_limited = not stop.is_set()
            response.close()
            return
