"""Command line: measure both models of a preset across context lengths, one model at a time.

    python -m comparer.bench --preset paper --random-weights --contexts 512,2048,8192 \
        --new-tokens 128 --repeats 5 --out run.json --plot run.html
    python -m comparer.bench --endpoint http://127.0.0.1:8000#mamba --endpoint-dir path/to/its/config \
        --endpoint http://127.0.0.1:8001#pythia --endpoint-dir path/to/its/config --out served.json

Importable without gradio or plotly (the GPU host has neither); ``--plot`` imports plotly.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from comparer.bench.run import run_bench, summary_table
from comparer.engines.loaded import ENGINES
from comparer.models.presets import ModelLoadError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m comparer.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=None, help="offline, small, paper or seed (or --endpoint)")
    parser.add_argument("--endpoint", action="append", default=[],
                        help="a served model, URL#served-name (once per side: left, then right); timed at the "
                             "client, network included")
    parser.add_argument("--endpoint-dir", action="append", default=[],
                        help="per --endpoint, a folder with its config.json and tokenizer (the architecture and "
                             "prompt token counts come from it)")
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.endpoint:
        args.preset = _served(args.endpoint, args.endpoint_dir)
    if not args.preset:
        print("error: give --preset or --endpoint", file=sys.stderr)
        return 2
    contexts = [int(c) for c in args.contexts.split(",") if c.strip()]
    sides = tuple(s.strip() for s in args.sides.split(","))
    if len(args.endpoint) == 1:
        sides = ("left",)  # one served model
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


def _served(endpoints: list[str], dirs: list[str]) -> str:
    """Register the served pair (one endpoint measures it on both sides' slots, once)."""
    from comparer.models.presets import register_preset, served_preset

    endpoints = (endpoints * 2)[:2]
    dirs = (dirs + [None, None])[:2] if len(dirs) != 1 else dirs * 2
    register_preset(served_preset("served", {side: (e, d) for side, e, d in zip(("left", "right"), endpoints, dirs)},
                                  {}))
    return "served"


if __name__ == "__main__":
    sys.exit(main())
