"""Per-pane figures, from the engine's own token timestamps, and the compact strip that shows them.

Every pane says how its figures were made (``label``: the race mode of ``comparer.race``) and what
its memory counts (``memory_kind``): a figure without its method is not shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PaneMemory:
    """One model's own memory: its weights and its KV cache or SSM state as allocated, plus the
    transient workspace of its prefill where that can be told apart (CUDA, the device to itself)."""

    weights_bytes: int
    cache_bytes: int
    workspace_bytes: int | None
    kind: str

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.cache_bytes + (self.workspace_bytes or 0)


@dataclass
class PaneStats:
    tokens: int = 0
    ttft_s: float | None = None
    decode_tok_per_s: float | None = None
    chars_per_s: float | None = None
    elapsed_s: float = 0.0
    memory_bytes: int | None = None
    memory_kind: str = ""
    weights_bytes: int | None = None
    cache_bytes: int | None = None
    workspace_bytes: int | None = None
    label: str = ""
    # the device's energy counter over the whole generation (prompt included) / tokens; None: not measured
    energy_j_per_token: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def with_memory(self, mem: PaneMemory | None, label: str) -> "PaneStats":
        self.label = label
        if mem is not None:
            self.memory_bytes, self.memory_kind = mem.total_bytes, mem.kind
            self.weights_bytes, self.cache_bytes, self.workspace_bytes = (mem.weights_bytes, mem.cache_bytes,
                                                                          mem.workspace_bytes)
        return self


def pane_stats(t_start_s: float, token_times_s: list[float], n_chars: int, now_s: float) -> PaneStats:
    """TTFT = first token - start; decode rate over the tokens after the first (prefill excluded);
    chars/s over the whole elapsed time, as a reader experiences it. Times in seconds on one clock."""
    n = len(token_times_s)
    elapsed_s = max((token_times_s[-1] if n else now_s) - t_start_s, 0.0)
    ttft_s = token_times_s[0] - t_start_s if n else None
    decode_span_s = token_times_s[-1] - token_times_s[0] if n >= 2 else 0.0
    decode = (n - 1) / decode_span_s if decode_span_s > 0 else None
    chars_per_s = n_chars / elapsed_s if n and elapsed_s > 0 else None
    return PaneStats(n, ttft_s, decode, chars_per_s, elapsed_s)


def format_stats_markdown(stats: PaneStats, status: str) -> str:
    """The strip beside a pane's text: status and the figures on one line, then how the memory was
    counted and the mode, small (the page's "how this was measured" note says the rest)."""
    figures = [f"**{status}**", f"TTFT **{_fmt(stats.ttft_s, '{:.3f} s')}**",
               f"decode **{_fmt(stats.decode_tok_per_s, '{:.1f} tok/s')}**", f"{_fmt(stats.chars_per_s, '{:.0f} chars/s')}",
               f"{stats.tokens} tokens", f"{_fmt(_mib_or_none(stats.memory_bytes), '{:,.1f} MiB')}"]
    if stats.energy_j_per_token is not None:
        figures.append(f"{stats.energy_j_per_token:.3f} J/token (whole run, prompt incl.)")
    return " · ".join(figures) + f"  \n<small>_{stats.label}_ · memory {_fmt_memory(stats)}</small>"


def _mib_or_none(n_bytes: int | None) -> float | None:
    return None if n_bytes is None else n_bytes / 2**20


def _fmt(value, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def _fmt_memory(stats: PaneStats) -> str:
    if stats.memory_bytes is None:
        return "–"
    parts = f"weights {_mib(stats.weights_bytes)} + cache {_mib(stats.cache_bytes)}"
    if stats.workspace_bytes is not None:
        parts += f" + prefill {_mib(stats.workspace_bytes)}"
    return f"{parts} MiB, {stats.memory_kind}"


def _mib(n_bytes: int | None) -> str:
    return "–" if n_bytes is None else f"{n_bytes / 2**20:,.1f}"
