"""Pure plot functions: benchmark records -> plotly Figure. They read records only, so stored
H200 runs render on a CPU-only machine; the analytic bounds are drawn beside the measurements.

One colour per model (warm hues for state-space models, cool ones for Transformers, so a Mamba reads
as a Mamba in every plot); the same model in several records keeps its hue and changes its marker. A
bound is dashed in its model's colour. The figure is laid out wide (three panels side by side) and
carries a stacked variant in ``layout.meta`` that the page applies on a narrow screen (ui/scaling.py).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from comparer import analytic
from comparer.bench.ceilings import bandwidth_peak
from comparer.bench.records import BenchRecord, ModelRun
from comparer.models.arch import FAST, short_path

FIGURE_HEIGHT_PX = 520
STACKED_HEIGHT_PX = 1180  # three panels of ~270 px, their titles, the legend below
PANELS = ("decode tokens/s (batch 1)", "time to first token (s)", "each model's peak memory")
SSM_COLOURS = ("#d62728", "#ff7f0e", "#8c564b", "#e377c2")  # warm: Mamba and other state-space models
ATTENTION_COLOURS = ("#1f77b4", "#2ca02c", "#17becf", "#9467bd")  # cool: Transformers
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "star")
BOUND_LEGEND = "dashed: analytic bound, in its model's colour"
MAX_TICKS = 7
LEGEND_LINE_CHARS = 46  # a legend line that fits a phone's width at 11 px
GIB, MIB = 2**30, 2**20


def scaling_figure(records: list[BenchRecord]) -> go.Figure:
    """Three panels against context length (log x): measured medians with p10-p90 bars, and dashed
    analytic bounds (bandwidth bound for decode, matmul bound for prefill, weights + cache bytes)."""
    unit_name, unit_b = memory_unit(records)
    fig = make_subplots(rows=1, cols=3, subplot_titles=_panel_titles(unit_name), horizontal_spacing=0.07)
    colours = model_colours(records)
    for (record, run), symbol in zip(_runs(records), run_symbols(records)):
        _add_model(fig, run, colours[run.model_id], symbol, _run_name(records, record, run), unit_b)
    _add_all_bounds(fig, records, colours, unit_b)
    _style_axes(fig, records)
    fig.update_layout(height=FIGURE_HEIGHT_PX, title=dict(text=_title(records), x=0.01, xanchor="left", y=1.0,
                                                          yanchor="top", pad=dict(t=18), font=dict(size=14)),
                      legend=_legend(), margin=dict(t=105, b=40, l=55, r=20))
    _note_preallocated(fig, records)
    fig.update_layout(meta={"wide": _shape(fig), "stacked": _stacked_shape(records, unit_name)})
    return fig


ENERGY_PANELS = ("joules per prompt token (prefill)", "joules per generated token (decode)")


def energy_figure(records: list[BenchRecord]) -> go.Figure | None:
    """J per token against context, per model in its colour; None when no record measured energy (a CPU
    without RAPL, or records older than the energy counters). The source is in the title."""
    runs = [(r, m) for r, m in _runs(records) if any(p.decode_j_per_token for p in m.points)]
    if not runs:
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=ENERGY_PANELS, horizontal_spacing=0.1)
    colours = model_colours(records)
    for (record, run), symbol in zip(runs, run_symbols([r for r, _ in runs])):
        ok = [p for p in run.points if p.status == "ok" and p.decode_j_per_token]
        for col, attr in ((1, "prefill_j_per_token"), (2, "decode_j_per_token")):
            fig.add_trace(go.Scatter(x=[p.context_tokens for p in ok], y=[getattr(p, attr) for p in ok],
                                     mode="lines+markers", name=wrap_legend(_run_name(records, record, run)),
                                     legendgroup=run.model_id, showlegend=col == 1,
                                     line=dict(color=colours[run.model_id]), marker=dict(symbol=symbol),
                                     meta={"model": run.model_id, "kind": "energy"}), row=1, col=col)
    sources = sorted({r.environment.energy_source for r, _ in runs})
    fig.update_xaxes(type="log", title_text="context (tokens)")
    fig.update_yaxes(type="log")
    fig.update_layout(height=360, title=dict(text="Energy, measured: " + "; ".join(sources), font=dict(size=12)),
                      legend=_legend(), margin=dict(t=80, b=40, l=55, r=20))
    return fig


def memory_unit(records: list[BenchRecord]) -> tuple[str, int]:
    """GiB, or MiB where every model is under a GiB (the demo pair's 25 MiB would read '0.025')."""
    biggest_b = max((m.card["n_params"] * analytic.dtype_bytes(m.card["dtype"]) for r, m in _runs(records)
                     if r.environment.device_type != "remote"), default=0)
    peaks_b = [p.model_peak_bytes or 0 for _, m in _runs(records) for p in m.points]
    return ("GiB", GIB) if max([biggest_b, *peaks_b]) >= GIB else ("MiB", MIB)


def _panel_titles(unit_name: str) -> tuple[str, ...]:
    return (*PANELS[:2], f"{PANELS[2]} ({unit_name})")


def model_colours(records: list[BenchRecord]) -> dict[str, str]:
    """model id -> its one colour, in order of first appearance: state-space models take warm hues,
    Transformers cool ones, so the same pair gets the same colours whichever records are overlaid."""
    colours, used = {}, {True: 0, False: 0}
    for _, run in _runs(records):
        if run.model_id not in colours:
            ssm = "SSM" in run.card["family"]
            palette = SSM_COLOURS if ssm else ATTENTION_COLOURS
            colours[run.model_id] = palette[used[ssm] % len(palette)]
            used[ssm] += 1
    return colours


def run_symbols(records: list[BenchRecord]) -> list[str]:
    """One marker per run, in _runs order: a model's first run a circle, its next runs other shapes."""
    seen: dict[str, int] = {}
    symbols = []
    for _, run in _runs(records):
        symbols.append(SYMBOLS[seen.get(run.model_id, 0) % len(SYMBOLS)])
        seen[run.model_id] = seen.get(run.model_id, 0) + 1
    return symbols


def _runs(records: list[BenchRecord]) -> list[tuple[BenchRecord, ModelRun]]:
    return [(r, m) for r in records for m in r.models]


def _run_name(records: list[BenchRecord], record: BenchRecord, run: ModelRun) -> str:
    """Legend name: the model and its path, and the device only where the records span several."""
    name = f"{run.model_id} · {short_path(run.card['path'])}"
    if len({r.environment.device_name for r in records}) > 1:
        name += f" · {record.environment.device_name}"
    return wrap_legend(name)


def wrap_legend(text: str, width: int = LEGEND_LINE_CHARS) -> str:
    """Break a legend name at spaces into lines of at most ``width`` characters (plotly never wraps)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def _legend() -> dict:
    """Horizontal, below the panels, sized by plotly's margin auto-expansion so it never covers them."""
    return dict(orientation="h", x=0, xanchor="left", y=-0.16, yanchor="top", font=dict(size=11),
                tracegroupgap=4)


def preallocated_cache_models(records: list[BenchRecord]) -> list[str]:
    """Models whose engine preallocates its KV cache for the longest context at load (comparer's fast
    Transformer): their memory at a short context already holds the whole cache."""
    return sorted({m.model_id for r in records for m in r.models
                   if m.card["path"]["engine"] == FAST and m.card["kv_bytes_per_token"]})


def _note_preallocated(fig: go.Figure, records: list[BenchRecord]) -> None:
    names = preallocated_cache_models(records)
    if names:
        fig.add_annotation(text=f"{', '.join(names)}:<br>KV cache preallocated at load, counted at every context",
                           xref="x3 domain", yref="y3 domain", x=0.0, y=1.0, showarrow=False,
                           xanchor="left", yanchor="top", align="left", font=dict(size=10))


def _add_model(fig: go.Figure, run: ModelRun, colour: str, symbol: str, name: str, unit_b: int) -> None:
    ok = [p for p in run.points if p.status == "ok"]
    xs = [p.context_tokens for p in ok]
    style = dict(mode="lines+markers", name=name, legendgroup=name, line=dict(color=colour, width=2),
                 marker=dict(color=colour, symbol=symbol, size=7), meta={"model": run.model_id, "kind": "measured"})
    for col, attr in ((1, "decode_tok_per_s"), (2, "ttft_s")):
        ys = [getattr(p, attr) for p in ok]
        fig.add_trace(go.Scatter(x=xs, y=[s.median for s in ys], showlegend=col == 1, **style,
                                 error_y=dict(type="data", symmetric=False, color=colour,
                                              array=[s.p90 - s.median for s in ys],
                                              arrayminus=[s.median - s.p10 for s in ys])), row=1, col=col)
    peaks = [p.model_peak_bytes / unit_b if p.model_peak_bytes else None for p in ok]
    fig.add_trace(go.Scatter(x=xs, y=peaks, showlegend=False, **style), row=1, col=3)
    _mark_failures(fig, run, colour)


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


def _add_all_bounds(fig: go.Figure, records: list[BenchRecord], colours: dict[str, str], unit_b: int) -> None:
    """One set of bound lines per (model, device, dtype): overlaid records of one model on one device
    share a bound, drawn over all their contexts. All toggle together under one legend entry."""
    groups: dict[tuple, tuple[BenchRecord, ModelRun, set[int]]] = {}
    for record, run in _runs(records):
        key = (run.model_id, record.environment.device_name, run.card["dtype"])
        _, _, contexts = groups.setdefault(key, (record, run, set()))
        contexts.update(p.context_tokens for p in run.points)
    for record, run, contexts in groups.values():
        if record.environment.device_type != "remote":  # a served model's hardware is not seen: no bounds
            _add_bounds(fig, record, run, colours[run.model_id], sorted(contexts), unit_b)
    if groups:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=BOUND_LEGEND, legendgroup="bounds",
                                 line=dict(color="#666", dash="dash", width=1), meta={"kind": "bound-key"}), 1, 1)


