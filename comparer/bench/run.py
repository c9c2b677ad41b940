"""Command line: measure both models of a preset across context lengths, one model at a time.

    python -m comparer.bench --preset paper --random-weights --contexts 512,2048,8192 \
        --new-tokens 128 --repeats 5 --out run.json --plot run.html

Importable without gradio or plotly (the GPU host has neither); ``--plot`` imports plotly.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from tqdm import tqdm

from comparer.engines.loaded import ENGINES, load_model

from comparer.models.loading import default_device, default_dtype

from comparer.models.presets import ModelLoadError
from comparer.bench.measure import environment, sweep
from comparer.pool import free_device_memory, preset_specs
from comparer.models.presets import Preset, get_preset
from comparer.bench.records import BenchRecord, Point


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m comparer.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", required=True, help="offline, small, paper or seed")
    parser.add_argument("--random-weights", action="store_true",
                        help="exact configs from assets/configs with random weights (no download)")
    parser.add_argument("--init-std", type=float, default=0.02,
                        help="std of the random weights (0.02: a random fp16 Mamba stays finite; the configs' 0.1 "
                             "overflows); named on each card")
    parser.add_argument("--contexts", default="512,2048", help="comma-separated prompt lengths in tokens")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--sides", default="left,right", help="which models of the pair to measure")
    parser.add_argument("--engine", default="auto", choices=ENGINES,
                        help="auto (default) = comparer's fast engines where their kernels exist (CUDA), else "
                             "transformers; hf = transformers generate; fast = comparer's engines everywhere")
    parser.add_argument("--out", required=True, help="JSON record to write")
    parser.add_argument("--plot", default=None, help="also write an HTML plot here")
    return parser.parse_args(argv)


def new_record(preset_name: str, weights: str, device: str, contexts: list[int], new_tokens: int,
               repeats: int) -> BenchRecord:
    """An empty record holding the environment (versions, measured ceilings) and the settings."""
    return BenchRecord(preset_name, weights, environment(device),
                       dict(contexts=contexts, new_tokens=new_tokens, repeats=repeats,
                            dtype=str(default_dtype(device)).replace("torch.", ""), device=device))


def weights_label(preset: Preset, random_weights: bool) -> str:
    if preset.offline:
        return "trained (the shipped demo pair)"
    return "random (exact configs)" if random_weights else "trained"


def run_bench(preset_name: str, contexts: list[int], new_tokens: int, repeats: int, random_weights: bool,
              device: str | None = None, sides: tuple[str, ...] = ("left", "right"),
              progress: Callable[[int, int, str], None] | None = None, engine: str = "hf",
              init_std: float | None = None) -> BenchRecord:
    """Measure each chosen model of the preset alone, freeing it before loading the next."""
    device = device or default_device()
    preset = get_preset(preset_name)
    specs = dict(zip(("left", "right"), preset_specs(preset, random_weights, init_std)))
    record = new_record(preset_name, weights_label(preset, random_weights), device, contexts, new_tokens, repeats)
    counter = PointCounter(len(sides) * len(contexts), progress)
    for side in sides:
        model = load_model(specs[side], device, engine=engine, max_context_tokens=max(contexts) + new_tokens)
        record.models.append(sweep(model, contexts, new_tokens, repeats, counter.for_model(model.spec.model_id)))
        del model
        free_device_memory()
    return record


class PointCounter:
    """Turns per-point callbacks into (done, total, label) progress reports."""

    def __init__(self, total: int, progress: Callable[[int, int, str], None] | None):
        self.total, self.done, self.progress = total, 0, progress

    def for_model(self, model_id: str) -> Callable[[Point], None]:
        def on_point(point: Point) -> None:
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total, f"{model_id} @ {point.context_tokens}: {point.status}")
        return on_point


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    contexts = [int(c) for c in args.contexts.split(",") if c.strip()]
    sides = tuple(s.strip() for s in args.sides.split(","))
    bar = tqdm(total=len(contexts) * len(sides), unit="point")

    def progress(done: int, total: int, label: str) -> None:
        bar.update(done - bar.n)
        bar.set_postfix_str(label)

    try:
        record = run_bench(args.preset, contexts, args.new_tokens, args.repeats, args.random_weights,
                           args.device, sides, progress, engine=args.engine,
                           init_std=args.init_std if args.random_weights else None)
    except (ModelLoadError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    bar.close()
    record.save(args.out)
    print(summary_table(record))
    if args.plot:
        from comparer.bench.plots import scaling_figure

        scaling_figure([record]).write_html(args.plot, include_plotlyjs="cdn")
    return 0


def summary_table(record: BenchRecord) -> str:
    """Plain-text table for the terminal and closing notes."""
    env = record.environment
    lines = [f"{record.preset} | {env.device_name} | {record.settings['dtype']} | weights: {record.weights} | "
             f"bandwidth {(env.measured_bandwidth_bytes_per_s or 0) / 1e12:.2f} TB/s",
             f"{'model':38} {'ctx':>7} {'status':>6} {'TTFT s':>9} {'tok/s':>8} {'model GiB':>9}  path"]
    for run in record.models:
        notes = "; ".join(run.card.get("notes") or [])
        lines.append(f"{run.model_id}: load {run.load_s:.1f} s; first warm-up (excluded) {run.warmup_s:.2f} s"
                     + (f"; {notes}" if notes else ""))
    for run in record.models:
        for p in run.points:
            ttft = f"{p.ttft_s.median:.4f}" if p.ttft_s else "-"
            tps = f"{p.decode_tok_per_s.median:.1f}" if p.decode_tok_per_s else "-"
            peak = p.model_peak_bytes or p.peak_allocated_bytes or p.peak_rss_bytes
            peak_s = f"{peak / 2**30:.2f}" if peak else "-"
            lines.append(f"{run.model_id:38} {p.context_tokens:>7} {p.status:>6} {ttft:>9} {tps:>8} {peak_s:>9}"
                         f"  {run.card['kernel_path']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
