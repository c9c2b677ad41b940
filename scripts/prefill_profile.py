"""Where Mamba's prefill spends GPU time, comparer's Triton path against mamba-ssm's one-pass prefill,
kernel by kernel, and how fast the small projections (x_proj, dt_proj) run in each layout cuBLAS could
be asked for (issue 24 item 1: the 2-4 % gap above 8K). Random weights at the exact config, std 0.02,
fp16, batch 1, on the GPU.

    python3 scripts/prefill_profile.py --context 32768 > $OUT/prefill-profile.txt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from comparer.bench.measure import random_prompt_ids  # noqa: E402
from comparer.settings import GenerationSettings  # noqa: E402
from scripts.mamba_paths import mamba_ssm_model, random_model  # noqa: E402
from scripts.profile_fast import device_us  # noqa: E402


def kernel_table(label: str, run, rows: int = 18) -> None:
    """The ``rows`` kernels with the most GPU time in one call of ``run`` (after a warm-up call)."""
    run()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    events = sorted(prof.key_averages(), key=lambda e: -device_us(e))
    total = sum(device_us(e) for e in events)
    print(f"\n## {label}: GPU time {total / 1e6:.4f} s")
    for event in events[:rows]:
        print(f"{device_us(event) / 1e3:9.2f} ms {event.count:6d} x  {event.key[:110]}")


def projection_layouts(hf, cols: int) -> None:
    """x_proj and dt_proj of one layer at ``cols`` steps, each way of calling cuBLAS (do_bench, ms)."""
    from triton.testing import do_bench

    layer = hf.backbone.layers[0].mixer
    d, rank = layer.dt_proj.weight.shape[0], layer.dt_proj.weight.shape[1]
    u = torch.randn(d, cols, device="cuda", dtype=torch.float16) * 0.1
    wx, wdt = layer.x_proj.weight, layer.dt_proj.weight
    xdbl = torch.mm(wx, u)
    cases = {
        "x_proj  W @ u            (channel-major, comparer)": lambda: torch.mm(wx, u),
        "x_proj  u^T @ W^T        (time-major, mamba-ssm)": lambda: torch.nn.functional.linear(u.t(), wx),
        "dt_proj W @ xdbl[:rank]  (strided rows, comparer)": lambda: torch.mm(wdt, xdbl[:rank]),
        "dt_proj W @ contiguous   (mamba-ssm's rearrange)": lambda: torch.mm(wdt, xdbl[:rank].contiguous()),
        "in_proj W @ x^T": lambda: torch.mm(hf.backbone.layers[0].mixer.in_proj.weight,
                                            torch.randn(cols, hf.config.hidden_size, device="cuda",
                                                        dtype=torch.float16).t()),
    }
    print(f"\n## projections of one layer at {cols} steps (triton.testing.do_bench, median ms)")
    for name, fn in cases.items():
        print(f"{do_bench(fn, warmup=10, rep=50):8.3f} ms  {name}")


def main() -> None:
    from comparer.engines.mamba_fast import MambaFastEngine
    from comparer.engines.mamba_ops import TritonOps

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="mamba-2.8b")
    parser.add_argument("--context", type=int, default=32768)
    args = parser.parse_args()
    hf = random_model(args.config)
    native = mamba_ssm_model(hf)
    engine = MambaFastEngine(hf, None, TritonOps(), cuda_graph=True, chunk_tokens=args.context)
    prompt = random_prompt_ids(hf.config.vocab_size, args.context)
    ids = torch.tensor([prompt], device="cuda")
    print(f"# {torch.cuda.get_device_name()}, {args.config}, random weights std 0.02, fp16, {args.context} tokens")
    kernel_table("mamba-ssm generate(cg=True), 1 token",
                 lambda: native.generate(ids, max_length=args.context + 1, cg=True))
    kernel_table("comparer Triton, one pass, 1 token",
                 lambda: engine.generate(prompt, GenerationSettings(max_new_tokens=1)))
    projection_layouts(hf, args.context)


if __name__ == "__main__":
    main()
