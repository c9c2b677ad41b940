"""Mamba decode by every path on the same random weights, on one GPU: transformers' eager generate,
transformers' model under torch.compile, mamba-ssm's own MambaLMHeadModel (the Hugging Face weights
loaded into it) with generate(cg=True), and comparer's fast engine. Same measure for all: the wall time of
a generation of 1 + N tokens minus that of 1 token (both include the same prefill), median of repeats,
warm-up (and any graph capture or compilation) excluded. Random weights at the exact config (std 0.02, see
random_model), fp16, batch 1, greedy. Speed does not depend on weight values.

    python scripts/mamba_paths.py --config mamba-2.8b --contexts 512,8192,32768
    python scripts/mamba_paths.py --config mamba-2.8b --contexts 512 --compiled   # torch.compile only

The compiled path runs in child processes with a time limit (compilation of 64 layers can take
minutes or fail): once with mamba-ssm's kernels importable (transformers then calls them; each is a
graph break) and once without (pure PyTorch, which Inductor can fuse whole).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

from comparer.bench.measure import random_prompt_ids
from comparer.settings import GenerationSettings


INITIALIZER_RANGE = 0.02


def random_model(config_name: str):
    """Random weights drawn with std 0.02 instead of the config's 0.1: at 0.1 a random Mamba's activations
    overflow fp16 (inf logits), so the paths' tokens could not be compared. Speed does not change."""
    from scripts.tune_mamba_kernels import random_model as seeded_random_model

    return seeded_random_model(config_name, INITIALIZER_RANGE)


def decode_rate(run, new_tokens: int, repeats: int) -> tuple[float, list]:
    """tok/s from (time of 1 + new_tokens tokens - time of 1 token); ``run(n)`` generates n tokens and
    returns their ids. The first call of each length is a warm-up."""
    def timed(n):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        ids = run(n)
        torch.cuda.synchronize()
        return time.perf_counter() - t0, ids

    timed(1 + new_tokens), timed(1)
    longs, shorts, ids = [], [], None
    for _ in range(repeats):
        seconds, ids = timed(1 + new_tokens)
        longs.append(seconds)
        shorts.append(timed(1)[0])
    return new_tokens / (statistics.median(longs) - statistics.median(shorts)), ids


def mamba_ssm_model(hf_model):
    """mamba-ssm's MambaLMHeadModel at the same config, holding the Hugging Face model's weights."""
    from mamba_ssm.models.config_mamba import MambaConfig
    from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel

    cfg = hf_model.config
    config = MambaConfig(d_model=cfg.hidden_size, n_layer=cfg.num_hidden_layers, vocab_size=cfg.vocab_size,
                         ssm_cfg={"layer": "Mamba1", "d_state": cfg.state_size, "d_conv": cfg.conv_kernel,
                                  "expand": cfg.expand, "dt_rank": cfg.time_step_rank},
                         rms_norm=True, residual_in_fp32=cfg.residual_in_fp32, fused_add_norm=True,
                         pad_vocab_size_multiple=1, tie_embeddings=cfg.tie_word_embeddings)
    model = MambaLMHeadModel(config, device="cuda", dtype=torch.float16).eval()
    state = {k.replace("backbone.embeddings.", "backbone.embedding."): v for k, v in hf_model.state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if m != "lm_head.weight" or not cfg.tie_word_embeddings]:
        raise RuntimeError(f"weights do not map: missing {missing}, unexpected {unexpected}")
    return model


