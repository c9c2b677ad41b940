"""A/B of programmatic dependent launch (PDL) in the fast Mamba decode step on the H200: each variant
is its own engine (a CUDA graph records the launch attributes at capture) on the same weights,
measured in turns: step replays back to back, then the token loop of a greedy generation. Random
weights at the exact configs (std 0.02 so that fp16 activations stay finite and tokens can be
compared), fp16, batch 1, 128 new tokens, warm-up excluded.

    python scripts/ab_pdl.py --configs mamba-2.8b,mamba-130m --repeats 5
"""

from __future__ import annotations

import argparse
import gc
import statistics
from dataclasses import replace

import torch

from comparer.kernels import mamba_decode
from comparer.engines.mamba_fast import MambaFastEngine
from comparer.engines.mamba_ops import KernelOps
from comparer.bench.measure import random_prompt_ids
from scripts.ab_token_loop import in_turns
from scripts.mamba_paths import random_model
from scripts.tune_mamba_kernels import fused_step_kernels

# (label, PDL setting, GEMV tiles loaded before the wait)
VARIANTS = [("PDL off", False, 1), ("PDL on, 1 tile before the wait", None, 1),
            ("PDL on, 2 tiles before the wait", None, 2), ("PDL on, 4 tiles before the wait", None, 4)]


def engines_for(model) -> dict[str, MambaFastEngine]:
    """One captured engine per variant, each with its own kernel settings."""
    engines = {}
    for label, pdl, pre_tiles in VARIANTS:
        settings = replace(mamba_decode.DEFAULT, pdl=pdl, pre_tiles=pre_tiles)
        engines[label] = MambaFastEngine(model, None, KernelOps(decode_settings=settings), cuda_graph=True)
    return engines


def ab(config: str, context: int, repeats: int) -> None:
    model = random_model(config)
    with torch.inference_mode():
        engines = engines_for(model)
        replay, loop, tokens = in_turns(engines, random_prompt_ids(model.config.vocab_size, context), repeats)
        first = tokens[VARIANTS[0][0]]
        for label in engines:
            print(f"{config} @ {context}: {label}: step replays {statistics.median(replay[label]):.1f} tok/s "
                  f"(runs {[round(v, 1) for v in replay[label]]}); generate {statistics.median(loop[label]):.1f} "
                  f"tok/s (runs {[round(v, 1) for v in loop[label]]})", flush=True)
            same = next((i for i, (a, b) in enumerate(zip(first, tokens[label])) if a != b), len(first))
            print(f"{config}: {label}: greedy tokens equal to PDL off's for the first {same} of {len(first)} "
                  "(more tiles before the wait change the GEMV's summation order; PDL alone changes no bit)",
                  flush=True)
        print(fused_step_kernels(engines[VARIANTS[1][0]]), flush=True)
    del engines, model
    gc.collect()
    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="mamba-2.8b,mamba-130m")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for config in args.configs.split(","):
        ab(config, args.context, args.repeats)


if __name__ == "__main__":
    main()
