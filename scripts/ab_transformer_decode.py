"""The Transformer decode step's projections on the H200: first each projection shape alone
(graph replays cycling over enough weight copies that L2 cannot hold them), cuBLAS against the tiled
GEMV at a few launch settings; then whole engines on the same weights, the step before (cuBLAS,
no PDL: projections.CUBLAS) against tiled GEMVs with PDL, measured in turns. Random weights at the
exact configs (std 0.02), fp16, batch 1, 128 new tokens, warm-up excluded; bound = 4.20 TB/s (the
H200's measured copy bandwidth in the records) / (weights + KV bytes per token at the context).

    python scripts/ab_transformer_decode.py --configs pythia-6.9b,llama-3-8b --contexts 512,8192
"""

from __future__ import annotations

import argparse
import gc
import statistics

import torch
import torch.nn.functional as F

from comparer import analytic
from comparer.bench.measure import random_prompt_ids
from comparer.engines.projections import CUBLAS, DecodeKernels
from comparer.engines.transformer_fast import TransformerFastEngine
from comparer.kernels import gemv
from comparer.kernels.gemv import Tiles
from comparer.memory import tensor_bytes
from comparer.models.arch import _attention_sizes
from scripts.ab_token_loop import in_turns
from scripts.gemv_layouts import per_call_us
from scripts.tune_mamba_kernels import random_model

COPY_BANDWIDTH_B_PER_S = 4.20e12
# role -> (N, K, act) of one layer
# role -> (weight rows N, K, activation on the output) of one layer; Llama's up is [gate; up]
SHAPES = {"pythia-6.9b": {"qkv": (12288, 4096, None), "out": (4096, 4096, None), "up": (16384, 4096, "gelu"),
                          "down": (4096, 16384, None)},
          "llama-3-8b": {"qkv": (6144, 4096, None), "out": (4096, 4096, None), "up": (28672, 4096, "silu_gate"),
                         "down": (4096, 14336, None)}}
TILES = [Tiles(rows=8, block_k=256), Tiles(rows=4, block_k=512), Tiles(rows=8, block_k=512),
         Tiles(rows=4, block_k=1024), Tiles(rows=2, block_k=1024), Tiles(rows=8, block_k=512, stages=4),
         Tiles(rows=8, block_k=512, warps=8), Tiles(rows=4, block_k=512, warps=8), Tiles(rows=16, block_k=512),
         Tiles(rows=8, block_k=1024, warps=8), Tiles(rows=4, block_k=512, stages=2)]


def sweep(config: str) -> dict[str, Tiles]:
    """Each role's shape alone; returns the fastest tiles per role."""
    best = {}
    for role, (n, k, act) in SHAPES[config].items():
        copies = max(2, int(400e6 // (n * k * 2)))
        weights = [torch.randn(n, k, dtype=torch.float16, device="cuda") * 0.02 for _ in range(copies)]
        x = torch.randn(1, k, dtype=torch.float16, device="cuda")
        half = n // 2
        act_torch = {None: lambda t: t, "gelu": F.gelu, "silu_gate": lambda t: F.silu(t[:, :half]) * t[:, half:]}[act]
        gb = n * k * 2 / 1e9
        us = per_call_us([lambda w=w: act_torch(F.linear(x, w)) for w in weights])
        print(f"{config} {role:4s} {n:>6}x{k:<6} act={act}: cuBLAS (+ eager act) {us:6.2f} us "
              f"{gb / us * 1e6:5.0f} GB/s", flush=True)
        times = {}
        for tiles in TILES:
            times[tiles] = per_call_us([lambda w=w: gemv.tiled(x, w, tiles, act=act) for w in weights])
            print(f"{config} {role:4s}   tiled {tiles}: {times[tiles]:6.2f} us {gb / times[tiles] * 1e6:5.0f} GB/s",
                  flush=True)
        best[role] = min(times, key=times.get)
        del weights
        torch.cuda.empty_cache()
    return best


def bound_tok_per_s(model, context: int) -> float:
    """The issue's bound: the copy bandwidth over every weight byte plus the KV cache at ``context``."""
    cfg = model.config
    attention = _attention_sizes(cfg)
    kv_per_token = analytic.kv_bytes_per_token(cfg.num_hidden_layers, attention["n_kv_heads"], attention["head_dim"],
                                               model.dtype.itemsize)
    return analytic.decode_bound_tok_per_s(COPY_BANDWIDTH_B_PER_S, tensor_bytes(model.parameters()), kv_per_token,
                                           context, 0)


def ab(config: str, contexts: list[int], repeats: int, best: dict[str, Tiles]) -> None:
    model = random_model(config, 0.02)
    variants = {"tiled GEMV, defaults + PDL": DecodeKernels(),
                "tiled GEMV, sweep's best per role + PDL": DecodeKernels(**best), "cuBLAS, no PDL (before)": CUBLAS}
    print(f"{config}: sweep's best {best}", flush=True)
    with torch.inference_mode():
        engines = {label: TransformerFastEngine(model, None, max_context_tokens=max(contexts) + 256, kernels=k)
                   for label, k in variants.items()}
        for context in contexts:
            measure(config, model, engines, context, repeats)
    del engines, model
    gc.collect()
    torch.cuda.empty_cache()


def measure(config: str, model, engines: dict, context: int, repeats: int) -> None:
    """The engines in turns at one context: graph replays back to back, then a greedy generation."""
    replay, loop, tokens = in_turns(engines, random_prompt_ids(model.config.vocab_size, context), repeats)
    bound = bound_tok_per_s(model, context)
    first = next(iter(tokens.values()))
    for label in engines:
        rate = statistics.median(loop[label])
        same = next((i for i, (a, b) in enumerate(zip(first, tokens[label])) if a != b), len(first))
        print(f"{config} @ {context}: {label}: generate {rate:.1f} tok/s = {100 * rate / bound:.1f} % of "
              f"{bound:.1f} (runs {[round(v, 1) for v in loop[label]]}); step replays "
              f"{statistics.median(replay[label]):.1f}; greedy tokens equal to the first variant's for "
              f"{same} of {len(first)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="pythia-6.9b,llama-3-8b")
    parser.add_argument("--contexts", default="512,8192")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(torch.cuda.get_device_name(), flush=True)
    for config in args.configs.split(","):
        ab(config, [int(c) for c in args.contexts.split(",")], args.repeats, sweep(config))


if __name__ == "__main__":
    main()
