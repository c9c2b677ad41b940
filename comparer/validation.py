"""Server-side checks of what a visitor or an API client sends (browsers' limits can be bypassed).

Pure functions, no gradio: the UI turns ``InputError`` into ``gr.Error``; the benchmark and tests
call them directly.
"""

from __future__ import annotations

import os
import unicodedata

MAX_PROMPT_CHARS = int(os.environ.get("COMPARER_MAX_PROMPT_CHARS", "100000"))
MAX_PROMPT_TOKENS = int(os.environ.get("COMPARER_MAX_PROMPT_TOKENS", "32768"))  # app cap (Mamba has none)
ALLOWED_CONTROL = {"\n", "\t", "\r"}


class InputError(ValueError):
    """Bad input; the message says what was wrong and what to send instead."""


def check_prompt(prompt) -> str:
    if not isinstance(prompt, str):
        raise InputError(f"The prompt must be text, got {type(prompt).__name__}.")
    if not prompt.strip():
        raise InputError("The prompt is empty: type a prompt or pick an example.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"The prompt has {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}. "
                         f"Shorten it and try again.")
    for position, char in enumerate(prompt):
        if char not in ALLOWED_CONTROL and unicodedata.category(char) == "Cc":
            raise InputError(f"The prompt contains a control character (U+{ord(char):04X}) at position "
                             f"{position}; remove it (newlines and tabs are fine).")
    check_encodable("The prompt", prompt)
    return prompt


def check_encodable(what: str, text: str) -> None:
    """Text that UTF-8 (and so SQLite, the tokenizers, the browser) can hold: a lone surrogate such as
    U+D800, which JSON can carry, cannot be stored and used to crash the insert."""
    for position, char in enumerate(text):
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise InputError(f"{what} contains an unpaired surrogate (U+{ord(char):04X}) at position {position}, "
                             "which is not valid text; remove it.")


def check_flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, got {value!r}.")
    return value


def prompt_token_limit(max_positions: int | None, max_new_tokens: int, app_cap: int = MAX_PROMPT_TOKENS) -> int:
    """Longest prompt a model takes: its positions minus the tokens to generate, and the app's cap."""
    if max_positions:
        return max(1, min(app_cap, max_positions - max_new_tokens))
    return app_cap


def trim_prompt_ids(ids: list[int], limit: int) -> tuple[list[int], str | None]:
    """Keep the last ``limit`` tokens (the part a continuation depends on) and say so."""
    if len(ids) <= limit:
        return ids, None
    return ids[-limit:], (f"prompt trimmed: kept the last {limit:,} of {len(ids):,} tokens "
                          f"(this model's limit for the chosen max new tokens)")
