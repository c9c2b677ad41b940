"""Why a streamed generation's first token can come later than a 1-token generation's: TTFT of the
fast engines by generation length and token-loop setting, and the host time of the first decode
step queued after the prefill (H200, random weights at the exact configs, std 0.02, fp16).

    python3 scripts/ttft_probe.py --configs mamba-2.8b,pythia-6.9b --prompt-tokens 500
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from comparer.engines import stepping  # noqa: E402
from comparer.engines.loaded import load_model  # noqa: E402
from comparer.models.presets import ModelSpec
from comparer.bench.measure import random_prompt_ids  # noqa: E402
from comparer.settings import GenerationSettings  # noqa: E402


def ttfts(engine, ids, new_tokens: int, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats + 1):
        torch.cuda.synchronize()
        out.append(engine.generate(ids, GenerationSettings(max_new_tokens=new_tokens, fixed_length=True)).ttft_s)
    return out[1:]


def first_step_host_s(engine, ids) -> tuple[float, float, float]:
    """(prefill host s, prefill + sync s, host s of the first decode_step call right after the prefill)."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    logits = engine.prefill(ids, 256)
    t1 = time.perf_counter()
    token = logits.argmax(dim=-1)
    t2 = time.perf_counter()
    engine.decode_step(token)
    t3 = time.perf_counter()
    torch.cuda.synchronize()
    return t1 - t0, time.perf_counter() - t0, t3 - t2


def in_thread(fn, *args):
    """``fn(*args)`` in a fresh thread (as the pair code started one per comparison); its result."""
    import threading

    out = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)))
    thread.start()
    thread.join()
    return out[0]


def thread_probe(name: str, engine, ids) -> None:
    """TTFT of a 256-token generation in the main thread, in a fresh thread (twice there), to tell
    per-thread CUDA library state (cuBLAS / cuBLASLt handles) from the engine."""
    def once():
        torch.cuda.synchronize()
        return engine.generate(ids, GenerationSettings(max_new_tokens=256, fixed_length=True)).ttft_s

    def two(_):
        return [once(), once()]
    main_ms = [round(v * 1e3, 1) for v in ttfts(engine, ids, 256, 3)]
    fresh_ms = [[round(v * 1e3, 1) for v in in_thread(two, None)] for _ in range(3)]
    print(f"{name}: TTFT 256 tokens, main thread {main_ms} ms; fresh threads [first, second] {fresh_ms} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="mamba-2.8b,pythia-6.9b")
    parser.add_argument("--prompt-tokens", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loops", action="store_true", help="also TTFT by generation length and token loop")
    args = parser.parse_args()
    for name in args.configs.split(","):
        spec = ModelSpec(name, config_name=name, random_weights=True, init_std=0.02)
        model = load_model(spec, "cuda", engine="auto")
        engine = model.engine
        ids = random_prompt_ids(int(engine.model.config.vocab_size), args.prompt_tokens)
        for overlap in ((True, False) if args.loops else ()):
            stepping._TokenReader.overlap = overlap
            for n in (1, 2, 256):
                values = ttfts(engine, ids, n, args.repeats)
                print(f"{name} overlap={overlap} new={n:>3}: TTFT median {statistics.median(values) * 1e3:7.2f} ms "
                      f"{[round(v * 1e3, 1) for v in values]}")
        stepping._TokenReader.overlap = True
        thread_probe(name, engine, ids)
        probes = [first_step_host_s(engine, ids) for _ in range(4)][1:]
        print(f"{name}: prefill host / prefill+sync / first decode_step host (ms): "
              f"{[tuple(round(x * 1e3, 2) for x in p) for p in probes]}")
        del model, engine
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
