"""An ASGI layer in front of Gradio: security headers, and request bodies bounded before anything parses them.

Why: Gradio parses a request's JSON before the app's validator sees the prompt, so a 200 MB body grew
the process by 1 GB before the prompt cap could refuse it; its upload route accepted 200 MB files
though this app has no file input. Here a body over MAX_BODY_BYTES is refused with 413 from its
Content-Length, or as soon as a chunked body passes the limit, and uploads are refused outright.
Every response also gets ``X-Content-Type-Options: nosniff`` and a ``frame-ancestors`` policy that
lets the app be embedded only by itself and by Hugging Face (a Space shows it in an iframe).
Gradio's 400 answers list the event's components as Python reprs with memory addresses
("<gradio.components.slider.Slider object at 0x7f…>"): those are rewritten to the component's name.
"""

from __future__ import annotations

import json
import re

# the prompt cap is 100,000 characters (at most 4 bytes each in UTF-8) plus JSON and settings
MAX_BODY_BYTES = 1_000_000
UPLOAD_PATHS = ("/gradio_api/upload", "/upload")
FRAME_ANCESTORS = "frame-ancestors 'self' https://huggingface.co https://*.huggingface.co https://*.hf.space"
COMPONENT_REPR = re.compile(rb"<gradio\.components\.\w+\.(\w+) object at 0x[0-9a-fA-F]+>")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", FRAME_ANCESTORS.encode())]


class Guard:
    def __init__(self, app, max_body_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"].rstrip("/").endswith(UPLOAD_PATHS):
            return await _refuse(send, 403, "This app takes no file uploads: send the prompt as text to /compare.")
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return await _refuse(send, 413, self._too_large())
        seen = {"bytes": 0, "started": False, "refused": False}

        async def bounded_receive():
            if seen["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > self.max_body_bytes and not seen["started"]:
                    seen["refused"] = True  # answered here; the app sees the client gone
                    await _refuse(send, 413, self._too_large())
                    return {"type": "http.disconnect"}
            return message

        async def with_headers(message):
            if seen["refused"]:
                return  # the 413 has been sent; whatever the app answers after it is dropped
            if message["type"] == "http.response.start":
                seen["started"] = True
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
                if message["status"] == 400:
                    seen["held"], seen["body"] = message, b""  # sent once its body is rewritten
                    return
            if "held" in seen and message["type"] == "http.response.body":
                seen["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                return await _send_rewritten(send, seen.pop("held"), seen["body"])
            await send(message)

        await self.app(scope, bounded_receive, with_headers)

    def _too_large(self) -> str:
        return (f"Request body over {self.max_body_bytes:,} bytes: prompts are capped at 100,000 characters; "
                "send a shorter prompt.")


async def _send_rewritten(send, start: dict, body: bytes) -> None:
    """A 400 answer with component reprs replaced by their names (``Slider``), its length set to match."""
    body = COMPONENT_REPR.sub(rb"\1", body)
    headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
    await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *HEADERS]})
    await send({"type": "http.response.body", "body": body})
