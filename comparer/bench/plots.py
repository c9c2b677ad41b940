"""Pure plot functions: benchmark records -> plotly Figure. They read records only, so stored
H200 runs render on a CPU-only machine; the analytic bounds are drawn beside the measurements."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from comparer import analytic
from comparer.bench.ceilings import bandwidth_peak
from comparer.bench.records import BenchRecord, ModelRun
from comparer.models.arch import FAST, short_path

FIGURE_HEIGHT_PX = 520
PANELS = ("decode tokens/s (batch 1)", "time to first token (s)", "each model's peak memory (GiB; bound = weights + cache)")
COLORS = ("#d62728", "#1f77b4", "#ff7f0e", "#2ca02c")
GIB = 2**30


def scaling_figure(records: list[BenchRecord]) -> go.Figure:
    """Three panels against context length (log x): measured medians with p10-p90 bars, and dashed
    analytic bounds (bandwidth bound for decode, matmul bound for prefill, weights + cache bytes)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=PANELS, horizontal_spacing=0.07)
    for i, (record, run) in enumerate((r, m) for r in records for m in r.models):
        _add_model(fig, record, run, COLORS[i % len(COLORS)])
    for col in (1, 2, 3):
        fig.update_xaxes(type="log", title_text="context (tokens)", row=1, col=col)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(height=FIGURE_HEIGHT_PX, title=_title(records), legend=dict(orientation="h", y=-0.25),
                      margin=dict(t=90, b=120))
    _note_preallocated(fig, records)
    return fig


def preallocated_cache_models(records: list[BenchRecord]) -> list[str]:
    """Models whose engine preallocates its KV cache for the longest context at load (comparer's fast
    Transformer): their memory at a short context already holds the whole cache."""
    return sorted({m.model_id for r in records for m in r.models
                   if m.card["path"]["engine"] == FAST and m.card["kv_bytes_per_token"]})


def _note_preallocated(fig: go.Figure, records: list[BenchRecord]) -> None:
    names = preallocated_cache_models(records)
    if names:
        fig.add_annotation(text=f"{', '.join(names)}: KV cache preallocated at load, counted at every context",
                           xref="x3 domain", yref="y3 domain", x=0.0, y=1.0, showarrow=False,
                           xanchor="left", yanchor="top", font=dict(size=10))


def _add_model(fig: go.Figure, record: BenchRecord, run: ModelRun, color: str) -> None:
    ok = [p for p in run.points if p.status == "ok"]
    xs = [p.context_tokens for p in ok]
    name = f"{run.model_id} ({run.card['family']}, {short_path(run.card['path'])})"
    for col, attr in ((1, "decode_tok_per_s"), (2, "ttft_s")):
        ys = [getattr(p, attr) for p in ok]
        fig.add_trace(go.Scatter(x=xs, y=[s.median for s in ys], mode="lines+markers", name=name,
                                 legendgroup=name, showlegend=col == 1, line=dict(color=color),
                                 error_y=dict(type="data", symmetric=False,
                                              array=[s.p90 - s.median for s in ys],
                                              arrayminus=[s.median - s.p10 for s in ys])), row=1, col=col)
    peaks = [(p.model_peak_bytes or p.peak_allocated_bytes or p.peak_rss_bytes or 0) / GIB for p in ok]
    fig.add_trace(go.Scatter(x=xs, y=peaks, mode="lines+markers", name=name, legendgroup=name,
                             showlegend=False, line=dict(color=color)), row=1, col=3)
    _add_bounds(fig, record, run, color, [p.context_tokens for p in run.points])
    _mark_failures(fig, run, color)


def decode_bound(record: BenchRecord, card: dict, context_tokens: int) -> float | None:
    """The decode tok/s no run of this model can beat on the record's device (None: no bandwidth)."""
    env = record.environment
    bandwidth, _ = bandwidth_peak(env.device_name, env.measured_bandwidth_bytes_per_s)
    if not bandwidth:
        return None
    read_b = card["decode_read_params"] * analytic.dtype_bytes(card["dtype"])
    return analytic.decode_bound_tok_per_s(bandwidth, read_b, card["kv_bytes_per_token"], context_tokens,
                                           card["ssm_state_bytes"])


def ttft_bound(record: BenchRecord, card: dict, context_tokens: int) -> float | None:
    """The TTFT (s) no run can beat: the prefill's FLOPs at the device's peak matrix rate (None: unknown)."""
    rate = record.environment.peak_matmul_flops_per_s
    if not rate:
        return None
    attn_layers = card["n_layers"] if card["kv_bytes_per_token"] else 0
    flops = analytic.prefill_flops(card["layer_weight_params"], context_tokens, card["head_params"], attn_layers,
                                   card["attn_width"])
    return analytic.prefill_bound_s(flops, rate)


def _add_bounds(fig: go.Figure, record: BenchRecord, run: ModelRun, color: str, contexts: list[int]) -> None:
    card = run.card
    weights_b = card["n_params"] * analytic.dtype_bytes(card["dtype"])
    kv_b, state_b = card["kv_bytes_per_token"], card["ssm_state_bytes"]
    dash = dict(color=color, dash="dash", width=1)
    label = f"{run.model_id} bound ({record.environment.device_name})"
    for col, bound in ((1, decode_bound), (2, ttft_bound)):
        ys = [bound(record, card, c) for c in contexts]
        if None not in ys:
            fig.add_trace(go.Scatter(x=contexts, y=ys, mode="lines", line=dash, name=label, legendgroup=label,
                                     showlegend=col == 1), 1, col)
    ys = [(weights_b + analytic.cache_bytes(c, kv_b, state_b)) / GIB for c in contexts]
    fig.add_trace(go.Scatter(x=contexts, y=ys, mode="lines", line=dash, name=label, legendgroup=label,
                             showlegend=False), 1, 3)


def _mark_failures(fig: go.Figure, run: ModelRun, color: str) -> None:
    failed = [p for p in run.points if p.status != "ok"]
    if failed:
        fig.add_trace(go.Scatter(x=[p.context_tokens for p in failed], y=[0] * len(failed), mode="markers+text",
                                 marker=dict(symbol="x", size=12, color=color), text=[p.status.upper() for p in failed],
                                 textposition="top center", name=f"{run.model_id} failed", showlegend=False), 1, 1)


def _title(records: list[BenchRecord]) -> str:
    parts = {f"{r.environment.device_name}, {r.settings.get('dtype')}, weights {r.weights}" for r in records}
    paths = {m.card["kernel_path"] for r in records for m in r.models}
    return (f"{'; '.join(sorted(parts))}<br><sup>each model measured alone, warm-up excluded; "
            f"paths: {'; '.join(sorted(paths))}; dashed = analytic bound</sup>")
