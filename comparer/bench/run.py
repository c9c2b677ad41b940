"""The benchmark as a library: measure models one at a time into a record (the CLI is __main__.py).

The command line (``python -m comparer.bench``) and the Scaling tab's live sweep both call
``measure_models``: one loop, so a live figure is made the same way as a stored one.
Importable without gradio or plotly (the GPU host has neither).
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, Iterator

from comparer import memory
from comparer.bench.measure import environment, sweep
from comparer.bench.records import BenchRecord, Point, memory_counts, method_for
from comparer.engines.loaded import LoadedModel, load_model
from comparer.models.loading import default_device, default_dtype
from comparer.models.presets import ModelSpec, Preset, get_preset
from comparer.pool import free_device_memory, preset_specs

Progress = Callable[[int, int, str], None]


def new_record(preset_name: str, weights: str, device: str, contexts: list[int], new_tokens: int,
               repeats: int) -> BenchRecord:
    """An empty record holding the environment (versions, measured ceilings) and the settings."""
    served = memory.is_served(device)
    env = environment(device, None if served else default_dtype(device))
    dtype = "the server's" if served else str(default_dtype(device)).replace("torch.", "")
    return BenchRecord(preset_name, weights, env,
                       dict(contexts=contexts, new_tokens=new_tokens, repeats=repeats, dtype=dtype, device=device),
                       method=method_for(env.device_type), memory_counts=memory_counts(env.device_type))


def weights_label(preset: Preset, random_weights: bool) -> str:
    if preset.left.endpoint is not None:
        return "as served"
    if preset.offline:
        return "trained (the shipped demo pair)"
    return "random (exact configs)" if random_weights else "trained"


def run_bench(preset_name: str, contexts: list[int], new_tokens: int, repeats: int, random_weights: bool,
              device: str | None = None, sides: tuple[str, ...] = ("left", "right"),
              progress: Progress | None = None, engine: str = "hf",
              init_std: float | None = None) -> BenchRecord:
    """Measure each chosen model of the preset alone, freeing it before loading the next."""
    preset = get_preset(preset_name)
    served = preset.left.endpoint
    device = served.device if served is not None else (device or default_device())
    specs = dict(zip(("left", "right"), preset_specs(preset, random_weights, init_std)))
    record = new_record(preset_name, weights_label(preset, random_weights), device, contexts, new_tokens, repeats)
    models = _loaded_in_turn([specs[side] for side in sides], device, engine, max(contexts) + new_tokens)
    return measure_models(record, models, len(sides), new_tokens, repeats, progress)


def measure_models(record: BenchRecord, models: Iterable[LoadedModel], n_models: int, new_tokens: int,
                   repeats: int, progress: Progress | None = None, until: Callable[[], bool] | None = None,
                   stop: threading.Event | None = None) -> BenchRecord:
    """Sweep each model in turn (alone) over the record's contexts, appending its run to ``record``.
    ``until`` / ``stop``: end early with the points measured so far (see measure.sweep)."""
    contexts = record.settings["contexts"]
    counter = PointCounter(n_models * len(contexts), progress)
    for model in models:
        record.models.append(sweep(model, contexts, new_tokens, repeats, counter.for_model(model.spec.model_id),
                                   until=until, stop=stop))
        del model  # the last reference here: a generator of models can free it before loading the next
    return record


def _loaded_in_turn(specs: list[ModelSpec], device: str, engine: str, max_context_tokens: int
                    ) -> Iterator[LoadedModel]:
    """Each model loaded when the loop reaches it and freed before the next, so only one is resident."""
    for spec in specs:
        model = load_model(spec, device, engine=engine, max_context_tokens=max_context_tokens)
        yield model
        del model
        free_device_memory()


class PointCounter:
    """Turns per-point callbacks into (done, total, label) progress reports."""

    def __init__(self, total: int, progress: Progress | None):
        self.total, self.done, self.progress = total, 0, progress

    def for_model(self, model_id: str) -> Callable[[Point], None]:
        def on_point(point: Point) -> None:
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total, f"{model_id} @ {point.context_tokens}: {point.status}")
        return on_point


def summary_table(record: BenchRecord) -> str:
    """Plain-text table for the terminal and closing notes."""
    env = record.environment
    lines = [f"{record.preset} | {env.device_name} | {record.settings['dtype']} | weights: {record.weights} | "
             f"bandwidth {bandwidth_text(env.measured_bandwidth_bytes_per_s)}",
             f"{'model':38} {'ctx':>7} {'status':>6} {'TTFT s':>9} {'tok/s':>8} {'model GiB':>9}  path"]
    for run in record.models:
        notes = "; ".join(run.card.get("notes") or [])
        lines.append(f"{run.model_id}: load {run.load_s:.1f} s; first warm-up (excluded) {run.warmup_s:.2f} s"
                     + (f"; {notes}" if notes else ""))
    for run in record.models:
        for p in run.points:
            ttft = f"{p.ttft_s.median:.4f}" if p.ttft_s else "-"
            tps = f"{p.decode_tok_per_s.median:.1f}" if p.decode_tok_per_s else "-"
            peak = p.model_peak_bytes
            peak_s = f"{peak / 2**30:.2f}" if peak else "-"
            lines.append(f"{run.model_id:38} {p.context_tokens:>7} {p.status:>6} {ttft:>9} {tps:>8} {peak_s:>9}"
                         f"  {run.card['kernel_path']}")
    return "\n".join(lines)


def bandwidth_text(bytes_per_s: float | None) -> str:
    """TB/s on a GPU, GB/s on a CPU (17 GB/s is not "0.02 TB/s")."""
    if not bytes_per_s:
        return "not measured"
    return f"{bytes_per_s / 1e12:.2f} TB/s" if bytes_per_s >= 1e12 else f"{bytes_per_s / 1e9:.1f} GB/s"
