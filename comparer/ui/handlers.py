"""Event handlers: short functions that validate, call the library and format its results."""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import logging

import gradio as gr

from comparer.models.presets import ModelLoadError
from comparer import race as race_modes
from comparer.pair import PairRun, swap_sides
from comparer.pool import ModelPool, preset_specs
from comparer.models.availability import why_not_loadable
from comparer.models.presets import CUSTOM, RANDOM, SIDES, Preset, custom_preset, load_presets
from comparer.reviews.store import NewComparison, ReviewStore
from comparer.settings import GenerationSettings, SettingsError
from comparer.ui.cards import card_markdown
from comparer.prompts import load_prompts
from comparer.ui import share
from comparer.ui.errors import clear_errors
from comparer.ui import panes as pane_view
from comparer.validation import InputError, check_flag, check_prompt

log = logging.getLogger("comparer")


@dataclass(frozen=True)
class Limits:
    """Per-deployment limits, from the environment (see the README's configuration table)."""

    max_time_s: float = field(default_factory=lambda: float(os.environ.get("COMPARER_MAX_TIME_S", "120")))
    per_session_per_min: int = field(
        default_factory=lambda: int(os.environ.get("COMPARER_SESSION_RATE_PER_MIN", "30")))
    # every raw HTTP call is a new session, so the client's address is limited too
    per_address_per_min: int = field(
        default_factory=lambda: int(os.environ.get("COMPARER_ADDRESS_RATE_PER_MIN", "60")))
    # X-Forwarded-For names the client only behind a proxy the operator trusts (a Space's is)
    trust_proxy: bool = field(default_factory=lambda: os.environ.get(
        "COMPARER_TRUST_PROXY", "1" if os.environ.get("SPACE_ID") else "0") == "1")


