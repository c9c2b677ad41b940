"""Train the demo pair that ships in assets/models: a Mamba and a Llama-style Transformer of the
same size, on the same public-domain books (assets/demo), with the same tokenizer, batches and
token budget. One GPU; the Mamba side uses the mamba-ssm kernels through transformers.

    python scripts/train_demo_pair.py --out assets/models            # on the GPU (minutes)
    python scripts/train_demo_pair.py --out /tmp/m --tokens 20000 --device cpu   # smoke run

Held-out text: per book, the last 2 % of paragraphs is the test split and the 2 % before it the
validation split (used only to keep the best checkpoint). Perplexity is per token of the shared
tokenizer, so the two numbers compare directly.
"""

from __future__ import annotations

import argparse
import json
import lzma
import math
import time
from pathlib import Path

import torch

from comparer.models.tokenizers import build_tokenizer

CORPUS = Path("assets/demo/corpus.txt.xz")
VOCAB_SIZE = 4096
SPECIAL = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
MAIA = "Maia gets ready for her next adventure. She finds a toy boat and"


def model_configs(vocab_size: int) -> dict:
    """~6.7M parameters each (embeddings tied): 8 Mamba blocks vs 4 Transformer blocks at width 320."""
    from transformers import LlamaConfig, MambaConfig

    mamba = MambaConfig(vocab_size=vocab_size, hidden_size=320, num_hidden_layers=8, state_size=16, expand=2,
                        conv_kernel=4, tie_word_embeddings=True, **SPECIAL)
    llama = LlamaConfig(vocab_size=vocab_size, hidden_size=320, num_hidden_layers=4, num_attention_heads=5,
                        num_key_value_heads=5, intermediate_size=960, max_position_embeddings=2048,
                        rope_theta=10000.0, tie_word_embeddings=True, **SPECIAL)
    return {"demo-mamba": mamba, "demo-llama": llama}


def split_books(text: str) -> dict[str, list[str]]:
    """Per book: paragraphs to train / val / test (last 2 % test, the 2 % before it val)."""
    splits = {"train": [], "val": [], "test": []}
    for block in text.split("\n\n=== "):
        paras = block.split("\n")[1:]
        n_held = max(1, len(paras) // 50)
        splits["train"].append("\n".join(paras[:-2 * n_held]))
        splits["val"].append("\n".join(paras[-2 * n_held:-n_held]))
        splits["test"].append("\n".join(paras[-n_held:]))
    return splits


def encode(tokenizer, books: list[str]) -> torch.Tensor:
    ids = []
    for book in books:
        ids += tokenizer(book)["input_ids"] + [SPECIAL["eos_token_id"]]
    return torch.tensor(ids, dtype=torch.long)


def batches(ids: torch.Tensor, seq: int, batch: int, steps: int, seed: int):
    """The same random windows, in the same order, for both models."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - seq - 1, (batch,), generator=gen)
        yield torch.stack([ids[s:s + seq + 1] for s in starts.tolist()])


@torch.no_grad()
def perplexity(model, ids: torch.Tensor, seq: int, device: str) -> float:
    """exp(mean next-token loss) over consecutive windows covering the split."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, seq):
        window = ids[start:start + seq + 1].to(device)[None]
        if window.shape[1] < 2:
            break
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            logits = model(window[:, :-1]).logits.float()
        total += torch.nn.functional.cross_entropy(logits[0], window[0, 1:], reduction="sum").item()
        count += window.shape[1] - 1
    model.train()
    return math.exp(total / count)


def lr_at(step: int, steps: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))))


