"""Sweep the Triton prefill kernels' launch settings at Mamba-2.8B's shapes on the GPU (the width-4 conv and
the selective scan, each checked against the settings in use and timed beside causal-conv1d / mamba-ssm
where installed), then time the whole prefill with the fastest settings against mamba-ssm's native one-pass
prefill (MambaLMHeadModel.generate(cg=True)) in the same run, context by context (issue 24 item 1).

Random weights at the exact config, std 0.02, fp16, batch 1. TTFT = a 1-token generation, median of
``--repeats`` after one warm-up; extra memory = peak allocated during those runs minus allocated before.

    python3 scripts/tune_prefill_kernels.py --contexts 512,2048,8192,32768,131072 --long 1048576 \\
        --out $OUT/prefill-vs-native.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from comparer.bench.measure import random_prompt_ids  # noqa: E402
from comparer.settings import GenerationSettings  # noqa: E402
from scripts.mamba_paths import mamba_ssm_model, random_model  # noqa: E402
from scripts.prefill_chunks import GIB, timed  # noqa: E402

CONV_SETTINGS = [(c, s, w) for c, s, w in itertools.product((1, 2, 4, 8, 16), (256, 512, 1024, 2048), (2, 4, 8))
                 if c * s <= 8192]
SCAN_SETTINGS = [(1, 512, 1), (1, 256, 1), (1, 512, 2), (1, 1024, 1), (1, 1024, 2), (1, 1024, 4), (1, 2048, 4),
                 (2, 512, 2), (2, 1024, 4)]


def bench_ms(fn) -> float:
    from triton.testing import do_bench

    return do_bench(fn, warmup=5, rep=40)


def sweep_conv(d: int, cols: int) -> tuple[int, int, int]:
    from comparer.kernels import mamba_conv
    from comparer.kernels.triton import triton

    g = torch.Generator(device="cuda").manual_seed(0)
    xz = torch.randn(2 * d, cols, device="cuda", generator=g).half()
    w, b = (torch.randn(d, 4, device="cuda", generator=g) * 0.3).half(), torch.randn(d, device="cuda").half()
    state = torch.randn(d, 4, device="cuda", generator=g).half()
    out_generic = torch.empty(d, cols, dtype=torch.float16, device="cuda")

    def generic():
        grid = (triton.cdiv(d, mamba_conv.BLOCK_D), triton.cdiv(cols, mamba_conv.BLOCK_T))
        mamba_conv._conv_kernel[grid](xz, state, w, b, out_generic, xz.stride(0), cols, DIM=d, W=4, HAS_BIAS=True,
                                      BD=mamba_conv.BLOCK_D, BT=mamba_conv.BLOCK_T, num_warps=mamba_conv.WARPS)
    generic()  # the generic kernel (any width) on the same data, the reference for bit-identity
    print(f"conv generic kernel ({mamba_conv.BLOCK_D}, {mamba_conv.BLOCK_T}, {mamba_conv.WARPS}): "
          f"{bench_ms(generic):.4f} ms", flush=True)
    try:
        from causal_conv1d import causal_conv1d_fn

        ref = causal_conv1d_fn(xz[None, :d], w, b, activation="silu")[0]  # from a zero left edge
        ours, _ = mamba_conv.conv(xz[:d], torch.zeros_like(state), w, b)
        ms = bench_ms(lambda: causal_conv1d_fn(xz[None, :d], w, b, activation="silu"))
        print(f"conv causal-conv1d: {ms:.4f} ms (max difference to the width-4 kernel from a zero state "
              f"{(ref.float() - ours.float()).abs().max():.2e})")
    except ImportError:
        print("conv causal-conv1d: not installed")

    def run(setting):
        return mamba_conv.conv(xz[:d], state, w, b, setting=setting)[0]

    return fastest("conv4", CONV_SETTINGS, lambda setting: torch.equal(run(setting), out_generic), run,
                   "bit-identical to the generic kernel")


def fastest(label: str, settings: list, agrees, run, agreement: str) -> tuple[int, int, int]:
    """The quickest of ``settings`` whose output ``agrees(setting)``; each line printed (a setting Triton
    cannot build is reported and skipped); SystemExit when none builds and agrees."""
    best = None
    for setting in settings:
        try:
            same = bool(agrees(setting))
            ms = bench_ms(lambda: run(setting))
        except Exception as err:  # noqa: BLE001
            print(f"{label} {setting}: {type(err).__name__}: {str(err)[:100]}")
            continue
        print(f"{label} {setting}: {ms:.4f} ms, {agreement}: {same}", flush=True)
        if same and (best is None or ms < best[0]):
            best = (ms, setting)
    print(f"{label} best: {best}")
    if best is None:
        raise SystemExit(f"no {label} setting built and agreed ({agreement})")
    return best[1]


def sweep_scan(d: int, n: int, cols: int, rank: int = 160) -> tuple[int, int, int]:
    from comparer.kernels import mamba_scan

    g = torch.Generator(device="cuda").manual_seed(1)
    xz = (torch.randn(2 * d, cols, device="cuda", generator=g) * 0.5).half()
    xdbl = (torch.randn(rank + 2 * n, cols, device="cuda", generator=g) * 0.5).half()
    dt = (torch.randn(d, cols, device="cuda", generator=g) * 0.5 - 2).half()
    A = -torch.rand(d, n, device="cuda", generator=g) * 4 - 0.1
    D, bias = torch.randn(d, device="cuda", generator=g), torch.randn(d, device="cuda", generator=g) * 0.2
    h0 = torch.randn(d, n, device="cuda", generator=g) * 0.1

    def run(setting):
        state = h0.clone()
        y = mamba_scan.scan(xz[:d], dt, A, xdbl[rank:rank + n], xdbl[rank + n:], D, xz[d:], bias, state,
                            setting=setting)
        return y, state

    want_y, want_h = run(mamba_scan.launch_setting(xz.device))
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        args = (xz[None, :d], dt[None], A, xdbl[None, rank:rank + n].contiguous(), xdbl[None, rank + n:].contiguous(),
                D, xz[None, d:])
        print(f"scan mamba-ssm selective_scan_fn: {bench_ms(lambda: selective_scan_fn(*args, bias, True)):.4f} ms")
    except ImportError:
        print("scan mamba-ssm: not installed")
    def agrees(setting):
        y, h = run(setting)
        return (torch.allclose(y.float(), want_y.float(), rtol=2e-3, atol=2e-3) and
                torch.allclose(h, want_h, rtol=1e-4, atol=1e-4))

    state = h0.clone()  # timed runs write into one state (no clone inside the timing)
    return fastest("scan", SCAN_SETTINGS, agrees, lambda setting: mamba_scan.scan(
        xz[:d], dt, A, xdbl[rank:rank + n], xdbl[rank + n:], D, xz[d:], bias, state, setting=setting),
        "same outputs as the current setting")


def versus_native(hf, contexts: list[int], long: int, repeats: int) -> list[dict]:
    from comparer.engines.mamba_fast import MambaFastEngine
    from comparer.engines.mamba_ops import TritonOps

    native = mamba_ssm_model(hf)
    engines = {"comparer": MambaFastEngine(hf, None, TritonOps(), cuda_graph=True),
               "comparer, Triton scan only": MambaFastEngine(hf, None, TritonOps(zero_state_scan=False),
                                                             cuda_graph=True),
               "comparer, scan through selective_scan_fn": MambaFastEngine(hf, None, TritonOps(zero_scan_direct=False),
                                                                           cuda_graph=True)}
    print(f"comparer prefill: {engines['comparer'].describe().prefill} ({engines['comparer'].ops.name})")
    rows = []
    for context in contexts + ([long] if long else []):
        prompt = random_prompt_ids(hf.config.vocab_size, context)
        ids = torch.tensor([prompt], device="cuda")
        row = {"context": context}
        if context != long:
            row["native"] = timed(lambda: native.generate(ids, max_length=context + 1, cg=True), repeats)
        for name, engine in engines.items():
            row[name] = timed(lambda: engine.generate(prompt, GenerationSettings(max_new_tokens=1)),
                              repeats if context != long else 1)
            row[f"{name} / native"] = row[name][0] / row["native"][0] if "native" in row else None
        row["comparer chunk"] = engines["comparer"].last_chunk_tokens
        rows.append(row)
        print(json.dumps({k: (round(v[0], 4), round(v[1], 2)) if isinstance(v, tuple) else v
                          for k, v in row.items()}), flush=True)
        torch.cuda.empty_cache()
    return rows


def main() -> None:
    from comparer.kernels import mamba_conv, mamba_scan

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="mamba-2.8b")
    parser.add_argument("--contexts", default="512,2048,8192,32768,131072")
    parser.add_argument("--long", type=int, default=0, help="also this context, comparer alone (1 timed run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-sweep", action="store_true", help="keep the settings in the code")
    parser.add_argument("--no-conv-sweep", action="store_true", help="sweep the scan only")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    hf = random_model(args.config)
    d, n = hf.config.intermediate_size, hf.config.state_size
    if not args.no_sweep:
        if not args.no_conv_sweep:
            mamba_conv.SETTING_4 = sweep_conv(d, 32768)
        mamba_scan.SETTINGS[torch.cuda.get_device_capability()] = sweep_scan(d, n, 32768)
    settings = {"conv4": mamba_conv.SETTING_4, "scan": mamba_scan.launch_setting(torch.device("cuda"))}
    print(f"settings for the prefill: {settings}", flush=True)
    rows = versus_native(hf, [int(c) for c in args.contexts.split(",")], args.long, args.repeats)
    Path(args.out).write_text(json.dumps({"device": torch.cuda.get_device_name(), "config": args.config,
                                          "weights": "random (exact config), std 0.02, fp16", "settings": settings,
                                          "gib": GIB, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
