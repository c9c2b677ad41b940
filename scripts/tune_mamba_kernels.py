"""The fast Mamba engine's Triton kernels on the H200: decode tok/s with mamba-ssm's state update
(unfused) against comparer's fused step at several block sizes, the per-kernel split of one fused
step, and the 32K prefill with each chunk-carry block size and in_proj layout. Random weights at the
exact configs, fp16, batch 1 (speed does not depend on weight values).

    python scripts/tune_mamba_kernels.py --configs mamba-2.8b,mamba-130m
    python scripts/tune_mamba_kernels.py --configs mamba-2.8b --tiles
    python scripts/tune_mamba_kernels.py --configs mamba-2.8b --scan   # prefill: Triton ops vs mamba-ssm's
    python scripts/tune_mamba_kernels.py --configs mamba-2.8b,mamba-130m --warm   # L2 warming of the next weight
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
from torch.profiler import ProfilerActivity, profile

from comparer.kernels import l2_warm, mamba_carry, mamba_decode, mamba_scan
from comparer.engines.mamba_fast import MambaFastEngine
from comparer.engines.mamba_ops import KernelOps, TritonOps
from comparer.models.loading import load_bundled_config

# mamba_decode.DecodeSettings fields to try, each on top of the defaults with the five-kernel layer (the one
# kernel for norm + in_proj + conv would bypass the in_proj and conv settings; --fused-in-proj sweeps it)
DECODE_VARIANTS = [{"gemv_out_proj": False}, {}, {"gemv_in_proj": True}, {"gemv_out_proj": False, "gemv_in_proj": True},
                   {"gemv_block_k": 256}, {"gemv_block_k": 1024}, {"gemv_warps": 8}, {"gemv_stages": 2},
                   {"gemv_stages": 4}, {"conv_block": 32}, {"step_block": 32}]
DECODE_VARIANTS = [{"fused_in_proj": None, **variant} for variant in DECODE_VARIANTS]
CARRY_BLOCKS = [(8, 256), (4, 256), (8, 512), (16, 256)]
# --tiles: the tiled GEMV for weights over GEMV_MAX_BYTES (Mamba-2.8B), out_proj first (rows, block K,
# K splits, warps, stages), then in_proj on top of the best out_proj
OUT_TILES = [(16, 256, 2, 4, 3), (16, 256, 4, 4, 3), (32, 256, 4, 4, 3), (32, 256, 5, 4, 3), (32, 256, 10, 4, 3),
             (64, 256, 4, 8, 3), (64, 256, 10, 8, 3), (32, 512, 5, 8, 3), (16, 512, 2, 4, 3), (32, 256, 4, 8, 3),
             (32, 256, 4, 4, 4), (16, 256, 4, 4, 2), (8, 512, 2, 4, 3), (16, 256, 10, 4, 3)]
IN_TILES = [(8, 256, 4, 3), (16, 256, 4, 3), (32, 256, 4, 3), (64, 256, 8, 3), (16, 512, 4, 3), (32, 512, 8, 3),
            (16, 256, 8, 3), (16, 256, 4, 4), (8, 512, 4, 3), (32, 256, 8, 4)]


def random_model(config_name: str, initializer_range: float | None = None):
    """fp16 random weights at the exact config on the GPU (seeded); ``initializer_range`` overrides the
    config's std of the random weights (speed does not depend on it)."""
    from transformers import AutoModelForCausalLM

    config = load_bundled_config(config_name)
    if initializer_range is not None:
        config.initializer_range = initializer_range
    torch.manual_seed(0)
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(config, dtype=torch.float16).eval()


def decode_tok_per_s(engine: MambaFastEngine, steps: int = 128, repeats: int = 3) -> float:
    engine.prefill(list(range(100, 612)))
    token = torch.tensor([5], device="cuda")
    best = 0.0
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            engine.decode_step(token)
        torch.cuda.synchronize()
        best = max(best, steps / (time.perf_counter() - t0))
    return best


def fused_step_kernels(engine: MambaFastEngine) -> str:
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        engine._step()
        torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=10, max_name_column_width=60)