def _add_bounds(fig: go.Figure, record: BenchRecord, run: ModelRun, colour: str, contexts: list[int],
                unit_b: int) -> None:
    card = run.card
    weights_b = card["n_params"] * analytic.dtype_bytes(card["dtype"])
    kv_b, state_b = card["kv_bytes_per_token"], card["ssm_state_bytes"]
    style = dict(mode="lines", line=dict(color=colour, dash="dash", width=1), legendgroup="bounds",
                 showlegend=False, name=f"{run.model_id} bound ({record.environment.device_name})",
                 meta={"model": run.model_id, "kind": "bound"})
    for col, bound in ((1, decode_bound), (2, ttft_bound)):
        ys = [bound(record, card, c) for c in contexts]
        if None not in ys:
            fig.add_trace(go.Scatter(x=contexts, y=ys, **style), 1, col)
    ys = [(weights_b + analytic.cache_bytes(c, kv_b, state_b)) / unit_b for c in contexts]
    fig.add_trace(go.Scatter(x=contexts, y=ys, **style), 1, 3)


def _mark_failures(fig: go.Figure, run: ModelRun, colour: str) -> None:
    failed = [p for p in run.points if p.status != "ok"]
    if failed:
        fig.add_trace(go.Scatter(x=[p.context_tokens for p in failed], y=[0] * len(failed), mode="markers+text",
                                 marker=dict(symbol="x", size=12, color=colour),
                                 text=[p.status.upper() for p in failed],
                                 textposition="top center", name=f"{run.model_id} failed", showlegend=False,
                                 meta={"model": run.model_id, "kind": "failed"}), 1, 1)


