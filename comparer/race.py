"""How the two models of a comparison share the hardware, and the one clock both panes are shown on.

Why this exists: two models generating at once on one device slow each other, and unequally (on an
H200 Mamba-2.8B fell from 502 to 192 tok/s beside Pythia-6.9B, which fell from 220 to 161), so a
race run that way shows contention, not architecture. Three modes:

- ``alone`` (the default on one device): the models run one after the other, each with the device to
  itself; the first one's tokens are kept with their timestamps and played back, at the offsets at
  which they were made, from the moment the second one starts, while the second streams live. Both
  panes start together on one clock and each shows its own model's real pace.
- ``per-gpu`` (the default when the two models sit on two different GPUs): both run at once, each
  alone on its GPU; nothing is replayed.
- ``shared``: both at once on one device, asked for explicitly; it shows what serving two models on
  one device costs, and every figure says so.

Everything here is pure (no threads, no torch): the pair code in ``comparer.pair`` calls it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from comparer import memory

ALONE, PER_GPU, SHARED = "alone", "per-gpu", "shared"
AUTO = "auto"
REQUESTS = (AUTO, ALONE, SHARED)


class RaceModeError(ValueError):
    """A race mode that is unknown or impossible on this placement; the message says what to use."""


@dataclass(frozen=True)
class Placement:
    """Where one model's weights are: ``gpu`` is its one CUDA index, None on the CPU or when split."""

    device: str
    gpu: int | None
    server: str | None = None  # a served model's server (engines/remote.py): hardware of its own

    @property
    def hardware(self) -> str | None:
        """What it alone computes on: one GPU or one server; None when it may share (CPU, split)."""
        return self.server or (f"cuda:{self.gpu}" if self.gpu is not None else None)

    @classmethod
    def of(cls, device: str, device_map: str) -> "Placement":
        """``device_map`` is the card's: a device string, or a JSON map when accelerate split the model."""
        if memory.is_served(device):  # the card's device map names the server's hardware
            return cls(device, None, device_map.removeprefix("server hardware: "))
        if not device.startswith("cuda") or device_map.lstrip().startswith("{"):
            return cls(device, None)
        return cls(device, int(device.split(":")[1]) if ":" in device else 0)


def resolve_mode(requested: str, placements: dict[str, Placement]) -> str:
    """The mode that runs: ``auto`` is ``per-gpu`` when the models sit whole on two different GPUs,
    else ``alone``; ``shared`` on two different GPUs is ``per-gpu`` too (they share nothing)."""
    if requested not in REQUESTS + (PER_GPU,):
        raise RaceModeError(f"Unknown race mode '{str(requested)[:40]}'; use one of: {', '.join(REQUESTS)}.")
    hardware = [p.hardware for p in placements.values()]
    apart = None not in hardware and len(set(hardware)) == len(hardware)
    if requested == PER_GPU and not apart:
        raise RaceModeError("per-gpu needs each model whole on its own GPU; this pair shares a device. "
                            "Use auto or alone.")
    if apart and requested in (AUTO, SHARED, PER_GPU):
        return PER_GPU
    return SHARED if requested == SHARED else ALONE


def mode_label(mode: str, placement: Placement) -> str:
    """What a pane says about how its figures were made."""
    if mode == PER_GPU and placement.server:
        return "alone on its server, timed at the client (network included)"
    if mode == PER_GPU:
        return f"alone on GPU {placement.gpu}"
    if mode == SHARED:
        return "both at once, sharing one device"
    return "alone, shown on one clock"


@dataclass(frozen=True)
class Pace:
    """A model's measured pace on this device, from its last run alone: a hint for the order only."""

    ttft_s: float
    s_per_token: float

    def expected_s(self, new_tokens: int) -> float:
        return self.ttft_s + self.s_per_token * new_tokens


def run_order(expected_s: dict[str, float]) -> tuple[str, str]:
    """The side expected to finish first runs first. The comparison then lasts T1 + max(T1, T2) =
    T1 + T2 (the device's work, as when both share it); the other order would last 2 x T_slow."""
    first = min(expected_s, key=lambda side: (expected_s[side], side))
    return first, next(side for side in expected_s if side != first)


def expected_run_s(pace: Pace | None, weight_bytes: int | None, new_tokens: int) -> float:
    """From the measured pace when there is one; else the weights' size (decode reads them per token),
    which orders but does not predict: it is used only to compare two models."""
    return pace.expected_s(new_tokens) if pace is not None else float(weight_bytes or 0)


def pace_of(t_start_s: float, token_times_s: list[float]) -> Pace | None:
    if len(token_times_s) < 2:
        return None
    span_s = token_times_s[-1] - token_times_s[0]
    return Pace(token_times_s[0] - t_start_s, span_s / (len(token_times_s) - 1))


def visible(token_times_s: list[float], now_s: float) -> int:
    """How many tokens are due on the shared clock at ``now_s`` (the list is in order)."""
    return bisect.bisect_right(token_times_s, now_s)


def placement_of(card) -> Placement:
    return Placement.of(card.device, card.device_map)


def path_notice(engines: dict[str, str]) -> str | None:
    """A warning for both panes when the two sides run different kinds of engine (``card.engine`` per side):
    their speeds then compare the code paths as much as the models. It names the engines, which can tell
    the families apart: blind mode shows ui/panes.BLIND_NOTICE instead."""
    left, right = engines.get("left", ""), engines.get("right", "")
    if left == right:
        return None
    return (f"unequal paths (left: {left or 'unknown'}, right: {right or 'unknown'}): "
            "the speeds compare engines as well as models")