class CompareService:
    """Holds the model pool and the comparison running in each browser session."""

    def __init__(self, pool: ModelPool, presets: list[str], store: ReviewStore | None = None,
                 limits: Limits | None = None, free_entry: bool = False, gpu_stream=None):
        self.pool, self.presets, self.store, self.free_entry = pool, presets, store, free_entry
        self.gpu_stream = gpu_stream  # the @spaces.GPU stream on ZeroGPU, else None
        self.custom: Preset | None = None
        self.limits = limits or Limits()
        self._runs: dict[str, PairRun] = {}
        self._starts: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def validate(self, prompt, max_new_tokens=128, do_sample=False, temperature=1.0, top_p=1.0, top_k=0,
                 repetition_penalty=1.0, seed=0, fixed_length=False, preset=None, blind=False,
                 race=race_modes.AUTO) -> list[dict]:
        """Runs before the request is queued (Gradio's ``validator=``): invalid input queues nothing.
        Returns one ``gr.validate`` per input, the failing one carrying the message."""
        verdicts = [gr.validate(True, "") for _ in COMPARE_INPUTS]
        try:
            self._checked(prompt, max_new_tokens, do_sample, temperature, top_p, top_k, repetition_penalty, seed,
                          fixed_length, preset, blind, race)
        except gr.Error as err:
            message = str(err.message if hasattr(err, "message") else err)
            verdicts[_failing_input(message)] = gr.validate(False, message)
        return verdicts

    def _checked(self, prompt, max_new_tokens, do_sample, temperature, top_p, top_k, repetition_penalty, seed,
                 fixed_length, preset, blind, race=race_modes.AUTO) -> tuple[GenerationSettings, str, bool]:
        try:
            check_prompt(prompt)
            flags = [check_flag(n, v) for n, v in (("do_sample", do_sample), ("fixed_length", fixed_length),
                                                   ("blind", blind))]
        except InputError as err:
            raise gr.Error(str(err)) from err
        preset = preset or self.presets[0]
        self._check_preset(preset)
        _check_race(race)
        settings = _settings(max_new_tokens, flags[0], temperature, top_p, top_k, repetition_penalty, seed,
                             flags[1], self.limits.max_time_s)
        return settings, preset, flags[2] or preset == RANDOM  # a random pair is always blind

    def _rate_check(self, session: str, address: str | None = None) -> None:
        """At most ``per_session_per_min`` comparisons a minute per session and ``per_address_per_min`` per
        client address, so no visitor starves the rest (new sessions do not reset the address's count)."""
        now = time.monotonic()
        keys = [(f"session {session}", "this session", self.limits.per_session_per_min)]
        if address:
            keys.append((f"address {address}", "your address", self.limits.per_address_per_min))
        with self._lock:
            for key, who, limit in keys:
                recent = [t for t in self._starts.get(key, []) if now - t < 60]
                if len(recent) >= limit:
                    raise gr.Error(f"Too many comparisons from {who} ({len(recent)} in a minute); "
                                   f"wait {60 - (now - recent[0]):.0f} s and try again.")
            for key, _, _ in keys:
                self._starts[key] = [t for t in self._starts.get(key, []) if now - t < 60] + [now]

    def load(self, preset: str) -> tuple:
        """Load a preset's pair; returns the two cards, the two pane labels and the preset's note."""
        if preset == RANDOM:
            return (*self.pane_headers(preset, True)[:4], RANDOM_NOTE.format(n=len(self.loadable_presets())))
        models = self._models(preset)
        info = self.custom if preset == CUSTOM else load_presets()[preset]
        cards = [card_markdown(models[side].card) for side in SIDES]
        labels = [gr.Textbox(label=f"{side}: {models[side].spec.model_id}") for side in SIDES]
        return (*cards, *labels, f"**{info.label}.** {info.description}")

    def preset_choices(self) -> list[tuple[str, str]]:
        """(label, name) for the dropdown; a pair that cannot run here says why in its label and is
        refused at once if chosen (never a half-switched page)."""
        presets = load_presets()
        return [(presets[n].label + _mark(self.pool.why_not(presets[n])), n) for n in self.presets]

    def switch(self, preset: str) -> tuple:
        """A visitor picked a pair: its cards, pane names and note, its examples and reading settings.
        A pair that cannot load is refused and the dropdown returns to the pair on screen."""
        try:
            loaded = self.load(preset)
        except gr.Error as err:
            gr.Warning(str(err.message if hasattr(err, "message") else err))
            log.info("pair %r refused: %s", preset, err)
            return (*(gr.skip() for _ in range(5)), gr.Dropdown(value=self._on_screen()), gr.skip(), gr.skip())
        return (*loaded, gr.Dropdown(value=preset), *preset_reading(preset, self.custom))

    def _on_screen(self) -> str:
        loaded = self.pool.loaded_preset
        return loaded if loaded in self.presets else self.presets[0]

    def open_page(self, request: gr.Request = None) -> tuple:
        """The page as a shared link asks for it (share.py), else the default pair: switch's outputs,
        then the prompt, the settings and the race, blind and example choices."""
        wanted, problems = share.parse(dict(getattr(request, "query_params", None) or {}), self.presets)
        for problem in problems:
            gr.Warning(problem)
        preset = wanted.pop("preset", self.presets[0])
        head = self.switch(preset)
        # the pair's penalty (switch's last output) unless the link names one
        values = [wanted.get(name, head[-1] if name == "repetition_penalty" else gr.skip())
                  for name in share.VALUE_NAMES]
        return (*head[:-1], *values)

    def pane_headers(self, preset: str, blind: bool) -> tuple:
        """Cards and pane names when Compare is pressed: hidden in blind mode until a vote."""
        if blind or preset == RANDOM:
            hidden = "🔒 Model hidden until you vote (blind mode: sides shuffled)."
            return hidden, hidden, gr.Textbox(label="Model A"), gr.Textbox(label="Model B"), ""
        return (*self.load(preset)[:4], "")

    @clear_errors("The comparison")
    def compare(self, prompt: str, max_new_tokens: int = 128, do_sample: bool = False,
                temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                repetition_penalty: float = 1.0, seed: int = 0, fixed_length: bool = False,
                preset: str | None = None, blind: bool = False, race: str = race_modes.AUTO,
                request: gr.Request = None) -> Iterator[tuple]:
        """Stream both panes: (left text, right text, left stats, right stats, stats JSON, comparison id).
        In blind mode the sides are shuffled and the models named only after a vote. ``race``: auto
        (each model alone: in turn on one device, at once on two GPUs) or shared (both at once)."""
        settings, preset, blind = self._checked(prompt, max_new_tokens, do_sample, temperature, top_p, top_k,
                                                repetition_penalty, seed, fixed_length, preset, blind, race)
        session = _session_id(request)
        self._rate_check(session, _client_address(request, self.limits.trust_proxy))
        swap = blind and random.random() < 0.5
        preset = self._drawn(preset)
        models = self._models(preset)
        if swap:
            models = swap_sides(models)
        comparison_id = self._record_start(prompt, preset, models, settings, blind, session)
        if self.gpu_stream is not None:  # ZeroGPU: one GPU task for both models, stopped by cancellation
            stream = self.gpu_stream(prompt, settings.to_dict(), preset, swap, blind, race)
        else:
            run = PairRun(models, prompt, settings, mode=race)
            self._register(session, run)
            stream = pane_view.closing(run)
        last = None
        try:
            for panes in stream:
                last = panes
                yield (*pane_view.pane_outputs(panes, blind), comparison_id)
        finally:
            if self.gpu_stream is None:
                self._unregister(session, run)
            self._record_finish(comparison_id, last, blind)

    def _record_start(self, prompt, preset, models, settings, blind, session: str) -> str:
        if self.store is None:
            return ""
        new = NewComparison(prompt, models["left"].spec.model_id, models["right"].spec.model_id, settings.to_dict(),
                            preset, blind, models["left"].spec.revision, models["right"].spec.revision,
                            models["left"].card.to_dict(), models["right"].card.to_dict(), owner=session)
        return self.store.start_comparison(new)

    def _record_finish(self, comparison_id: str, panes: dict | None, blind: bool) -> None:
        if self.store is None or not comparison_id or panes is None:
            return
        result = pane_view.stored_result(panes, blind)
        self.store.finish_comparison(comparison_id, result.left_text, result.right_text, result.left_stats,
                                     result.right_stats, result.status)

    def stop(self, request: gr.Request = None) -> None:
        """Stop the comparison of this browser session (the button also cancels the event)."""
        with self._lock:
            run = self._runs.get(_session_id(request))
        if run is not None:
            run.stop()

    def active_runs(self) -> int:
        with self._lock:
            return len(self._runs)

    def load_custom(self, left_id: str, right_id: str) -> tuple:
        """Free model entry (operator opt-in): load any two Hub models, safetensors only, no remote code."""
        if not self.free_entry:
            raise gr.Error("Free model entry is disabled on this deployment; pick a preset.")
        try:
            self.custom = custom_preset(left_id, right_id)
        except KeyError as err:
            raise gr.Error(str(err.args[0])) from err
        return (*self.load(CUSTOM), gr.Dropdown(value=CUSTOM))

    def loadable_presets(self) -> list[str]:
        """The offered presets whose two models can load here now (availability.py answers in milliseconds)."""
        presets = load_presets()
        return [name for name in self.presets if all(
            why_not_loadable(spec) is None
            for spec in preset_specs(presets[name], self.pool.random_weights, self.pool.init_std))]

    def _drawn(self, preset: str) -> str:
        """The preset itself, or for RANDOM one of the loadable offered presets drawn at random."""
        if preset != RANDOM:
            return preset
        candidates = self.loadable_presets()
        if not candidates:
            raise gr.Error("No offered pair can load here now, so none can be drawn: pick a preset.")
        return random.choice(candidates)

    def _check_preset(self, preset) -> None:
        """Model ids come only from the allowlist: the offered presets (or a random draw among them), plus the
        custom pair when the operator enabled free entry and one was loaded."""
        allowed = self.presets + [RANDOM] + ([CUSTOM] if self.free_entry and self.custom else [])
        if preset not in allowed:
            raise gr.Error(f"Unknown preset '{str(preset)[:60]}'. Choose one of: {', '.join(allowed)}.")

    def _models(self, preset: str):
        self._check_preset(preset)
        try:
            return self.pool.pair(preset, self.custom if preset == CUSTOM else None)
        except ModelLoadError as err:
            raise gr.Error(str(err)) from err

    def _register(self, session: str, run: PairRun) -> None:
        with self._lock:
            previous = self._runs.get(session)
            self._runs[session] = run
        if previous is not None:
            previous.stop()

    def _unregister(self, session: str, run: PairRun) -> None:
        with self._lock:
            if self._runs.get(session) is run:
                del self._runs[session]


