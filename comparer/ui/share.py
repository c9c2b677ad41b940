"""A comparison as a link: URL query parameters (preset, prompt, settings, seed, race mode, blind).

Why: a reviewer who found something sends a link that opens the same comparison, not a description of
it. The browser builds the link from what is on screen (SHARE_JS); the server reads it back here with
the same checks as a typed request, and a bad parameter is named and ignored, never half-applied.
"""

from __future__ import annotations

from comparer import race as race_modes
from comparer.models.presets import RANDOM
from comparer.settings import GenerationSettings, SettingsError
from comparer.validation import InputError, check_prompt

# the Compare tab's inputs a link sets, in the order blocks.py lists their components
VALUE_NAMES = ("prompt", "max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty",
               "seed", "fixed_length", "race", "blind")
SHARED_NAMES = ("preset", *VALUE_NAMES)
_INTS = {"max_new_tokens", "top_k", "seed"}
_FLOATS = {"temperature", "top_p", "repetition_penalty"}
_FLAGS = {"do_sample", "fixed_length", "blind"}
MAX_LINK_CHARS = 8000  # longer links are cut by some browsers and chat tools


def parse(query: dict, presets: list[str]) -> tuple[dict, list[str]]:
    """(values to set, problems to show) from a link's query parameters; unknown names are ignored."""
    values, problems = {}, []
    for name in SHARED_NAMES:
        if name not in query:
            continue
        try:
            values[name] = _value(name, str(query[name]), presets)
        except ValueError as err:
            problems.append(f"The link's {name} was not used: {err}")
    settings = {k: v for k, v in values.items() if k in GenerationSettings.__dataclass_fields__}
    try:
        GenerationSettings(**settings)
    except (SettingsError, TypeError) as err:
        problems.append(f"The link's decoding settings were not used: {err}")
        values = {k: v for k, v in values.items() if k not in settings}
    return values, problems


def _value(name: str, text: str, presets: list[str]):
    if name == "preset":
        if text not in presets + [RANDOM]:
            raise ValueError(f"no pair named {text[:40]!r} here; choose one of {', '.join(presets)}.")
        return text
    if name == "prompt":
        try:
            check_prompt(text)
        except InputError as err:
            raise ValueError(str(err)) from err
        return text
    if name == "race":
        if text not in race_modes.REQUESTS:
            raise ValueError(f"race must be one of {', '.join(race_modes.REQUESTS)}.")
        return text
    if name in _FLAGS:
        if text.lower() not in ("1", "0", "true", "false"):
            raise ValueError("give 1 or 0.")
        return text.lower() in ("1", "true")
    try:
        return int(text) if name in _INTS else float(text)
    except ValueError:
        raise ValueError(f"{text[:20]!r} is not a number.") from None


# Builds the link from the values on screen (the inputs in SHARED_NAMES order), copies it when the
# browser allows, and returns it for the link box; a link too long to travel says so instead.
SHARE_JS = """(...values) => {
  const names = %s;
  const url = new URL(window.location.href.split('?')[0]);
  names.forEach((name, i) => {
    let v = values[i];
    if (typeof v === 'boolean') v = v ? '1' : '0';
    if (v !== null && v !== undefined && v !== '') url.searchParams.set(name, String(v));
  });
  const link = url.toString();
  if (link.length > %d) return `Too long to share as a link (${link.length} characters): shorten the prompt.`;
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(link).catch(() => {});
  return link;
}""" % (list(SHARED_NAMES), MAX_LINK_CHARS)
