"""A/B of the token loop on CUDA: the next decode step queued before the host reads the chosen token
against reading it first, same engine, interleaved runs; plus back-to-back step replays (no token
read at all) as the ceiling. Random weights at the exact configs, fp16, batch 1, 128 new tokens.

    python scripts/ab_token_loop.py --configs mamba-130m,mamba-2.8b,pythia-160m,pythia-6.9b --context 512
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch

from comparer.engines import stepping
from comparer.engines.loaded import load_model
from comparer.models.presets import ModelSpec
from comparer.bench.measure import _decode_rate, random_prompt_ids
from comparer.settings import GenerationSettings

MODES = {"queued next step": True, "read token first": False}


def replay_tok_per_s(engine, ids: list[int], steps: int = 128) -> float:
    """Decode steps queued back to back with a fixed token: the GPU never waits for the host."""
    engine.prefill(ids, steps + 1)
    token = torch.tensor([5], device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        engine.decode_step(token)
    torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def in_turns(engines: dict, ids: list[int], repeats: int) -> tuple[dict, dict, dict]:
    """Each engine in turn, ``repeats`` rounds after one warm-up generation each: graph replays back to
    back, then a 128-token greedy generation. Returns per label the replay tok/s, the generation's decode
    tok/s (lists over rounds) and the last generation's token ids."""
    settings = GenerationSettings(max_new_tokens=128, fixed_length=True)
    replay, loop, tokens = ({label: [] for label in engines} for _ in range(3))
    for engine in engines.values():
        engine.generate(ids, settings)  # warm-up
    for _ in range(repeats):
        for label, engine in engines.items():
            replay[label].append(replay_tok_per_s(engine, ids))
            result = engine.generate(ids, settings)
            loop[label].append(_decode_rate(result))
            tokens[label] = result.token_ids
    return replay, loop, tokens


def ab(config: str, context: int, repeats: int) -> None:
    spec = ModelSpec(model_id=config, config_name=config, random_weights=True)
    engine = load_model(spec, "cuda", torch.float16, engine="fast", max_context_tokens=context + 200).engine
    ids = random_prompt_ids(engine.model.config.vocab_size, context)
    settings = GenerationSettings(max_new_tokens=128, fixed_length=True)
    rates = {mode: [] for mode in MODES}
    engine.generate(ids, settings)
    for _ in range(repeats):
        for mode, overlap in MODES.items():
            stepping._TokenReader.overlap = overlap
            torch.cuda.synchronize()
            rates[mode].append(_decode_rate(engine.generate(ids, settings)))
    stepping._TokenReader.overlap = True
    replay = statistics.median(replay_tok_per_s(engine, ids) for _ in range(3))
    for mode, values in rates.items():
        print(f"{config} @ {context}: {mode}: decode {statistics.median(values):.1f} tok/s "
              f"(runs {[round(v, 1) for v in values]})")
    print(f"{config} @ {context}: step replays back to back (ceiling): {replay:.1f} tok/s", flush=True)
    del engine
    gc.collect()
    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="mamba-130m,mamba-2.8b,pythia-160m,pythia-6.9b")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for config in args.configs.split(","):
        ab(config, args.context, args.repeats)


if __name__ == "__main__":
    main()