def _style_axes(fig: go.Figure, records: list[BenchRecord]) -> None:
    """Log x with ticks at powers of two labelled 512, 2K, 128K; the TTFT panel log y with ticks at
    decades (and 2, 5 between them over a short range) labelled in full, never plotly's bare '2 5'."""
    contexts = [p.context_tokens for _, run in _runs(records) for p in run.points]
    xvals = context_ticks(contexts)
    for col in (1, 2, 3):
        fig.update_xaxes(type="log", title_text="context (tokens)", tickmode="array", tickvals=xvals,
                         ticktext=[context_label(v) for v in xvals], row=1, col=col)
    yvals = log_ticks(_panel_ys(fig, "y2"))
    fig.update_yaxes(type="log", tickmode="array", tickvals=yvals, ticktext=[f"{v:g}" for v in yvals], row=1, col=2)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=3)


def _panel_ys(fig: go.Figure, yaxis: str) -> list[float]:
    """Every positive y a panel draws, error bars included, so its ticks cover what is shown."""
    ys = []
    for t in fig.data:
        if (t.yaxis or "y") != yaxis or t.y is None:
            continue
        values = [y for y in t.y if y is not None]
        ys += values
        if t.error_y and t.error_y.array is not None:
            ys += [y + up for y, up in zip(values, t.error_y.array)]
            ys += [y - down for y, down in zip(values, t.error_y.arrayminus)]
    return [y for y in ys if y > 0]


