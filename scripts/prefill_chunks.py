"""Mamba prefill TTFT and extra memory by chunk size, against mamba-ssm's own one-pass prefill, same run
(issue 24 item 1). Random weights at the exact config, std 0.02, fp16, batch 1, on the GPU.

For each context: mamba-ssm MambaLMHeadModel.generate(cg=True) for 1 token, and comparer's fast engine
with Triton ops and with mamba-ssm's kernels (KernelOps), at chunks of 8192, 32768 and the whole prompt.
TTFT = a 1-token generation, median of ``--repeats`` after one warm-up; extra memory = peak allocated
during those generations minus allocated before them.

    python3 scripts/prefill_chunks.py --contexts 2048,8192,32768,131072 --out $OUT/prefill-chunks.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from comparer.bench.measure import random_prompt_ids  # noqa: E402
from comparer.settings import GenerationSettings  # noqa: E402
from scripts.mamba_paths import mamba_ssm_model, random_model  # noqa: E402

GIB = 2**30


def timed(run, repeats: int) -> tuple[float, float, list[float]]:
    """(median s, extra GiB, values): one warm-up, then ``repeats`` timed runs with the peak reset."""
    run()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    values = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        run()
        torch.cuda.synchronize()
        values.append(time.perf_counter() - t0)
    return statistics.median(values), (torch.cuda.max_memory_allocated() - before) / GIB, values


def main() -> None:
    from comparer.engines.mamba_fast import MambaFastEngine
    from comparer.engines.mamba_ops import KernelOps, TritonOps

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="mamba-2.8b")
    parser.add_argument("--contexts", default="2048,8192,32768,131072")
    parser.add_argument("--chunks", default="8192,32768,0", help="0 = the whole prompt in one pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    hf = random_model(args.config)
    native = mamba_ssm_model(hf)
    engines = {"triton": MambaFastEngine(hf, None, TritonOps(), cuda_graph=True),
               "mamba-ssm kernels": MambaFastEngine(hf, None, KernelOps(), cuda_graph=True)}
    rows = []
    for context in [int(c) for c in args.contexts.split(",")]:
        prompt = random_prompt_ids(hf.config.vocab_size, context)
        ids = torch.tensor([prompt], device="cuda")
        row = {"context": context}
        row["native"] = timed(lambda: native.generate(ids, max_length=context + 1, cg=True), args.repeats)
        for name, engine in engines.items():
            for chunk in [int(c) for c in args.chunks.split(",")]:
                engine.chunk_tokens = chunk or context
                try:
                    row[f"{name} chunk {chunk or 'whole'}"] = timed(lambda: engine.generate(
                        prompt, GenerationSettings(max_new_tokens=1)), args.repeats)
                except torch.OutOfMemoryError as err:
                    row[f"{name} chunk {chunk or 'whole'}"] = f"oom: {str(err)[:80]}"
                    torch.cuda.empty_cache()
        rows.append(row)
        print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps({"device": torch.cuda.get_device_name(), "config": args.config,
                                          "weights": "random (exact config), std 0.02, fp16", "rows": rows},
                                         indent=1))


if __name__ == "__main__":
    main()
