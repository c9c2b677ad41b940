"""Can a model load here, now? Answered in milliseconds, before anything is unloaded.

Why: offline, choosing a Hub preset waited ~24 s for the download to fail, and the pool had already
unloaded the pair every other visitor was using. A spec loads here when its folder exists, when it is
built from a bundled config (random weights), when its files are in the local Hugging Face cache, or
when the Hub answers (HF_HUB_OFFLINE=1 says it will not; otherwise one TCP connection, 2 s at most,
remembered for a minute).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from comparer.models.presets import ModelSpec

HUB_HOST = ("huggingface.co", 443)
_probe: dict[str, tuple[float, bool]] = {}


def hub_reachable(timeout_s: float = 2.0, ttl_s: float = 60.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    seen = _probe.get("hub")
    if seen is not None and time.monotonic() - seen[0] < ttl_s:
        return seen[1]
    answer: list[bool] = []
    # in a thread joined with the timeout: create_connection's timeout does not cover the DNS lookup,
    # which on some offline machines takes ~25 s to fail
    probe = threading.Thread(target=lambda: answer.append(_connects(timeout_s)), daemon=True)
    probe.start()
    probe.join(timeout_s)
    ok = bool(answer and answer[0])
    _probe["hub"] = (time.monotonic(), ok)
    return ok


def _connects(timeout_s: float) -> bool:
    try:
        socket.create_connection(HUB_HOST, timeout=timeout_s).close()
        return True
    except OSError:
        return False


def in_local_cache(model_id: str, revision: str | None = None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model_id, "config.json", revision=revision), str)
    except Exception:  # noqa: BLE001 (a malformed id or cache: not there)
        return False


def why_not_loadable(spec: ModelSpec) -> str | None:
    """None when ``spec`` can load here; else what is missing and what to do."""
    if spec.endpoint is not None:
        from comparer.models.endpoints import why_not_reachable

        return why_not_reachable(spec.endpoint)
    if spec.random_weights or (spec.local_dir and Path(spec.local_dir).is_dir()):
        return None
    if spec.local_dir:
        return f"its folder {spec.local_dir} is missing"
    if in_local_cache(spec.model_id, spec.revision) or hub_reachable():
        return None
    return f"'{spec.model_id}' is not in the local cache and the Hugging Face Hub cannot be reached (needs network)"
