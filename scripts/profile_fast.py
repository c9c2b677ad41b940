"""Where the fast engines spend GPU time: prefill time per attention backend and the top kernels
of one prefill and one eager decode step (random weights at a bundled config, fp16, CUDA).

    python scripts/profile_fast.py --config pythia-6.9b --context 32768 --backends flash,cudnn
    python scripts/profile_fast.py --config mamba-2.8b --context 32768
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION}


def load_engine(config_name: str, context: int):
    from comparer.engines.loaded import load_model
    from comparer.models.presets import ModelSpec

    spec = ModelSpec(model_id=config_name, config_name=config_name, random_weights=True)
    return load_model(spec, "cuda", torch.float16, engine="fast", max_context_tokens=context + 8).engine


def timed_prefill_s(engine, ids: list[int], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats + 1):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        engine.prefill(ids, 1)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


KINDS = {"matrix products": ("gemm", "nvjet", "cutlass", "xmma", "cublas", "splitk"),
         "attention": ("fmha", "flash", "cudnn", "attention", "attn")}


def kind_of(kernel: str) -> str:
    name = kernel.lower()
    return next((kind for kind, marks in KINDS.items() if any(m in name for m in marks)), "everything else")


def device_us(event) -> float:
    """An event's own GPU time in us (the attribute was renamed from self_cuda_time_total in torch 2.4)."""
    return getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0.0)


def top_kernels(fn, n: int = 14) -> str:
    """The n kernels with the most GPU time, then the time per kind (matrix products, attention, the rest)."""
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    events = prof.key_averages()
    totals: dict[str, float] = {}
    for event in events:
        us = device_us(event)
        totals[kind_of(event.key)] = totals.get(kind_of(event.key), 0.0) + us
    split = ", ".join(f"{kind} {us / 1e6:.3f} s" for kind, us in sorted(totals.items(), key=lambda kv: -kv[1]))
    return (events.table(sort_by="cuda_time_total", row_limit=n, max_name_column_width=70)
            + f"\nGPU time by kind: {split}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--context", type=int, default=32768)
    parser.add_argument("--backends", default="", help="SDPA backends to time for the prefill (Transformers)")
    args = parser.parse_args()
    engine = load_engine(args.config, args.context)
    print(engine.card.kernel_path, engine.card.notes)
    ids = [int(i) for i in torch.randint(0, 1000, (args.context,))]
    print(f"prefill {args.context} tokens, default backends: {timed_prefill_s(engine, ids):.3f} s")
    for name in filter(None, args.backends.split(",")):
        try:
            with sdpa_kernel(BACKENDS[name]):
                print(f"prefill {args.context} tokens, {name}: {timed_prefill_s(engine, ids):.3f} s")
        except RuntimeError as err:
            print(f"prefill with {name}: {str(err).splitlines()[0]}")
    print(top_kernels(lambda: engine.prefill(ids, 1)))
    with torch.inference_mode():
        engine.prefill(ids[:512], 1)
        print(top_kernels(lambda: engine._step(engine.bucket) if hasattr(engine, "buckets") else engine._step()))


if __name__ == "__main__":
    main()
