"""Long-lived threads that run generations: one lane per role, each running one task at a time.

Why not a new thread per comparison: CUDA libraries keep state per host thread (cuBLAS / cuBLASLt
handles and workspaces, the current device), made on a thread's first use. On an H200 a 256-token
Pythia-6.9B generation's first token came after 54-83 ms in a fresh thread against 15 ms in a
thread that had run one before (``assets/benchmarks/logs/h200-ttft-threads.txt``), and the pane showed
that set-up as the model's TTFT. Lanes live for the process, and the pool warms each model up in
every lane that will run it, so that cost is paid at load, never inside a measured run.

Roles: ``turns`` runs both models of an alone-mode race one after the other; ``left`` and ``right``
run one side each when both models run at once (per-gpu and shared modes).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

TURNS, LEFT, RIGHT = "turns", "left", "right"
ROLES = (TURNS, LEFT, RIGHT)

_LANES: dict[str, ThreadPoolExecutor] = {}
_RUNNING: set[Future] = set()
_LOCK = threading.Lock()


def _forget_lanes_in_a_forked_child() -> None:
    """A forked child (ZeroGPU runs the GPU function in one) has none of the parent's threads: an
    executor inherited from the parent would queue tasks that no thread ever runs."""
    global _LOCK
    _LANES.clear()
    _RUNNING.clear()
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_lanes_in_a_forked_child)


def submit(role: str, fn, *args) -> Future:
    """Run ``fn(*args)`` on the lane ``role`` (after whatever that lane is running now)."""
    with _LOCK:
        lane = _LANES.get(role)
        if lane is None:
            lane = _LANES[role] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lane-{role}")
        future = lane.submit(fn, *args)
        _RUNNING.add(future)
    future.add_done_callback(_finished)
    return future


def _finished(future: Future) -> None:
    with _LOCK:
        _RUNNING.discard(future)


def running() -> int:
    """Tasks submitted and not yet finished, over every lane (0 once every generation has ended)."""
    with _LOCK:
        return len(_RUNNING)


def run_on_every_lane(fn, *args) -> None:
    """``fn(*args)`` once on each lane, waiting for each: warm-ups that make every lane's
    per-thread state before anything is measured."""
    for role in ROLES:
        submit(role, fn, *args).result()