def train_one(name: str, config, data: dict, args, peak_lr: float) -> tuple:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to(args.device).train()
    params = sum(p.numel() for p in model.parameters())
    steps = max(1, args.tokens // (args.batch * args.seq))
    opt = torch.optim.AdamW(model.parameters(), lr=peak_lr, betas=(0.9, 0.95), weight_decay=0.1)
    best = {"val_ppl": float("inf")}
    t0 = time.perf_counter()
    for step, batch in enumerate(batches(data["train"], args.seq, args.batch, steps, seed=1)):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr)
        batch = batch.to(args.device)
        with torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16,
                            enabled=args.device.startswith("cuda")):
            loss = _loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % args.eval_every == 0 or step + 1 == steps:
            val = perplexity(model, data["val"], args.seq, args.device)
            print(f"{name} step {step + 1}/{steps} loss {loss.item():.3f} val ppl {val:.2f} "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            if val < best["val_ppl"]:
                best = {"val_ppl": val, "step": step + 1,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        if time.perf_counter() - t0 > args.max_minutes * 60:
            print(f"{name}: stopped at the {args.max_minutes}-minute limit after {step + 1} steps", flush=True)
            steps = step + 1
            break
    train_s = time.perf_counter() - t0
    model.load_state_dict(best.pop("state"))
    stats = {"parameters": params, "steps": steps, "tokens_seen": steps * args.batch * args.seq,
             "train_s": round(train_s, 1), "best_step": best["step"], "val_ppl": round(best["val_ppl"], 3),
             "test_ppl": round(perplexity(model, data["test"], args.seq, args.device), 3)}
    return model, stats


def sweep_lr(name: str, config, data: dict, args) -> tuple:
    """The same learning-rate sweep for both architectures, so neither wins by a better-tuned recipe."""
    runs = []
    for lr in (float(x) for x in args.lrs.split(",")):
        model, stats = train_one(name, config, data, args, lr)
        runs.append((stats["val_ppl"], lr, model, stats))
    _, lr, model, stats = min(runs, key=lambda run: run[0])
    stats.update(peak_lr=lr, sweep={str(r[1]): r[0] for r in runs}, train_s_all_runs=round(
        sum(r[3]["train_s"] for r in runs), 1))
    return model, stats


def _loss(model, batch):
    logits = model(batch[:, :-1]).logits.float()  # (batch, seq, vocab)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def continuation(model, tokenizer, device: str, n: int = 60) -> str:
    ids = torch.tensor([tokenizer(MAIA)["input_ids"]], device=device)
    model.eval()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                             repetition_penalty=1.2, pad_token_id=0)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def save(name: str, model, tokenizer, stats: dict, sample: str, args, out_dir: Path) -> None:
    folder = out_dir / name
    model.half().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    stats = {**stats, "maia_continuation_greedy": sample, "data": "assets/demo/SOURCES.md",
             "batch": args.batch, "seq_len": args.seq,
             "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device}
    (folder / "training.json").write_text(json.dumps(stats, indent=1))
    (folder / "README.md").write_text(model_card(name, model, stats))


def model_card(name: str, model, stats: dict) -> str:
    kind = "Mamba (selective state-space)" if model.config.model_type == "mamba" else "Llama-style Transformer"
    return (f"# {name}\n\n{kind}, {stats['parameters'] / 1e6:.2f}M parameters ({model.config.num_hidden_layers} "
            f"layers, width {model.config.hidden_size}), trained from scratch by comparer's "
            f"scripts/train_demo_pair.py on {stats['device']} in {stats['train_s']:.0f} s "
            f"({stats['tokens_seen'] / 1e6:.1f}M tokens, batch {stats['batch']} x {stats['seq_len']}, peak learning "
            f"rate {stats['peak_lr']:g}, the best of a sweep {stats['sweep']} by validation perplexity; "
            f"{stats['train_s_all_runs']:.0f} s for the whole sweep).\n\n"
            "Data: eleven public-domain Project Gutenberg books (about 1.04M words; see "
            "assets/demo/SOURCES.md). Byte-level BPE tokenizer of 4,096 tokens shared with its twin.\n\n"
            f"Held-out test perplexity (per token, last 2 % of each book): **{stats['test_ppl']:.2f}** "
            f"(validation {stats['val_ppl']:.2f}, best of step {stats['best_step']}).\n\n"
            "A toy for demonstrating the side-by-side comparison offline: small and trained for seconds, "
            "it writes locally plausible 19th-century prose and little sense. Stored in fp16.\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("assets/models"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tokens", type=int, default=15_000_000, help="training tokens per run (same for both)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--lrs", default="1e-3,2e-3,3e-3",
                        help="peak learning rates tried for each model; the best validation perplexity is kept")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--max-minutes", type=float, default=9.0)
    args = parser.parse_args()
    splits = split_books(lzma.decompress(CORPUS.read_bytes()).decode())
    tokenizer = build_tokenizer(splits["train"], VOCAB_SIZE)
    data = {k: encode(tokenizer, v) for k, v in splits.items()}
    print({k: len(v) for k, v in data.items()}, "tokens per split", flush=True)
    for name, config in model_configs(len(tokenizer)).items():
        model, stats = sweep_lr(name, config, data, args)
        sample = continuation(model, tokenizer, args.device)
        print(json.dumps({name: stats, "maia": sample}), flush=True)
        save(name, model, tokenizer, stats, sample, args, args.out)


if __name__ == "__main__":
    main()
