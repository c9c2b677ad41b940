"""Pane state -> what the UI shows and what the review store keeps: both read the same PaneState.

Why a module: the store used to rebuild its record by unpacking the formatted UI tuple, so a change
to the panes' wording could change what was stored. Here each consumer reads the pane state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from comparer.live import format_stats_markdown
from comparer.pair import PairRun, PaneState, progress_line

# In blind mode the engine names would say which side is which family (a CPU Mamba runs comparer's engine)
BLIND_NOTICE = "unequal paths: the two sides run different engines (named after your vote)"
HIDDEN_NAMES = {"left": "Model A", "right": "Model B"}


@dataclass(frozen=True)
class StoredResult:
    """What the review store keeps of a finished comparison."""

    left_text: str
    right_text: str
    left_stats: dict
    right_stats: dict
    status: str  # done | stopped | stopped: time limit | error


def closing(run: PairRun) -> Iterator[dict[str, PaneState]]:
    """Iterate a run's pane states, closing it (stop + join) however the consumer leaves."""
    panes_iter = iter(run)
    try:
        yield from panes_iter
    finally:
        panes_iter.close()


def pane_outputs(panes: dict[str, PaneState], blind: bool = False) -> tuple:
    """(left text, right text, left stats markdown, right stats markdown, stats JSON by side)."""
    left, right = panes["left"], panes["right"]
    stats = {side: pane_json(pane, blind) for side, pane in panes.items()}
    if blind:
        for side, name in HIDDEN_NAMES.items():
            stats[side]["model_id"] = f"{name} (hidden until you vote)"
    return (left.text, right.text, stats_markdown(left, blind), stats_markdown(right, blind), stats)


def stored_result(panes: dict[str, PaneState], blind: bool = False) -> StoredResult:
    """The store's record, read from the pane state (the model ids are stored apart, at the start)."""
    stats = {side: {k: v for k, v in pane_json(pane, blind).items() if k != "model_id"}
             for side, pane in panes.items()}
    return StoredResult(panes["left"].text, panes["right"].text, stats["left"], stats["right"],
                        _status(list(panes.values())))


def _status(panes: list[PaneState]) -> str:
    statuses = {pane.status for pane in panes}
    if "error" in statuses:
        return "error"
    if any(pane.time_limited for pane in panes):
        return "stopped: time limit"
    return "stopped" if statuses & {"stopped", "generating", "measuring", "waiting"} else "done"


def notice(pane: PaneState, blind: bool) -> str | None:
    return BLIND_NOTICE if pane.notice and blind else pane.notice


def stats_markdown(pane: PaneState, blind: bool = False) -> str:
    status = progress_line(pane) if pane.error is None else f"error — {pane.error}"
    warning = f"\n\n⚠️ {pane.warning}" if pane.warning else ""
    said = f"  \n<small>⚠️ {notice(pane, blind)}</small>" if pane.notice else ""
    return format_stats_markdown(pane.stats, status) + said + warning


def pane_json(pane: PaneState, blind: bool = False) -> dict:
    return {"model_id": pane.model_id, "status": pane.status, "error": pane.error, "warning": pane.warning,
            "prompt_tokens": pane.prompt_tokens, "mode": pane.label, "produced_tokens": len(pane.token_ids),
            "notice": notice(pane, blind),
            **pane.stats.to_dict()}
