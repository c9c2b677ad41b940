"""The larger Transformer over several GPUs: random weights at the Llama-3-70B config (141 GB in fp16,
more than one H200 holds with room for a cache), laid out by accelerate over the visible GPUs the way
from_pretrained(device_map="auto") lays out a checkpoint, run by comparer's fast Transformer engine
(eager decode: a graph cannot span GPUs). Records TTFT, decode tok/s and peak memory per GPU.

    python scripts/multi_gpu_split.py --config llama-3-70b --contexts 512,8192 --out split.json
"""

from __future__ import annotations

import argparse
import collections
import json
import time

import torch

from comparer.loading import ModelSpec, load_model
from comparer.measure import environment, measure_point, random_prompt_ids


def layers_per_device(device_map: dict) -> dict[str, int]:
    counts = collections.Counter(str(where) for name, where in device_map.items() if ".layers." in name)
    return dict(sorted(counts.items()))


def per_gpu_peaks() -> dict[str, float]:
    return {f"cuda:{i}": torch.cuda.max_memory_allocated(i) / 2**30 for i in range(torch.cuda.device_count())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="llama-3-70b")
    parser.add_argument("--contexts", default="512,8192")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    contexts = [int(c) for c in args.contexts.split(",")]
    env = environment("cuda:0")
    t0 = time.perf_counter()
    loaded = load_model(ModelSpec(args.config, config_name=args.config, random_weights=True), "cuda",
                        torch.float16, engine="fast", max_context_tokens=max(contexts) + args.new_tokens + 64)
    engine, card = loaded.engine, loaded.engine.card
    device_map = getattr(engine.model, "hf_device_map", {}) or {}
    weights = {f"cuda:{i}": torch.cuda.memory_allocated(i) / 2**30 for i in range(torch.cuda.device_count())}
    print(f"{args.config}: {card.n_params / 1e9:.1f}B parameters loaded in {time.perf_counter() - t0:.1f} s; "
          f"decoder layers per device {layers_per_device(device_map)}; allocated GiB {weights}")
    print(f"path: {card.kernel_path}")
    points = []
    for context in contexts:
        for i in range(torch.cuda.device_count()):
            torch.cuda.reset_peak_memory_stats(i)
        point = measure_point(engine, random_prompt_ids(engine.model.config.vocab_size, context), args.new_tokens,
                              args.repeats)
        peaks = per_gpu_peaks()
        row = {"context_tokens": context, "status": point.status, "error": point.error,
               "ttft_s": point.ttft_s.median if point.ttft_s else None,
               "decode_tok_per_s": point.decode_tok_per_s.median if point.decode_tok_per_s else None,
               "peak_allocated_gib_per_gpu": peaks}
        points.append(row)
        print(json.dumps(row))
    weight_bytes = card.n_params * 2
    record = {"what": "random weights (untrained) at the exact config, fp16, batch 1; warm-up excluded; alone "
                      "on the GPUs", "config": args.config, "n_params": card.n_params, "kernel_path": card.kernel_path,
              "environment": vars(env) if hasattr(env, "__dict__") else str(env),
              "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
              "decoder_layers_per_device": layers_per_device(device_map), "weights_gib_per_gpu": weights,
              "bound_tok_per_s_at_measured_bandwidth": env.measured_bandwidth_bytes_per_s / weight_bytes,
              "new_tokens": args.new_tokens, "repeats": args.repeats, "points": points}
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1, default=str)


if __name__ == "__main__":
    main()
