"""Two engines generating at the same time, merged through one queue.

Each engine runs in its own thread and pushes (side, kind, payload) events into a single queue;
the consumer applies whatever has arrived and yields a snapshot at most every ``refresh_s``.
Neither side ever waits for the other (no round-robin ``next()`` over two generators). Stop, a
closed consumer (client disconnect) or a stalled producer sets the shared stop event, and the
threads are joined before the generator returns.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

from comparer import analytic, memory
from comparer.live import PaneStats, pane_stats
from comparer.loading import LoadedModel
from comparer.settings import GenerationSettings
from comparer.validation import prompt_token_limit, trim_prompt_ids

REFRESH_S = 0.05
STALL_TIMEOUT_S = 120.0
JOIN_TIMEOUT_S = 5.0
SIDES = ("left", "right")


@dataclass
class PaneState:
    """What one pane shows right now."""

    side: str
    model_id: str
    prompt_tokens: int = 0
    token_ids: list[int] = field(default_factory=list)
    token_times_s: list[float] = field(default_factory=list)
    t_start_s: float | None = None
    text: str = ""
    status: str = "waiting"
    error: str | None = None
    warning: str | None = None
    stats: PaneStats = field(default_factory=PaneStats)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "error")


class PairRun:
    """One comparison: ``for snapshot in run: ...``; ``run.stop()`` ends both sides."""

    def __init__(self, models: dict[str, LoadedModel], prompt: str, settings: GenerationSettings,
                 refresh_s: float = REFRESH_S, stall_timeout_s: float = STALL_TIMEOUT_S,
                 stop_event: threading.Event | None = None):
        self.models, self.prompt, self.settings = models, prompt, settings
        self.refresh_s, self.stall_timeout_s = refresh_s, stall_timeout_s
        self.stop_event = stop_event or threading.Event()
        self.panes = {side: PaneState(side, m.spec.model_id) for side, m in models.items()}
        self._events: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []

    def stop(self) -> None:
        self.stop_event.set()

    def __iter__(self) -> Iterator[dict[str, PaneState]]:
        self._start_producers()
        try:
            yield from self._consume()
        finally:
            self.stop_event.set()
            for thread in self._threads:
                thread.join(timeout=JOIN_TIMEOUT_S)

    @property
    def threads_alive(self) -> int:
        return sum(t.is_alive() for t in self._threads)

    def _start_producers(self) -> None:
        for side, model in self.models.items():
            thread = threading.Thread(target=self._produce, args=(side, model), daemon=True,
                                      name=f"comparer-{side}")
            self._threads.append(thread)
            thread.start()

    def _produce(self, side: str, model: LoadedModel) -> None:
        """Runs in the side's own thread; always ends with an 'end' event, even after an error."""
        try:
            prompt_ids, warning = self._prompt_ids(model)
            if warning:
                self._events.put((side, "warning", warning))
            self._events.put((side, "start", (time.perf_counter(), len(prompt_ids))))
            model.engine.generate(prompt_ids, self.settings, stop=self.stop_event,
                                  on_token=lambda event: self._events.put((side, "token", event)))
        except Exception as err:  # shown in this pane; the other pane carries on
            model.engine.release()
            self._events.put((side, "error", f"{type(err).__name__}: {err}"))
        finally:
            self._events.put((side, "end", None))

    def _prompt_ids(self, model: LoadedModel) -> tuple[list[int], str | None]:
        ids = model.tokenizer(self.prompt)["input_ids"]
        limit = prompt_token_limit(model.card.max_positions if model.card.family != "SSM" else None,
                                   self.settings.max_new_tokens)
        return trim_prompt_ids(ids, limit)

    def _consume(self) -> Iterator[dict[str, PaneState]]:
        open_sides, last_yield_s, last_event_s = set(self.panes), 0.0, time.perf_counter()
        while open_sides:
            got_any = self._drain(open_sides)
            now_s = time.perf_counter()
            last_event_s = now_s if got_any else last_event_s
            if now_s - last_event_s > self.stall_timeout_s:
                self._fail_stalled(open_sides)
            if now_s - last_yield_s >= self.refresh_s or not open_sides:
                last_yield_s = now_s
                yield self._snapshot(now_s)

    def _drain(self, open_sides: set[str]) -> bool:
        """Apply every event already queued (waiting up to refresh_s for the first)."""
        try:
            event = self._events.get(timeout=self.refresh_s)
        except queue.Empty:
            return False
        while True:
            self._apply(*event, open_sides=open_sides)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return True

    def _apply(self, side: str, kind: str, payload, open_sides: set[str]) -> None:
        pane = self.panes[side]
        if kind == "start":
            pane.t_start_s, pane.prompt_tokens = payload
            pane.status = "generating"
        elif kind == "token":
            pane.token_ids.append(payload.token_id)
            pane.token_times_s.append(payload.t_s)
        elif kind == "warning":
            pane.warning = payload
        elif kind == "error":
            pane.status, pane.error = "error", payload
        elif kind == "end":
            open_sides.discard(side)
            if pane.status != "error":
                pane.status = "stopped" if self.stop_event.is_set() else "done"

    def _fail_stalled(self, open_sides: set[str]) -> None:
        self.stop_event.set()
        for side in list(open_sides):
            pane = self.panes[side]
            pane.status, pane.error = "error", f"no token for {self.stall_timeout_s:.0f} s; stopped"
            open_sides.discard(side)

    def _snapshot(self, now_s: float) -> dict[str, PaneState]:
        for side, pane in self.panes.items():
            model = self.models[side]
            pane.text = model.tokenizer.decode(pane.token_ids, skip_special_tokens=True)
            mem_b, mem_kind = pane_memory(model, pane.prompt_tokens + len(pane.token_ids))
            if pane.t_start_s is not None:
                pane.stats = pane_stats(pane.t_start_s, pane.token_times_s, len(pane.text), now_s,
                                        mem_b, mem_kind)
        return self.panes


def swap_sides(models: dict[str, LoadedModel]) -> dict[str, LoadedModel]:
    """The same two models in the other panes (blind mode shuffles the sides)."""
    return {"left": models["right"], "right": models["left"]}


def pane_memory(model: LoadedModel, context_tokens: int) -> tuple[int, str]:
    """CUDA: this model's weights plus its cache at the current context (computed from the card,
    since both models share one allocator). CPU: the process RSS, shared by both models."""
    card = model.card
    if memory.is_cuda(card.device):
        own_b = card.n_params * analytic.dtype_bytes(card.dtype) + card.kv_bytes_per_token * context_tokens + card.ssm_state_bytes
        return own_b, "weights + cache, computed"
    return memory.process_rss_bytes(), "process RSS, both models"