def prefill_s(engine: MambaFastEngine, ids: list[int], repeats: int = 3) -> tuple[float, float]:
    """Median prefill seconds and the peak memory above the model and states (GiB)."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats + 1):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        engine.prefill(ids)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times = sorted(times[1:])
    return times[len(times) // 2], (torch.cuda.max_memory_allocated() - base) / 2**30


def tiles_sweep(model, name: str) -> None:
    """Graph-replayed decode tok/s with cuBLAS, then each tiled-GEMV setting; prints the best."""

    def rate(settings: mamba_decode.DecodeSettings, label: str) -> float:
        engine = MambaFastEngine(model, None, KernelOps(decode_settings=settings), cuda_graph=True)
        tok_s = decode_tok_per_s(engine)
        print(f"{name} decode, {label}: {tok_s:.1f} tok/s (capture {engine.capture_s:.2f} s)", flush=True)
        return tok_s

    best = replace(mamba_decode.DEFAULT, tiles_in_proj=None, tiles_out_proj=None)
    best_rate = rate(best, "cuBLAS in_proj and out_proj")
    for rows, block_k, parts, warps, stages in OUT_TILES:
        tiles = mamba_decode.Tiles(rows=rows, block_k=block_k, parts=parts, warps=warps, stages=stages)
        trial = replace(best, tiles_out_proj=tiles)
        if (tok_s := rate(trial, f"tiled out_proj {tiles}")) > best_rate:
            best_rate, best = tok_s, trial
    for rows, block_k, warps, stages in IN_TILES:
        tiles = mamba_decode.Tiles(rows=rows, block_k=block_k, warps=warps, stages=stages)
        trial = replace(best, tiles_in_proj=tiles)
        if (tok_s := rate(trial, f"tiled in_proj {tiles} + out_proj {best.tiles_out_proj}")) > best_rate:
            best_rate, best = tok_s, trial
    print(f"{name} best: {best_rate:.1f} tok/s with in_proj {best.tiles_in_proj}, out_proj {best.tiles_out_proj}",
          flush=True)
    engine = MambaFastEngine(model, None, KernelOps(decode_settings=best), cuda_graph=True)
    print(fused_step_kernels(engine), flush=True)


def tiles_round_two(model, name: str) -> None:
    """Around the defaults: L2 eviction hint on the weights, add_rms warps, a few neighbours."""
    default = mamba_decode.DEFAULT
    variants = [({}, {}, None), ({"evict": True}, {"evict": True}, None), ({}, {}, 16), ({}, {}, 4),
                ({"warps": 8}, {}, None), ({}, {"parts": 5}, None), ({}, {"block_k": 128, "parts": 4}, None),
                ({"rows": 16}, {"rows": 8}, None), ({"evict": True}, {}, None), ({}, {"evict": True}, None)]
    for in_change, out_change, warps in variants:
        settings = replace(default, tiles_in_proj=replace(default.tiles_in_proj, **in_change),
                           tiles_out_proj=replace(default.tiles_out_proj, **out_change),
                           add_rms_warps=warps or default.add_rms_warps)
        engine = MambaFastEngine(model, None, KernelOps(decode_settings=settings), cuda_graph=True)
        print(f"{name} decode, in_proj {in_change} out_proj {out_change} add_rms warps {warps}: "
              f"{decode_tok_per_s(engine):.1f} tok/s", flush=True)


# --tiles-pdl: wider tiles with PDL on (the sweeps above ran before PDL); (in_proj change, out_proj change)
PDL_VARIANTS = [({}, {}), ({"block_k": 512, "warps": 8}, {}), ({"rows": 4, "block_k": 512}, {}),
                ({"rows": 16, "block_k": 512, "warps": 8}, {}), ({"rows": 2, "block_k": 512}, {}),
                ({}, {"rows": 8, "block_k": 1024, "parts": 1, "warps": 8, "stages": 3}),
                ({}, {"rows": 4, "block_k": 1024, "parts": 1, "warps": 8, "stages": 3}),
                ({}, {"rows": 2, "block_k": 1024, "parts": 1, "warps": 4, "stages": 3}),
                ({}, {"rows": 8, "block_k": 1024, "parts": 5, "warps": 8, "stages": 3}),
                ({}, {"rows": 8, "block_k": 512, "parts": 2, "warps": 8, "stages": 3}),
                ({}, {"rows": 4, "block_k": 512, "parts": 2, "warps": 4, "stages": 3}),
                ({}, {"rows": 16, "block_k": 512, "parts": 2, "warps": 8, "stages": 3})]


def tiles_with_pdl(model, name: str) -> None:
    """PDL_VARIANTS one at a time from the defaults, then the best in_proj with the best out_proj."""
    default = mamba_decode.DEFAULT
    results = []
    for in_change, out_change in PDL_VARIANTS:
        settings = replace(default, tiles_in_proj=replace(default.tiles_in_proj, **in_change),
                           tiles_out_proj=replace(default.tiles_out_proj, **out_change))
        engine = MambaFastEngine(model, None, KernelOps(decode_settings=settings), cuda_graph=True)
        tok_s = decode_tok_per_s(engine)
        results.append((tok_s, in_change, out_change))
        print(f"{name} decode (PDL {mamba_decode.pdl_on(model.lm_head.weight, settings)}), in_proj {in_change} "
              f"out_proj {out_change}: {tok_s:.1f} tok/s", flush=True)
    best_in = max((r for r in results if not r[2]), key=lambda r: r[0])[1]
    best_out = max((r for r in results if not r[1]), key=lambda r: r[0])[2]
    settings = replace(default, tiles_in_proj=replace(default.tiles_in_proj, **best_in),
                       tiles_out_proj=replace(default.tiles_out_proj, **best_out))
    engine = MambaFastEngine(model, None, KernelOps(decode_settings=settings), cuda_graph=True)
    print(f"{name} decode, best in_proj {best_in} + best out_proj {best_out}: {decode_tok_per_s(engine):.1f} tok/s",
          flush=True)


# --fused-in-proj: add_rms + in_proj + conv_xproj in one kernel, (rows, block_k, warps, stages) per program,
# against the five-kernel layer (None) in the same run. (The first sweeps, h200-mamba-fused-in-proj{,-2,-3}.txt,
# also tried 2 and 4 rows, 128- to 4096-column tiles, and programs looping over row blocks: all slower.)
FUSED_IN = [None, (16, 256, 8, 3), (8, 256, 4, 3), (16, 256, 4, 3), (32, 256, 4, 3), (64, 256, 8, 3), (16, 512, 8, 3)]


def _fused_settings(setting):
    if setting is None:
        return replace(mamba_decode.DEFAULT, fused_in_proj=None)
    rows, block_k, warps, stages = setting
    return replace(mamba_decode.DEFAULT, fused_in_proj=mamba_decode.Tiles(rows=rows, block_k=block_k, warps=warps,
                                                                          stages=stages),
                   fused_in_proj_max_bytes=2**40)


def fused_in_proj_sweep(model, name: str) -> None:
    """Graph-replayed decode tok/s for each FUSED_IN setting; the per-kernel split of the best."""
    best = (0.0, None)
    for setting in FUSED_IN:
        engine = MambaFastEngine(model, None, KernelOps(decode_settings=_fused_settings(setting)), cuda_graph=True)
        tok_s = decode_tok_per_s(engine)
        label = "off (five kernels a layer)" if setting is None else f"rows, block_k, warps, stages {setting}"
        print(f"{name} decode, fused norm+in_proj+conv {label}: {tok_s:.1f} tok/s", flush=True)
        best = max(best, (tok_s, setting), key=lambda b: b[0])
        del engine
    print(f"{name} best fused norm+in_proj+conv setting: {best[1]} ({best[0]:.1f} tok/s)", flush=True)
    engine = MambaFastEngine(model, None, KernelOps(decode_settings=_fused_settings(best[1])), cuda_graph=False)
    engine.prefill(list(range(100, 612)))
    print(fused_step_kernels(engine), flush=True)


# --warm: (fraction of out_proj warmed, by which kernel, fraction of the next in_proj warmed by out_proj)
WARM = [(0.0, "conv", 0.0), (0.25, "conv", 0.0), (0.5, "conv", 0.0), (1.0, "conv", 0.0), (0.5, "step", 0.0),
        (1.0, "step", 0.0), (0.0, "conv", 0.1), (0.0, "conv", 0.25), (0.0, "conv", 0.5), (0.5, "conv", 0.25),
        (1.0, "conv", 0.25), (1.0, "conv", 0.5), (1.0, "step", 0.25), (1.0, "conv", 1.0)]
WARM_CHUNKS = [1024, 16384]


def warm_sweep(model, name: str, rounds: int = 3) -> None:
    """Graph-replayed decode tok/s for each WARM setting, every engine built first and measured in turns
    (``rounds`` times, best of each kept), so drift over the run hits every setting alike; then the best
    setting at each prefetch chunk size, against no warming, again in turns."""
    def engine_for(setting, chunk_b: int = l2_warm.CHUNK_BYTES):
        out_f, by, in_f = setting
        settings = replace(mamba_decode.DEFAULT, warm_out_proj=out_f, warm_out_proj_from=by, warm_next_in_proj=in_f,
                           warm_chunk_bytes=chunk_b)
        return MambaFastEngine(model, None, KernelOps(decode_settings=settings), cuda_graph=True)

    engines = {setting: engine_for(setting) for setting in WARM}
    best = {setting: 0.0 for setting in WARM}
    for _ in range(rounds):
        for setting, engine in engines.items():
            best[setting] = max(best[setting], decode_tok_per_s(engine))
    for setting, tok_s in best.items():
        print(f"{name} decode, warm out_proj {setting[0]} from {setting[1]}, next in_proj {setting[2]}: "
              f"{tok_s:.1f} tok/s (chunk {l2_warm.CHUNK_BYTES} B)", flush=True)
    top = max(best, key=best.get)
    del engines
    # the best setting's chunk sizes and no warming, in turns as above
    turns = {chunk: engine_for(top if chunk else WARM[0], chunk or l2_warm.CHUNK_BYTES)
             for chunk in [0, l2_warm.CHUNK_BYTES, *WARM_CHUNKS]}
    fastest = {chunk: 0.0 for chunk in turns}
    for _ in range(rounds):
        for chunk, engine in turns.items():
            fastest[chunk] = max(fastest[chunk], decode_tok_per_s(engine))
    for chunk, tok_s in fastest.items():
        label = f"warm {top}, chunk {chunk} B" if chunk else "no warming"
        print(f"{name} decode, in turns: {label}: {tok_s:.1f} tok/s", flush=True)


# --scan: (channels per program, time steps per tile, warps) of the Triton prefill scan
SCAN_BLOCKS = [(4, 256, 4), (2, 256, 2), (1, 256, 1), (4, 128, 4), (8, 128, 8), (2, 128, 2), (1, 128, 1),
               (8, 256, 8), (2, 512, 2), (4, 512, 4), (1, 512, 1), (16, 64, 8)]


def scan_call_ms(d: int, n: int, cols: int, rank: int = 160, repeats: int = 20) -> float:
    """Milliseconds per call of the Triton scan alone on one prefill chunk at the engine's layout."""
    g = torch.Generator(device="cuda").manual_seed(0)
    xz = torch.randn(2 * d, cols, device="cuda", generator=g, dtype=torch.float16)
    xdbl = torch.randn(rank + 2 * n, cols, device="cuda", generator=g, dtype=torch.float16)
    dt = torch.randn(d, cols, device="cuda", generator=g, dtype=torch.float16) - 2
    A, D, bias = -torch.rand(d, n, device="cuda") - 0.1, torch.ones(d, device="cuda"), torch.zeros(d, device="cuda")
    state = torch.zeros(d, n, device="cuda")
    args = (xz[:d], dt, A, xdbl[rank:rank + n], xdbl[rank + n:], D, xz[d:], bias, state)
    mamba_scan.scan(*args, seq=cols - 5)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        mamba_scan.scan(*args, seq=cols - 5)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats * 1e3


