"""One comparison: both models on one prompt, in the race mode that ``comparer.race`` resolves.

Producers run on long-lived lanes (``comparer.lanes``: per-thread CUDA state is made once, at load)
and push (side, kind, payload) events into one queue; the consumer applies whatever has arrived and
yields a snapshot every ``refresh_s``.

- ``per-gpu`` / ``shared``: one lane per side, both at once; neither waits for the other (no
  round-robin ``next()`` over two generators).
- ``alone``: one lane runs the sides in turn, so two models never compute at once. The first
  side's pane shows its progress while it is measured; from the moment the second side starts, the
  first side's tokens are shown at the offsets at which they were made (``PaneState.token_times_s``) while the
  second streams live, so both panes run on one clock from one start.

Stop, a closed consumer (client disconnect) or a stalled producer sets the shared stop event; the
replay freezes where it is, and the producers' tasks are waited for before the generator returns.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field, replace
from typing import Iterator

import torch

from comparer import energy, lanes, memory, race
from comparer.live import PaneMemory, PaneStats, pane_stats
from comparer.engines.loaded import LoadedModel
from comparer.models.arch import SSM
from comparer.settings import GenerationSettings
from comparer.validation import prompt_token_limit, trim_prompt_ids

REFRESH_S = 0.05
MEASURING_REFRESH_S = 0.25
STALL_TIMEOUT_S = 120.0
JOIN_TIMEOUT_S = 5.0


@dataclass
class PaneState:
    """What one pane holds: its run on its own clock (``run_*``) and where that run sits on the
    shared display clock (``shift_s``: None until the pane is shown)."""

    side: str
    model_id: str
    label: str = ""
    max_tokens: int = 0
    prompt_tokens: int = 0
    token_ids: list[int] = field(default_factory=list)
    run_times_s: list[float] = field(default_factory=list)
    cache_bytes: list[int | None] = field(default_factory=list)
    run_start_s: float | None = None
    shift_s: float | None = None
    workspace_bytes: int | None = None
    energy_j: float | None = None  # the device's counter over its whole generation (alone only; energy.py)
    ended: bool = False
    complete: bool = False  # its run ended by itself (length, EOS, time limit), not by Stop
    visible_tokens: int = 0
    text: str = ""
    status: str = "waiting"
    error: str | None = None
    warning: str | None = None
    notice: str | None = None  # said above the text for the whole run (race.path_notice)
    time_limited: bool = False  # its run was cut by the time limit: stopped, not done
    stats: PaneStats = field(default_factory=PaneStats)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "error")

    @property
    def t_start_s(self) -> float | None:
        """The pane's start on the shared clock."""
        return None if self.shift_s is None or self.run_start_s is None else self.run_start_s + self.shift_s

    @property
    def token_times_s(self) -> list[float]:
        """When each token is shown on the shared clock (its own run's offsets, kept exactly)."""
        return [] if self.shift_s is None else [t + self.shift_s for t in self.run_times_s]


