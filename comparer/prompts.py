"""The bundled prompts (prompts/*.json): UI examples, the offline tokenizer's corpus, bench text."""

from __future__ import annotations

import json
from dataclasses import dataclass

from comparer.paths import PROMPTS_DIR


@dataclass(frozen=True)
class Prompt:
    title: str
    text: str
    kind: str = "story"  # story: a continuation any base model can take; instruction: for tuned models


def load_prompts(kinds: tuple[str, ...] | None = None) -> list[Prompt]:
    """Prompts in display order, only those of ``kinds`` when given (a preset's prompt_kinds)."""
    index = json.loads((PROMPTS_DIR / "index.json").read_text())
    prompts = [Prompt(item["title"], _text(item), item.get("kind", "story")) for item in index]
    return [p for p in prompts if kinds is None or p.kind in kinds]


def _text(item: dict) -> str:
    if "file" in item:
        return (PROMPTS_DIR / item["file"]).read_text().strip()
    return item["text"]
