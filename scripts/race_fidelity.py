"""Does each pane show what its model does alone? Runs N comparisons through the app's pair code
(``comparer.pair.PairRun``, consumed like the UI consumes it) in each race mode, and, in the same
run, each model alone through ``comparer.bench.measure.measure_point`` at the same prompt length, then
writes a record (JSON) and prints the table of pane / alone ratios.

    python scripts/race_fidelity.py --preset offline --device cpu --out assets/benchmarks/records/race/cpu-race-fidelity.json
    python3 scripts/race_fidelity.py --preset paper --random-weights --init-std 0.02 --device cuda \\
        --out $OUT/h200-race-fidelity.json

Targets (issue "A fair race"): in the default mode each pane's TTFT and decode tok/s within 10 % of the
same model alone (medians of ``--repeats``), and the whole comparison within 1.15x the wall time of
"both at once" (``shared``), which does the same device work.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from comparer.bench import measure  # noqa: E402
from comparer.pair import PairRun, prompt_ids_for  # noqa: E402
from comparer.pool import ModelPool  # noqa: E402
from comparer.settings import GenerationSettings  # noqa: E402

BASE_TEXT = Path(__file__).resolve().parent.parent / "prompts" / "long_lighthouse.txt"


def prompt_of(tokenizer, tokens: int) -> str:
    """Text that the pair's tokenizer makes into ~``tokens`` tokens (the lighthouse prompt repeated)."""
    text = BASE_TEXT.read_text()
    while len(tokenizer(text)["input_ids"]) < tokens:
        text += "\n\n" + text
    low, high = 1, len(text)
    while low < high:  # the shortest prefix with at least ``tokens`` tokens
        mid = (low + high) // 2
        low, high = (mid + 1, high) if len(tokenizer(text[:mid])["input_ids"]) < tokens else (low, mid)
    return text[:low]


def race_once(models, prompt: str, settings: GenerationSettings, mode: str) -> dict:
    """One comparison as the UI runs it (every snapshot's text decoded); the final pane figures."""
    t0_s = time.perf_counter()
    run = PairRun(models, prompt, settings, mode=mode)
    for panes in run:
        pass
    wall_s = time.perf_counter() - t0_s
    return {"wall_s": wall_s, "mode": run.mode, "order": list(run.order),
            **{side: {"ttft_s": p.stats.ttft_s, "decode_tok_per_s": p.stats.decode_tok_per_s,
                      "tokens": p.stats.tokens, "prompt_tokens": p.prompt_tokens, "status": p.status,
                      "label": p.label, "memory_bytes": p.stats.memory_bytes, "memory_kind": p.stats.memory_kind}
               for side, p in panes.items()}}


def alone(model, prompt: str, new_tokens: int, repeats: int) -> dict:
    """The same model, the same (trimmed) prompt ids, measured alone by the benchmark's function."""
    ids = prompt_ids_for(model, prompt, new_tokens)[0]
    point = measure.measure_point(model.engine, ids, new_tokens, repeats)
    return {"prompt_tokens": len(ids), "ttft_s": point.ttft_s.median, "decode_tok_per_s": point.decode_tok_per_s.median}


def _median_alone(runs: list[dict]) -> dict:
    ttfts, decodes = [r["ttft_s"] for r in runs], [r["decode_tok_per_s"] for r in runs]
    return {"prompt_tokens": runs[0]["prompt_tokens"], "ttft_s": statistics.median(ttfts),
            "decode_tok_per_s": statistics.median(decodes), "ttft_s_values": ttfts, "decode_values": decodes}


def median_of(races: list[dict], side: str, key: str) -> float:
    return statistics.median(r[side][key] for r in races)