class PairRun:
    """One comparison: ``for snapshot in run: ...``; ``run.stop()`` ends both sides."""

    def __init__(self, models: dict[str, LoadedModel], prompt: str, settings: GenerationSettings,
                 mode: str = race.AUTO, refresh_s: float = REFRESH_S, stall_timeout_s: float = STALL_TIMEOUT_S,
                 stop_event: threading.Event | None = None):
        self.models, self.prompt, self.settings = models, prompt, settings
        self.placements = {side: race.placement_of(m.card) for side, m in models.items()}
        self.mode = race.resolve_mode(mode, self.placements)
        self.refresh_s, self.stall_timeout_s = refresh_s, stall_timeout_s
        self.stop_event = stop_event or threading.Event()
        self.panes = {side: PaneState(side, m.spec.model_id, race.mode_label(self.mode, self.placements[side]),
                                      settings.max_new_tokens) for side, m in models.items()}
        notice = race.path_notice({side: m.card.engine for side, m in models.items()})
        for pane in self.panes.values():
            pane.notice = notice
        self._weights_b = {side: m.engine.weight_bytes() for side, m in models.items()}
        self.order = race.run_order({side: race.expected_run_s(m.pace, self._weights_b[side], settings.max_new_tokens)
                                     for side, m in models.items()})
        self._cache_b = {side: m.engine.cache_bytes() for side, m in models.items()}  # preallocated: fixed
        self._events: queue.Queue = queue.Queue()
        self._tasks: list[Future] = []
        self._frozen_s: float | None = None

    def stop(self) -> None:
        self.stop_event.set()

    def __iter__(self) -> Iterator[dict[str, PaneState]]:
        self._start_producers()
        try:
            yield from self._consume()
        finally:
            self.stop_event.set()
            wait_for(self._tasks, timeout=JOIN_TIMEOUT_S)

    @property
    def threads_alive(self) -> int:
        """This comparison's producer tasks still running (0 once it has ended)."""
        return sum(not task.done() for task in self._tasks)

    # ---- producers ----------------------------------------------------------------------------
    def _start_producers(self) -> None:
        if self.mode == race.ALONE:
            self._tasks.append(lanes.submit(lanes.TURNS, self._produce_in_turn))
            return
        for side in self.models:
            self._tasks.append(lanes.submit(side, self._produce, side))

    def _produce_in_turn(self) -> None:
        """Alone mode: the side expected to finish first, then the other; never both at once."""
        for side in self.order:
            if self.stop_event.is_set():
                self._events.put((side, "end", None))
            else:
                self._produce(side)

    def _produce(self, side: str) -> None:
        """Runs on a lane; always ends with an 'end' event, even after an error."""
        model = self.models[side]
        try:
            _use_device(model.card.device)
            prompt_ids, warning = self._prompt_ids(model)
            if warning:
                self._events.put((side, "warning", warning))
            on_token = self._token_sink(side, model.card.device)
            meter = self._meter(model.card.device)
            e0_j = energy.read_synced(meter, model.card.device) if meter is not None else 0.0
            self._events.put((side, "start", (time.perf_counter(), len(prompt_ids))))
            result = model.engine.generate(prompt_ids, self._run_settings(), stop=self.stop_event,
                                           on_token=on_token)
            if meter is not None and result.token_ids:
                self._events.put((side, "energy", energy.read_synced(meter, model.card.device) - e0_j))
            self._events.put((side, "complete", (not result.stopped_early, result.t_start_s)))
            if result.time_limited:
                limit_s = self._run_settings().max_time_s
                self._events.put((side, "time limit", f"stopped by the time limit ({limit_s:.0f} s for this "
                                                      f"model) after {len(result.token_ids)} tokens"))
        except Exception as err:  # shown in this pane; the other pane carries on
            model.engine.release()
            self._events.put((side, "error", f"{type(err).__name__}: {err}"))
        finally:
            self._events.put((side, "end", None))

    def _meter(self, device: str):
        """The device's energy counter while this model runs alone on it; sharing, no figure is its own."""
        return None if self.mode == race.SHARED else energy.meter_for(device)

    def _token_sink(self, side: str, device: str):
        """Queues each token; on CUDA with the device to itself also the prefill's workspace, read
        from the allocator's peak when the first token exists (nothing else ran in between)."""
        measure = memory.is_cuda(device) and self.mode != race.SHARED
        if measure:
            torch.cuda.reset_peak_memory_stats(device)
        first = [True]

        def sink(event) -> None:
            if first[0] and measure:
                self._events.put((side, "workspace", memory.workspace_bytes(device)))
            first[0] = False
            self._events.put((side, "token", event))
        return sink

    def _run_settings(self) -> GenerationSettings:
        """In alone mode the two runs follow each other, so each gets half the comparison's time limit."""
        if self.mode == race.ALONE and self.settings.max_time_s:
            return replace(self.settings, max_time_s=self.settings.max_time_s / 2)
        return self.settings

    def _prompt_ids(self, model: LoadedModel) -> tuple[list[int], str | None]:
        return prompt_ids_for(model, self.prompt, self.settings.max_new_tokens)

    # ---- consumer -----------------------------------------------------------------------------
    def _consume(self) -> Iterator[dict[str, PaneState]]:
        """A snapshot every ``refresh_s``, not one per token: between them the consumer sleeps, so
        it takes as little as it can from the model computing (on a small CPU, the GIL and cores)."""
        open_sides, last_event_s, next_yield_s = set(self.panes), time.perf_counter(), 0.0
        while True:
            got_any = self._drain(open_sides, max(next_yield_s - time.perf_counter(), 0.0))
            now_s = time.perf_counter()
            last_event_s = now_s if got_any else last_event_s
            if open_sides and now_s - last_event_s > self.stall_timeout_s:
                self._fail_stalled(open_sides)
            if self.stop_event.is_set() and self._frozen_s is None:
                self._frozen_s = now_s
            finished = not (open_sides or self._replaying(now_s))
            if now_s >= next_yield_s or finished:
                next_yield_s = now_s + self._refresh_now_s()
                yield self._snapshot(now_s)
            if finished:
                return

    def _refresh_now_s(self) -> float:
        """While no pane is shown yet (the first model measured alone, only its progress on screen),
        snapshots come less often: each wake-up takes the GIL from a prefill that launches kernels
        from Python (Mamba-2.8B's on an H200 is host-bound) and showed in its TTFT."""
        shown = any(p.shift_s is not None for p in self.panes.values())
        return self.refresh_s if shown else max(self.refresh_s, MEASURING_REFRESH_S)

    def _replaying(self, now_s: float) -> bool:
        """A pane still has tokens due later on the shared clock (and nobody pressed Stop)."""
        return not self.stop_event.is_set() and any(
            p.shift_s is not None and p.run_times_s and p.run_times_s[-1] + p.shift_s > now_s
            for p in self.panes.values())

    def _drain(self, open_sides: set[str], wait_s: float) -> bool:
        """Wait ``wait_s`` (Stop cuts it short), then apply every event queued by then. Once stopped,
        wait on the queue for the producers' last events instead (a spinning consumer would hold
        the GIL the producers need to finish)."""
        stopping = self.stop_event.wait(wait_s)
        got_any = False
        while True:
            try:
                event = self._events.get(timeout=self.refresh_s) if stopping and not got_any else \
                    self._events.get_nowait()
            except queue.Empty:
                return got_any
            self._apply(*event, open_sides=open_sides)
            got_any = True

    def _apply(self, side: str, kind: str, payload, open_sides: set[str]) -> None:
        pane = self.panes[side]
        if kind == "start":
            pane.run_start_s, pane.prompt_tokens = payload
            self._place_on_clock(side, pane.run_start_s)
        elif kind == "token":
            pane.token_ids.append(payload.token_id)
            pane.run_times_s.append(payload.t_s)
            pane.cache_bytes.append(payload.cache_bytes)
        elif kind == "workspace":
            pane.workspace_bytes = payload
        elif kind == "energy":
            pane.energy_j = payload
        elif kind == "warning":
            pane.warning = payload
        elif kind == "time limit":
            pane.time_limited = True
            pane.warning = f"{pane.warning}; {payload}" if pane.warning else payload
        elif kind == "error":
            pane.error = payload
        elif kind == "complete":  # the engine's own start replaces the one taken just before the call
            pane.complete, pane.run_start_s = payload
            self._align()
        elif kind == "end":
            self._end(side, open_sides)

    def _place_on_clock(self, side: str, t_start_s: float) -> None:
        """Concurrent modes: every pane on its own start. Alone mode: the second side's start is the
        shared clock's start for both panes; the first side waits for it, unshown."""
        if self.mode != race.ALONE or side == self.order[1]:
            self.panes[side].shift_s = 0.0
        self._align()

    def _align(self) -> None:
        """Alone mode: the first side's run moved so that it starts when the second side starts."""
        first, second = (self.panes[side] for side in self.order)
        if self.mode == race.ALONE and second.shift_s is not None and None not in (first.run_start_s, second.run_start_s):
            first.shift_s = second.run_start_s - first.run_start_s

    def _end(self, side: str, open_sides: set[str]) -> None:
        open_sides.discard(side)
        pane = self.panes[side]
        pane.ended = True
        if self.mode == race.ALONE and side == self.order[1]:
            first = self.panes[self.order[0]]
            if first.shift_s is None and first.run_start_s is not None:  # the second never started
                first.shift_s = time.perf_counter() - first.run_start_s
        if self.mode != race.SHARED and pane.error is None and pane.complete:
            pace = race.pace_of(pane.run_start_s or 0.0, pane.run_times_s)
            self.models[side].pace = pace or self.models[side].pace

    def _fail_stalled(self, open_sides: set[str]) -> None:
        self.stop_event.set()
        for side in list(open_sides):
            pane = self.panes[side]
            pane.error, pane.ended = f"no token for {self.stall_timeout_s:.0f} s; stopped", True
            open_sides.discard(side)

    # ---- snapshot -----------------------------------------------------------------------------
    def _snapshot(self, now_s: float) -> dict[str, PaneState]:
        shown_s = self._frozen_s if self._frozen_s is not None else now_s
        for side, pane in self.panes.items():
            times_s = pane.token_times_s
            visible = race.visible(times_s, shown_s)
            if visible != pane.visible_tokens or not pane.text:
                pane.text = self.models[side].tokenizer.decode(pane.token_ids[:visible], skip_special_tokens=True)
            pane.visible_tokens = visible
            pane.status = self._status(pane)
            stats = (pane_stats(pane.t_start_s, times_s[:visible], len(pane.text), shown_s)
                     if pane.t_start_s is not None else PaneStats())
            pane.stats = stats.with_memory(self._memory(side, pane), pane.label)
            if pane.energy_j is not None and visible == len(pane.token_ids) and visible:
                pane.stats.energy_j_per_token = pane.energy_j / visible
        return self.panes

    def _status(self, pane: PaneState) -> str:
        if pane.error is not None:
            return "error"
        if pane.shift_s is None:
            if pane.ended:
                return "stopped"
            return "measuring" if pane.run_start_s is not None else "waiting"
        if pane.visible_tokens < len(pane.token_ids) and not self.stop_event.is_set():
            return "generating"
        if pane.ended:
            done = pane.complete and not pane.time_limited and pane.visible_tokens == len(pane.token_ids)
            return "done" if done else "stopped"
        return "stopped" if self._frozen_s is not None else "generating"

    def _memory(self, side: str, pane: PaneState) -> PaneMemory | None:
        """This model's own bytes at the token on screen (see ``memory_kind`` for what is counted);
        None for an engine that holds no weights here."""
        model = self.models[side]
        if self._weights_b[side] is None:
            return None
        shown = pane.cache_bytes[:pane.visible_tokens]
        cache_b = shown[-1] if shown and shown[-1] is not None else self._cache_b[side]
        kind = _memory_kind(model.card.device, self.mode)
        if cache_b is None:  # the engine reports none: the card's formula, said so
            context = pane.prompt_tokens + pane.visible_tokens
            cache_b = model.card.kv_bytes_per_token * context + model.card.ssm_state_bytes
            kind += "; cache computed from the config"
        return PaneMemory(self._weights_b[side], cache_b, pane.workspace_bytes, kind)