COMPARE_INPUTS = ("prompt", "max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty",
                  "seed", "fixed_length", "preset", "blind", "race")


def _mark(why: str | None) -> str:
    if why is None:
        return ""
    if "needs a GPU" in why:
        return " — needs a GPU"
    return " — server not answering" if "does not answer" in why else " — needs network"


def preset_reading(preset: str, custom: Preset | None = None) -> tuple:
    """The examples that suit the pair (story continuations for base models) and its repetition penalty."""
    info = custom if preset == CUSTOM else (None if preset == RANDOM else load_presets()[preset])
    kinds = info.prompt_kinds if info is not None else ("story",)
    prompts = load_prompts(kinds)
    penalty = (info.defaults if info is not None else {}).get("repetition_penalty", DEFAULT_PENALTY)
    return (gr.Dataset(samples=[[p.text] for p in prompts], sample_labels=[p.title for p in prompts]),
            gr.Slider(value=penalty))


DEFAULT_PENALTY = 1.2  # 1.0 lets small base models loop ("and a whale, and a whale…")


def _check_race(race) -> None:
    if race not in race_modes.REQUESTS:
        raise gr.Error(f"race must be one of {', '.join(race_modes.REQUESTS)} (auto: each model alone), "
                       f"got {str(race)[:40]!r}.")


