"""Models served elsewhere: an OpenAI-compatible server (vLLM, SGLang, llama.cpp) named per side.

Why here: a served model is still a model: what it is comes from its config where one is available
(a folder, or the bundled config of the same name), and the server says what it serves (``/v1/models``).
The API key is read from the environment variable the endpoint names, at request time: it is never
logged, never put on a card and never stored with reviews.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from urllib.parse import urlsplit

import httpx

PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Endpoint:
    """``base_url`` up to and without ``/v1``; ``model``: the served model name (None: the server's only
    one); ``api_key_env``: the environment variable holding the key, if the server wants one."""

    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    # what it computes on, for the race: two servers run at once only on different hardware. Default: its
    # host, so two servers on one machine (which may share a GPU) take turns; the operator names distinct
    # hardware (--left-hardware / --right-hardware) when one host holds two GPUs, one per server.
    hardware: str | None = None

    @classmethod
    def parse(cls, text: str, api_key_env: str | None = None, hardware: str | None = None) -> "Endpoint":
        """'http://host:8000#served-name' (a trailing /v1 is dropped) -> Endpoint. Credentials in the URL are
        refused: the URL is shown on cards and stored with records (keys go in api_key_env)."""
        url, _, model = str(text).strip().partition("#")
        url = url.rstrip("/")
        url = url[:-3] if url.endswith("/v1") else url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"An endpoint is an http(s) URL such as http://127.0.0.1:8000#model-name; got {text!r}.")
        if parts.username or parts.password or parts.query:
            raise ValueError("Put no user, password or query in an endpoint URL (it is shown and stored); give "
                             "the key's environment variable instead (--left-api-key-env NAME).")
        return cls(url, model or None, api_key_env, hardware or parts.hostname)

    @property
    def device(self) -> str:
        """What cards call it: the server."""
        return f"remote:{self.base_url}"

    def headers(self) -> dict:
        key = os.environ.get(self.api_key_env or "", "") if self.api_key_env else ""
        return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass(frozen=True)
class ServerInfo:
    """What the server says: its kind (decides which settings it accepts), and the model it serves."""

    flavour: str  # vllm | sglang | llama.cpp | llama-cpp-python | openai-compatible
    model: str
    meta: dict


def probe(endpoint: Endpoint, timeout_s: float = PROBE_TIMEOUT_S) -> ServerInfo:
    """Ask ``/v1/models``; raise ConnectionError with what to do when the server does not answer."""
    try:
        response = httpx.get(f"{endpoint.base_url}/v1/models", headers=endpoint.headers(), timeout=timeout_s)
        response.raise_for_status()
        served = response.json()["data"]
    except (httpx.HTTPError, KeyError, ValueError) as err:
        raise ConnectionError(f"the server at {endpoint.base_url} does not answer /v1/models "
                              f"({type(err).__name__}); is it running?") from err
    chosen = _chosen(served, endpoint)
    return ServerInfo(_flavour(endpoint, chosen, timeout_s), chosen["id"], chosen.get("meta") or {})


def _chosen(served: list[dict], endpoint: Endpoint) -> dict:
    ids = [m.get("id") for m in served]
    if endpoint.model is None and len(served) == 1:
        return served[0]
    for entry in served:
        if entry.get("id") == endpoint.model:
            return entry
    raise ConnectionError(f"the server at {endpoint.base_url} serves {ids}, not {endpoint.model!r}; "
                          "name one of those after '#'.")


def _flavour(endpoint: Endpoint, entry: dict, timeout_s: float) -> str:
    owner = str(entry.get("owned_by", "")).lower()
    if owner in ("vllm", "sglang"):
        return owner
    if owner == "llamacpp":
        return "llama.cpp"
    try:  # llama-cpp-python's server says owned_by "me"; its tokenizer endpoint tells it apart
        answer = httpx.post(f"{endpoint.base_url}/extras/tokenize", json={"input": "a"}, headers=endpoint.headers(),
                            timeout=timeout_s)
        if answer.status_code == 200 and "tokens" in answer.json():
            return "llama-cpp-python"
    except (httpx.HTTPError, ValueError):
        pass
    return "openai-compatible"


def why_not_reachable(endpoint: Endpoint) -> str | None:
    try:
        probe(endpoint)
    except ConnectionError as err:
        return str(err)
    return None
