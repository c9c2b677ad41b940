"""Mamba-130M against Pythia-160M prompt processing on this CPU, interleaved: the two models take
turns (order alternating) so that drift of a shared machine hits both alike; the benchmark runs
one model after the other, and on a shared 2-core VM its runs vary by 10-30 %. Random weights at
the exact configs, fp32, `--engine auto`, TTFT of a 1-token generation.

    python scripts/cpu_ttft_pairs.py --context 1024 --pairs 10
"""

from __future__ import annotations

import argparse
import statistics

import torch

from comparer.engines.loaded import load_model

from comparer.models.presets import ModelSpec
from comparer.bench.measure import random_prompt_ids
from comparer.settings import GenerationSettings

MODELS = ("mamba-130m", "pythia-160m")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--pairs", type=int, default=10)
    args = parser.parse_args()
    engines = {name: load_model(ModelSpec(model_id=name, config_name=name, random_weights=True), "cpu",
                                torch.float32, engine="auto").engine for name in MODELS}
    ids = {name: random_prompt_ids(engine.model.config.vocab_size, args.context) for name, engine in engines.items()}
    one = GenerationSettings(max_new_tokens=1, fixed_length=True)
    for name, engine in engines.items():  # warm-up, excluded
        engine.generate(ids[name], one)
    ttft_s = {name: [] for name in MODELS}
    for pair in range(args.pairs):
        for name in (MODELS if pair % 2 == 0 else MODELS[::-1]):
            ttft_s[name].append(engines[name].generate(ids[name], one).ttft_s)
    for name, values in ttft_s.items():
        print(f"{name} ({engines[name].card.kernel_path[:40]}): TTFT at {args.context} median "
              f"{statistics.median(values):.3f} s, min {min(values):.3f} s, runs {[round(v, 2) for v in values]}")
    ratios = [m / p for m, p in zip(*ttft_s.values())]
    print(f"Mamba / Pythia per pair: median {statistics.median(ratios):.3f}, range {min(ratios):.2f}-{max(ratios):.2f}")


if __name__ == "__main__":
    main()