def _memory_kind(device: str, mode: str) -> str:
    if not memory.is_cuda(device):
        return "its tensors, measured; activations not counted"
    if mode == race.SHARED:
        return "its tensors, measured; prefill workspace not separable while sharing"
    return "its tensors and prefill peak, measured"


def _use_device(device: str) -> None:
    """A lane computes on its model's GPU (the current device is per thread)."""
    if memory.is_cuda(device):
        torch.cuda.set_device(torch.device(device))


def prompt_ids_for(model: LoadedModel, prompt: str, max_new_tokens: int) -> tuple[list[int], str | None]:
    """The prompt's ids as this model gets them: trimmed to fit its positions with the new tokens
    (an SSM has no such limit), with a warning when trimmed."""
    ids = model.tokenizer(prompt)["input_ids"]
    limit = prompt_token_limit(model.card.max_positions if model.card.family != SSM else None, max_new_tokens)
    return trim_prompt_ids(ids, limit)


def swap_sides(models: dict[str, LoadedModel]) -> dict[str, LoadedModel]:
    """The same two models in the other panes (blind mode shuffles the sides)."""
    return {"left": models["right"], "right": models["left"]}


def progress_line(pane: PaneState) -> str:
    """What a pane says before it is shown: its measurement's progress, or that it waits its turn."""
    if pane.status == "measuring":
        return f"measuring alone: {len(pane.token_ids)} / {pane.max_tokens} tokens"
    if pane.status == "waiting":
        return "waiting: runs alone after the other model"
    return pane.status
