"""A/B of the token loop on CUDA: the next decode step queued before the host reads the chosen token
(default) against reading it first, same engine, interleaved runs. Random weights at the exact
config, fp16, batch 1.

    python scripts/ab_token_loop.py --config mamba-2.8b --context 512
"""

from __future__ import annotations

import argparse
import statistics

import torch

from comparer.engines import stepping
from comparer.loading import ModelSpec, load_model
from comparer.measure import _decode_rate, random_prompt_ids
from comparer.settings import GenerationSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="mamba-2.8b")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    spec = ModelSpec(model_id=args.config, config_name=args.config, random_weights=True)
    engine = load_model(spec, "cuda", torch.float16, engine="fast", max_context_tokens=args.context + 200).engine
    ids = random_prompt_ids(engine.model.config.vocab_size, args.context)
    settings = GenerationSettings(max_new_tokens=128, fixed_length=True)
    results = {True: [], False: []}
    ttfts = {True: [], False: []}
    engine.generate(ids, settings)
    for _ in range(args.repeats):
        for overlap in (True, False):
            stepping._TokenReader.force_sync = not overlap
            torch.cuda.synchronize()
            out = engine.generate(ids, settings)
            results[overlap].append(_decode_rate(out))
            ttfts[overlap].append(out.token_times_s[0] - out.t_start_s)
    for overlap in (True, False):
        print(f"{args.config} @ {args.context}: {'queued next step' if overlap else 'read token first'}: "
              f"decode {statistics.median(results[overlap]):.1f} tok/s (runs {[round(r, 1) for r in results[overlap]]}), "
              f"TTFT {statistics.median(ttfts[overlap]) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