def _failing_input(message: str) -> int:
    """Index of the input an error message is about (the prompt unless another is named first)."""
    named = [(message.find(name), i) for i, name in enumerate(COMPARE_INPUTS) if name in message]
    return min(named)[1] if named else 0


def _settings(max_new_tokens, do_sample, temperature, top_p, top_k, repetition_penalty, seed,
              fixed_length, max_time_s) -> GenerationSettings:
    try:
        return GenerationSettings(max_new_tokens=_as_int(max_new_tokens, "max_new_tokens"),
                                  do_sample=do_sample, temperature=temperature, top_p=top_p,
                                  top_k=_as_int(top_k, "top_k"), repetition_penalty=repetition_penalty,
                                  seed=_as_int(seed, "seed"), fixed_length=fixed_length, max_time_s=max_time_s)
    except SettingsError as err:
        raise gr.Error(str(err)) from err


def _as_int(value, name: str):
    """Sliders and number boxes send floats such as 64.0; keep non-integers for the error."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None:
        raise gr.Error(f"{name} is missing: give a whole number.")
    return value


def _client_address(request: gr.Request | None, trust_proxy: bool) -> str | None:
    """The caller's address: the first X-Forwarded-For hop behind a trusted proxy, else the socket's peer."""
    if request is None:
        return None
    if trust_proxy:
        forwarded = (request.headers.get("x-forwarded-for") or "").split(",")[0].strip()
        if forwarded:
            return forwarded
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


def _session_id(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "no-session"


RANDOM_NOTE = ("**Random pair (blind).** Each Compare draws one of the {n} offered pairs that can load here, "
               "at random, and shuffles the sides; the pair and the sides are named after your vote.")
