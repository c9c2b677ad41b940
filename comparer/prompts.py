"""The bundled prompts (prompts/*.json): UI examples, the offline tokenizer's corpus, bench text."""

from __future__ import annotations

import json
from dataclasses import dataclass

from comparer.paths import PROMPTS_DIR


@dataclass(frozen=True)
class Prompt:
    title: str
    text: str


def load_prompts() -> list[Prompt]:
    """Prompts in display order: the notebook's five, then the long-context one."""
    index = json.loads((PROMPTS_DIR / "index.json").read_text())
    return [Prompt(item["title"], _text(item)) for item in index]


def _text(item: dict) -> str:
    if "file" in item:
        return (PROMPTS_DIR / item["file"]).read_text().strip()
    return item["text"]