def scan_sweep(model, name: str, context: int) -> None:
    """Prefill seconds and extra peak at ``context`` tokens: mamba-ssm's scan + the carry kernel (the kit),
    then comparer's Triton ops (no mamba-ssm) at each scan block setting; a kernel profile of the best."""
    ids = [int(i) for i in torch.randint(0, 50000, (context,))]
    cfg = model.config
    engine = MambaFastEngine(model, None, KernelOps(), cuda_graph=False)
    seconds, extra_gib = prefill_s(engine, ids)
    print(f"{name} prefill {context}: mamba-ssm scan + carry: {seconds:.3f} s, extra peak {extra_gib:.2f} GiB", flush=True)
    capability = torch.cuda.get_device_capability()
    defaults, best = dict(mamba_scan.SETTINGS), (float("inf"), None)
    for blocks in SCAN_BLOCKS:
        mamba_scan.SETTINGS[capability] = blocks
        call_ms = scan_call_ms(cfg.intermediate_size, cfg.state_size, min(context, 8192), int(cfg.time_step_rank))
        engine = MambaFastEngine(model, None, TritonOps(), cuda_graph=False)
        seconds, extra_gib = prefill_s(engine, ids)
        print(f"{name} prefill {context}: Triton ops, scan channels x steps x warps {blocks}: {seconds:.3f} s "
              f"(scan {call_ms:.3f} ms per chunk and layer), extra peak {extra_gib:.2f} GiB", flush=True)
        best = min(best, (seconds, blocks))
    print(f"{name} best Triton scan setting: {best[1]} ({best[0]:.3f} s)", flush=True)
    mamba_scan.SETTINGS[capability] = best[1]
    engine = MambaFastEngine(model, None, TritonOps(), cuda_graph=False)
    engine.prefill(ids)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        engine.prefill(ids)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=60), flush=True)
    mamba_scan.SETTINGS.clear()
    mamba_scan.SETTINGS.update(defaults)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="mamba-2.8b,mamba-130m")
    parser.add_argument("--context", type=int, default=32768)
    parser.add_argument("--decode-only", action="store_true")
    parser.add_argument("--tiles", action="store_true", help="only the tiled-GEMV sweep")
    parser.add_argument("--tiles-round-two", action="store_true", help="only variants around the tiled defaults")
    parser.add_argument("--scan", action="store_true", help="only the prefill scan sweep")
    parser.add_argument("--tiles-pdl", action="store_true", help="only the wider tiles with PDL on")
    parser.add_argument("--fused-in-proj", action="store_true", help="only the one-kernel norm+in_proj+conv sweep")
    parser.add_argument("--warm", action="store_true", help="only the L2-warming sweep")
    args = parser.parse_args()
    for name in args.configs.split(","):
        model = random_model(name)
        if args.scan:
            with torch.inference_mode():
                scan_sweep(model, name, args.context)
            continue
        if args.warm:
            with torch.inference_mode():
                warm_sweep(model, name)
            continue
        if args.fused_in_proj:
            with torch.inference_mode():
                fused_in_proj_sweep(model, name)
            continue
        if args.tiles_pdl:
            with torch.inference_mode():
                tiles_with_pdl(model, name)
            continue
        if args.tiles or args.tiles_round_two:
            with torch.inference_mode():
                (tiles_sweep if args.tiles else tiles_round_two)(model, name)
            continue
        with torch.inference_mode():
            unfused = MambaFastEngine(model, None, KernelOps(fused_decode=False), cuda_graph=True)
            print(f"{name} decode, mamba-ssm state update: {decode_tok_per_s(unfused):.1f} tok/s", flush=True)
            del unfused
            for variant in DECODE_VARIANTS:
                ops = KernelOps(decode_settings=replace(mamba_decode.DEFAULT, **variant))
                fused = MambaFastEngine(model, None, ops, cuda_graph=True)
                print(f"{name} decode, fused {variant or 'defaults'}: {decode_tok_per_s(fused):.1f} tok/s "
                      f"(capture {fused.capture_s:.2f} s)", flush=True)
            fused = MambaFastEngine(model, None, KernelOps(), cuda_graph=True)
            print(fused_step_kernels(fused), flush=True)
            del fused
            if args.decode_only:
                continue
            ids = [int(i) for i in torch.randint(0, 50000, (args.context,))]
            for channel_major in (False, True):
                KernelOps.channel_major_in_proj = channel_major
                for block_d, block_t in CARRY_BLOCKS:
                    mamba_carry.BLOCK_D, mamba_carry.BLOCK_T = block_d, block_t
                    engine = MambaFastEngine(model, None, KernelOps(), cuda_graph=False)
                    seconds, extra_gib = prefill_s(engine, ids)
                    print(f"{name} prefill {args.context}: channel-major in_proj {channel_major}, carry block "
                          f"{block_d}x{block_t}: {seconds:.3f} s, extra peak {extra_gib:.2f} GiB", flush=True)
                    del engine
            KernelOps.channel_major_in_proj = False
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
