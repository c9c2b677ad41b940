"""A byte-level stand-in tokenizer for models built with random weights.

Random-weight models come from bundled configs alone (no download), so their real tokenizers are
not here. Speed and memory do not depend on which ids are fed, so text is encoded as its UTF-8
bytes (ids 0-255, valid for every vocabulary) and ids are decoded modulo 256. The output is noise
either way; the card says the weights are random.
"""

from __future__ import annotations


class ByteTokenizer:
    def __call__(self, text: str) -> dict:
        return {"input_ids": list(text.encode("utf-8"))}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return bytes(i % 256 for i in ids).decode("utf-8", errors="replace")