def context_ticks(contexts: list[int]) -> list[int]:
    """Powers of two spanning the contexts, every one or every few so at most MAX_TICKS show."""
    if not contexts:
        return []
    low, high = math.floor(math.log2(min(contexts))), math.ceil(math.log2(max(contexts)))
    step = max(1, math.ceil((high - low + 1) / MAX_TICKS))
    return [2**e for e in range(high, low - 1, -step)][::-1]


def context_label(tokens: int) -> str:
    """128 -> '128', 2048 -> '2K', 131072 -> '128K', 2**20 -> '1M'."""
    if tokens >= 2**20 and tokens % 2**20 == 0:
        return f"{tokens // 2**20}M"
    if tokens >= 1024 and tokens % 1024 == 0:
        return f"{tokens // 1024}K"
    return str(tokens)


def log_ticks(values: list[float]) -> list[float]:
    """Decades spanning the values (every other one past MAX_TICKS); over three decades or fewer also
    2x and 5x, so a short range still shows several labelled ticks."""
    if not values:
        return []
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    step = max(1, math.ceil((high - low + 1) / MAX_TICKS))
    decades = [10.0**e for e in range(low, high + 1, step)]
    if high - low > 3:
        return [float(f"{v:.1g}") for v in decades]
    ticks = [float(f"{m * d:.1g}") for d in decades for m in (1, 2, 5)]
    return [v for v in ticks if min(values) / 1.5 <= v <= max(values) * 1.5]


def _shape(fig: go.Figure) -> dict:
    """The layout keys the wide and stacked variants differ in, as a Plotly.relayout argument."""
    layout = fig.layout
    shape = {"height": layout.height, "margin.t": layout.margin.t, "title.text": layout.title.text,
             "title.y": layout.title.y, "legend.y": layout.legend.y}
    for n in ("", "2", "3"):
        shape[f"xaxis{n}.domain"] = list(layout[f"xaxis{n}"].domain)
        shape[f"yaxis{n}.domain"] = list(layout[f"yaxis{n}"].domain)
    for i, note in enumerate(layout.annotations[:len(PANELS)]):  # make_subplots' panel titles come first
        shape[f"annotations[{i}].x"], shape[f"annotations[{i}].y"] = note.x, note.y
    return shape


def _stacked_shape(records: list[BenchRecord], unit_name: str) -> dict:
    """The same panels one above the other, for a phone: domains and titles of a 3-row grid, the title
    lowered below plotly's tool bar."""
    grid = make_subplots(rows=3, cols=1, subplot_titles=_panel_titles(unit_name), vertical_spacing=0.085)
    grid.update_layout(height=STACKED_HEIGHT_PX, margin=dict(t=150), legend=dict(y=-0.06),
                       title=dict(text=_title(records, wrap=True), y=1 - 30 / STACKED_HEIGHT_PX))
    return _shape(grid)


def _title(records: list[BenchRecord], wrap: bool = False) -> str:
    """Device, dtype and weights of each record (the kernel paths are in the legend names); ``wrap``
    breaks it into lines that fit a phone."""
    cut = "<br>" if wrap else " "
    parts = sorted({f"{r.environment.device_name}, {r.settings.get('dtype')},{cut}weights {r.weights}"
                    for r in records})
    note = ("each model measured alone, warm-up excluded;<br>median, bars p10–p90" if wrap else
            "each model measured alone, warm-up excluded; median, bars p10–p90; dashed = analytic bound")
    return f"{('<br>' if wrap else '; ').join(parts)}<br><sup>{note}</sup>"
