"""Live per-pane statistics, timed on the server from the engine's token timestamps.

Both models run at once on one device, so these are "live, shared device" figures: good for
watching, not for ranking. The benchmark (comparer.measure) measures each model alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

LIVE_LABEL = "live, shared device"


@dataclass
class PaneStats:
    tokens: int = 0
    ttft_s: float | None = None
    decode_tok_per_s: float | None = None
    chars_per_s: float | None = None
    elapsed_s: float = 0.0
    memory_bytes: int | None = None
    memory_kind: str = ""
    label: str = LIVE_LABEL

    def to_dict(self) -> dict:
        return asdict(self)


def pane_stats(t_start_s: float, token_times_s: list[float], n_chars: int, now_s: float,
               memory_bytes: int | None = None, memory_kind: str = "") -> PaneStats:
    """TTFT = first token - start; decode rate over the tokens after the first (prefill excluded);
    chars/s over the whole elapsed time, as a reader experiences it."""
    n = len(token_times_s)
    elapsed_s = max((token_times_s[-1] if n else now_s) - t_start_s, 0.0)
    ttft_s = token_times_s[0] - t_start_s if n else None
    decode_span_s = token_times_s[-1] - token_times_s[0] if n >= 2 else 0.0
    decode = (n - 1) / decode_span_s if decode_span_s > 0 else None
    chars_per_s = n_chars / elapsed_s if n and elapsed_s > 0 else None
    return PaneStats(n, ttft_s, decode, chars_per_s, elapsed_s, memory_bytes, memory_kind)


def format_stats_markdown(stats: PaneStats, status: str) -> str:
    """One compact line per figure, units spelled out, with how it was measured."""
    rows = [("status", status), ("time to first token", _fmt(stats.ttft_s, "{:.3f} s")),
            ("decode", _fmt(stats.decode_tok_per_s, "{:.1f} tok/s")),
            ("text", _fmt(stats.chars_per_s, "{:.0f} chars/s")), ("tokens", str(stats.tokens)),
            ("memory", _fmt_memory(stats))]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"| {stats.label} | |\n|---|---|\n{table}"


def _fmt(value, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def _fmt_memory(stats: PaneStats) -> str:
    if stats.memory_bytes is None:
        return "–"
    return f"{stats.memory_bytes / 2**20:,.0f} MiB ({stats.memory_kind})"