def paths(config: str, contexts: list[int], new_tokens: int, repeats: int) -> None:
    from comparer.engines.mamba_fast import MambaFastEngine
    from comparer.engines.mamba_ops import KernelOps

    hf = random_model(config)
    ssm = mamba_ssm_model(hf)
    ours = MambaFastEngine(hf, None, KernelOps(), cuda_graph=True)
    print(f"{config}: comparer graph captured at load in {ours.capture_s:.2f} s", flush=True)
    for context in contexts:
        prompt = random_prompt_ids(hf.config.vocab_size, context)
        ids = torch.tensor([prompt], device="cuda")

        def run_ssm(n):
            return ssm.generate(ids, max_length=context + n, cg=True)[0, context:].tolist()

        def run_ours(n):
            return ours.generate(prompt, GenerationSettings(max_new_tokens=n, fixed_length=True)).token_ids

        def run_hf(n):
            out = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                              min_new_tokens=n, pad_token_id=0)
            return out[0, context:].tolist()

        with torch.inference_mode():
            want = ssm(ids, num_last_tokens=1).logits[0, -1, :hf.config.vocab_size].float()
            got = ours.prefill(prompt)[0].float()
            print(f"{config} @ {context}: logits finite: mamba-ssm {bool(torch.isfinite(want).all())}, "
                  f"comparer {bool(torch.isfinite(got).all())}", flush=True)
            print(f"{config} @ {context}: prompt logits, comparer vs mamba-ssm (fp16 both): relative L2 "
                  f"{((got - want).norm() / want.norm()).item():.2e}, top-1 equal {bool(got.argmax() == want.argmax())}, "
                  f"top-2 margin of mamba-ssm's {(want.topk(2).values[0] - want.topk(2).values[1]).item():.3g}",
                  flush=True)
            ssm_rate, ssm_ids = decode_rate(run_ssm, new_tokens, repeats)
            our_rate, our_ids = decode_rate(run_ours, new_tokens, repeats)
            same = next((i for i, (a, b) in enumerate(zip(ssm_ids, our_ids)) if a != b), len(our_ids))
            print(f"{config} @ {context}: mamba-ssm MambaLMHeadModel generate(cg=True): {ssm_rate:.1f} tok/s", flush=True)
            print(f"{config} @ {context}: comparer fast engine: {our_rate:.1f} tok/s "
                  f"({our_rate / ssm_rate:.2f}x mamba-ssm); greedy fp16 tokens equal for the first {same} of "
                  f"{len(our_ids)}", flush=True)
            if context == contexts[0]:
                hf_rate, _ = decode_rate(run_hf, 16, 1)
                print(f"{config} @ {context}: transformers eager generate: {hf_rate:.1f} tok/s (16 tokens)", flush=True)


COMPILED = """
import sys, time, torch
sys.path.insert(0, {root!r})
from scripts.mamba_paths import random_model, decode_rate
from comparer.bench.measure import random_prompt_ids
model = random_model({config!r})
prompt = torch.tensor([random_prompt_ids(model.config.vocab_size, {context})], device="cuda")
step = torch.compile(model, mode={mode!r})

def run(n):
    with torch.inference_mode():
        out = model(prompt, use_cache=True)  # prefill eager (one call per prompt)
        cache, token = out.cache_params, out.logits[:, -1].argmax(-1, keepdim=True)
        tokens = [token]  # kept on the GPU, as mamba-ssm's loop does: no host read per token
        for _ in range(n - 1):
            token = step(token, cache_params=cache, use_cache=True).logits[:, -1].argmax(-1, keepdim=True)
            tokens.append(token)
        return torch.cat(tokens, 1)[0].tolist()

t0 = time.perf_counter()
run(4)
print(f"compiled in {{time.perf_counter() - t0:.1f}} s", flush=True)
rate, _ = decode_rate(run, {new_tokens}, 3)
print(f"RATE {{rate:.1f}}", flush=True)
"""


def compiled(config: str, context: int, new_tokens: int, limit_s: int, modes: list[str]) -> None:
    """transformers' MambaForCausalLM decode step under torch.compile, with and without mamba-ssm."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for kernels in (False, True):
        for mode in modes:
            env = dict(os.environ)
            if not kernels:  # the kit's directory off the path: transformers takes its PyTorch path
                env["PYTHONPATH"] = os.pathsep.join(p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                                    if not os.path.isdir(os.path.join(p, "mamba_ssm")))
            code = COMPILED.format(root=root, config=config, context=context, mode=mode, new_tokens=new_tokens)
            label = f"{config} @ {context}: transformers + torch.compile({mode}), mamba-ssm kernels {kernels}"
            try:
                done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                      timeout=limit_s)
            except subprocess.TimeoutExpired:
                print(f"{label}: not done within {limit_s} s", flush=True)
                continue
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith(("RATE", "compiled"))]
            if done.returncode == 0 and lines:
                print(f"{label}: {lines[-1].split()[1]} tok/s ({lines[0]})", flush=True)
            else:
                print(f"{label}: failed: {done.stderr.strip().splitlines()[-1:]} ", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="mamba-2.8b")
    parser.add_argument("--contexts", default="512,8192,32768")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compiled", action="store_true", help="only transformers + torch.compile")
    parser.add_argument("--limit-s", type=int, default=240, help="per compiled variant")
    parser.add_argument("--modes", default="reduce-overhead", help="torch.compile modes, comma-separated")
    args = parser.parse_args()
    contexts = [int(c) for c in args.contexts.split(",")]
    if args.compiled:
        compiled(args.config, contexts[0], args.new_tokens, args.limit_s, args.modes.split(","))
    else:
        paths(args.config, contexts, args.new_tokens, args.repeats)


if __name__ == "__main__":
    main()