def summarise(models, prompt_tokens: int, races: dict, alone_figs: dict) -> list[dict]:
    rows = []
    for mode, runs in races.items():
        for side, model in models.items():
            ttft, decode = median_of(runs, side, "ttft_s"), median_of(runs, side, "decode_tok_per_s")
            rows.append({"prompt_tokens": prompt_tokens, "mode": runs[0]["mode"], "requested": mode, "side": side, "model_id": model.spec.model_id,
                         "pane_ttft_s": ttft, "alone_ttft_s": alone_figs[side]["ttft_s"],
                         "ttft_ratio": ttft / alone_figs[side]["ttft_s"],
                         "pane_decode_tok_per_s": decode, "alone_decode_tok_per_s": alone_figs[side]["decode_tok_per_s"],
                         "decode_ratio": decode / alone_figs[side]["decode_tok_per_s"],
                         "wall_s": statistics.median(r["wall_s"] for r in runs), "label": runs[0][side]["label"],
                         "tokens": runs[0][side]["tokens"]})
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="offline")
    parser.add_argument("--device", default=None)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--init-std", type=float, default=None, help="std of random weights (0.02 keeps fp16 finite)")
    parser.add_argument("--prompts", default="500,3000", help="prompt lengths in tokens")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="auto,shared")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    pool = ModelPool(args.device, args.random_weights, engine=args.engine, init_std=args.init_std)
    models = pool.pair(args.preset)
    settings = GenerationSettings(max_new_tokens=args.new_tokens, fixed_length=True)
    record = {"script": "scripts/race_fidelity.py", "argv": sys.argv[1:], "commit": _commit(),
              "environment": asdict(measure.environment(models["left"].card.device)),
              "weights": _weights_note(models["left"].card) if args.random_weights else "trained",
              "cards": {side: m.card.to_dict() for side, m in models.items()}, "rows": [], "races": []}
    for tokens in (int(t) for t in args.prompts.split(",")):
        prompt = prompt_of(models["left"].tokenizer, tokens)
        race_once(models, prompt, settings, "auto")  # warm-up at this length, excluded
        races, alone_runs = {mode: [] for mode in args.modes.split(",")}, {side: [] for side in models}
        for _ in range(args.repeats):  # interleaved, so that a drifting machine drifts for every variant alike
            for mode in races:
                races[mode].append(race_once(models, prompt, settings, mode))
            for side, model in models.items():
                alone_runs[side].append(alone(model, prompt, args.new_tokens, 1))
        alone_figs = {side: _median_alone(runs) for side, runs in alone_runs.items()}
        record["rows"] += summarise(models, tokens, races, alone_figs)
        record["races"].append({"prompt_tokens": tokens, "alone": alone_figs, "races": races})
        _print_rows([r for r in record["rows"] if r["prompt_tokens"] == tokens])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")


def _print_rows(rows: list[dict]) -> None:
    walls = {r["requested"]: r["wall_s"] for r in rows}
    for r in rows:
        print(f"{r['prompt_tokens']:>6} {r['mode']:>6} {r['model_id'][:28]:>28}  TTFT {r['pane_ttft_s']:.4f} s vs alone "
              f"{r['alone_ttft_s']:.4f} ({r['ttft_ratio']:.3f}x)  decode {r['pane_decode_tok_per_s']:8.1f} vs "
              f"{r['alone_decode_tok_per_s']:8.1f} ({r['decode_ratio']:.3f}x)  wall {r['wall_s']:.2f} s")
    if {"auto", "shared"} <= set(walls):
        print(f"       wall time fair / both at once: {walls['auto'] / walls['shared']:.3f}x")
        floor_s = sum(r["alone_ttft_s"] + (r["tokens"] - 1) / r["alone_decode_tok_per_s"] for r in rows if r["requested"] == "shared")
        print(f"       the two runs alone, back to back (floor of any schedule that never overlaps them): "
              f"{floor_s:.2f} s = {floor_s / walls['shared']:.3f}x both at once")


def _weights_note(card) -> str:
    return "random (untrained): " + next((n for n in card.notes if n.startswith("random weights")), "config's std")


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()
