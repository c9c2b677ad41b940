"""One-off migrations of the committed benchmark records; each step runs once, kept so it can be read.

Schema 1 -> 2 (issue 20): the structured kernel path. Schema 2 -> 3 (issue 21): what the bounds need
and how a record was made. Details at each step.


Schema 1 stored a card's kernel path as text only; schema 2 stores the structured ``path`` that the
engine describes (models/arch.KernelPath) beside that text. The records here were written by nine
distinct wordings of the old code, so each is mapped by an explicit table, never parsed: an unknown
wording stops the migration. Load times (compile, capture) stay where v1 kept them, in the notes.

    python scripts/migrate_records.py            # rewrites assets/benchmarks/records/**.json in place
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comparer.models.arch import FAST, HF, HF_REFERENCE_SCAN, KernelPath  # noqa: E402
from comparer.paths import RECORDS_DIR  # noqa: E402

_MAMBA_DECODE = "Triton fused step with programmatic dependent launch, CUDA graph"
_CARRY = "chunks of 8192 tokens carrying the state, fused add+RMSNorm"


def _transformer(tokens: int, decode: str, graph: bool, devices: int = 1) -> KernelPath:
    return KernelPath(FAST, "Triton", f"SDPA causal into a preallocated KV cache of {tokens} tokens", decode,
                      cuda_graph=graph, devices=devices)


V1_PATHS = {
    "comparer fast Mamba: compiled C scan (CPU), chunked prefill (8192 tokens), eager decode":
        KernelPath(FAST, "compiled C scan (CPU)", "chunks of 8192 tokens carrying the state", "PyTorch step, eager"),
    "transformers generate, sdpa attention, eager decode":
        KernelPath(HF, "PyTorch", "sdpa attention", "sdpa attention, growing KV cache, eager"),
    "reference PyTorch (sequential scan, no fused kernels)":
        KernelPath(HF_REFERENCE_SCAN, "reference PyTorch, no fused kernels", "sequential scan",
                   "sequential step, eager"),
    "mamba-ssm + causal-conv1d CUDA kernels (via transformers)":
        KernelPath(HF, "mamba-ssm + causal-conv1d CUDA kernels, via transformers", "selective scan kernel",
                   "selective state update, eager"),
    "comparer fast Mamba: mamba-ssm + causal-conv1d kernels, fused add+RMSNorm, chunked prefill (8192 tokens), "
    "Triton fused decode step with programmatic dependent launch, CUDA-graph decode":
        KernelPath(FAST, "mamba-ssm + causal-conv1d kernels", _CARRY, _MAMBA_DECODE, cuda_graph=True),
    "comparer fast Mamba: Triton selective scan + causal conv (no mamba-ssm), fused add+RMSNorm, chunked prefill "
    "(8192 tokens), Triton fused decode step with programmatic dependent launch, CUDA-graph decode":
        KernelPath(FAST, "Triton selective scan + causal conv (no mamba-ssm)", _CARRY, _MAMBA_DECODE,
                   cuda_graph=True),
    "comparer fast Transformer: preallocated KV cache (131200 tokens), SDPA causal prefill, Triton split-KV "
    "attention, CUDA-graph decode (9 buckets up to 131200)":
        _transformer(131200, "Triton split-KV attention, CUDA graphs (9 buckets up to 131200)", True),
    "comparer fast Transformer: preallocated KV cache (32896 tokens), SDPA causal prefill, Triton split-KV "
    "attention, CUDA-graph decode (7 buckets up to 32896)":
        _transformer(32896, "Triton split-KV attention, CUDA graphs (7 buckets up to 32896)", True),
    "comparer fast Transformer: preallocated KV cache (2048 tokens), SDPA causal prefill, Triton split-KV "
    "attention, CUDA-graph decode (2 buckets up to 2048)":
        _transformer(2048, "Triton split-KV attention, CUDA graphs (2 buckets up to 2048)", True),
    "comparer fast Transformer: preallocated KV cache (8288 tokens), SDPA causal prefill, Triton split-KV "
    "attention, eager decode (layers on 2 GPUs: a CUDA graph cannot span them)":
        _transformer(8288, "Triton split-KV attention, eager (a CUDA graph cannot span 2 GPUs)", False, devices=2),
}


def migrated_card(card: dict) -> dict:
    if "path" in card:
        return card
    old = card["kernel_path"]
    if old not in V1_PATHS:
        raise SystemExit(f"unknown schema-1 kernel path, add it to V1_PATHS: {old!r}")
    path = V1_PATHS[old]
    return {**card, "path": asdict(path), "kernel_path": path.describe(), "kernel_path_v1": old}


def migrate(raw: dict) -> dict:
    if "models" in raw:  # a benchmark record (bench/records.py)
        if raw["schema_version"] == 1:
            raw = {**raw, "models": [{**m, "card": migrated_card(m["card"])} for m in raw["models"]]}
            raw = {**raw, "schema_version": 2}
        if raw["schema_version"] == 2:
            raw = to_schema_3(raw)
        if raw["schema_version"] == 3:
            raw = to_schema_4(raw)
        return raw
    return {**raw, "cards": {side: migrated_card(c) for side, c in raw["cards"].items()}}  # a race record


# ---- 2 -> 3 -----------------------------------------------------------------------------------
# The cards gain the parameter counts the bounds use, counted from each model built on the meta device
# from its bundled config (the same module from_pretrained builds, no weights). The environment gains
# the TTFT bound's rate: the datasheet peak for the H200's dtype, the stored measured rate on the CPU.
# Commit and pins were not recorded then: said so. The method string is rewritten for the device, with
# the warm-up these runs really had (4 new tokens at each point's prompt).
def _counts(model_id: str):
    import torch
    from transformers import AutoModelForCausalLM

    from comparer.models.arch import ArchShape, param_counts
    from comparer.models.loading import load_bundled_config
    from comparer.models.presets import load_presets

    names = {s.model_id: s.config_name for p in load_presets().values() for s in (p.left, p.right) if s.config_name}
    config = load_bundled_config(names.get(model_id, model_id))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return param_counts(model), ArchShape.from_config(config)


def _card_3(card: dict) -> dict:
    counts, shape = _counts(card["model_id"])
    if counts.total != card["n_params"]:
        raise SystemExit(f"{card['model_id']}: {counts.total} parameters from the config, {card['n_params']} stored")
    return {**card, "layer_weight_params": counts.layer_weights, "head_params": counts.head,
            "decode_read_params": counts.decode_read, "attn_width": shape.attn_width if card["family"] != "SSM" else 0}


def to_schema_3(raw: dict) -> dict:
    from comparer.bench.ceilings import matmul_peak
    from comparer.bench.records import method_for

    env = dict(raw["environment"])
    env["peak_matmul_flops_per_s"], env["matmul_rate_source"] = matmul_peak(
        env["device_name"], raw["settings"].get("dtype", "float16"), env["measured_matmul_flops_per_s"])
    if not env["matmul_rate_source"].startswith("datasheet"):
        env["matmul_rate_source"] = "measured on one 1024x1024 fp32 product (schema 2 and older)"
    env["git_commit"] = "not recorded (schema 2 and older)"
    env["pinned_versions"] = _pins_then(env)
    models = [_split_memory_fixed({**m, "card": _card_3(m["card"])}) for m in raw["models"]]
    method = method_for(env["device_type"], warmup="one generation of 4 new tokens at the measured prompt")
    return {**raw, "environment": env, "models": models, "method": method, "schema_version": 3}


def _split_memory_fixed(run: dict) -> dict:
    """The two-GPU record summed allocated bytes over both GPUs but took reserved from cuda:0 alone
    (67 GiB reserved beside 134 GiB allocated cannot be): that reserved figure is dropped, not guessed,
    and the notes say which figure is which."""
    if not any("peak allocated per GPU" in note for note in run["notes"]):
        return run
    points = [{**p, "peak_reserved_bytes": None} for p in run["points"]]
    note = ("schema-3 migration: peak reserved removed (this run read it from cuda:0 only, while allocated is "
            "the sum over both GPUs); baseline allocated is the sum over both GPUs read after each point "
            "(the weights and the preallocated cache, which stay)")
    return {**run, "points": points, "notes": [*run["notes"], note]}


def _pins_then(env: dict) -> dict:
    from comparer.bench.ceilings import differing_pins

    return differing_pins({"torch": env["torch_version"], "transformers": env["transformers_version"],
                           "python": env["python_version"]})


# ---- 3 -> 4 -----------------------------------------------------------------------------------
# Every memory figure counts only its model. On CUDA the stored device-wide figures are re-read per run:
# where the run's baseline minus its own weights is smaller than any other model's weights, that model
# was alone on the device and the device peak is its own; where an earlier run's model was still
# resident (the schema-3 pair record), that run's baseline (its resident bytes, constant over its points)
# is subtracted. Anything else stops the migration. CPU records held process RSS only: no figure of the
# model alone can be derived from them, so they are left without one (and were re-measured).
def to_schema_4(raw: dict) -> dict:
    from comparer.bench.records import memory_counts

    device_type = raw["environment"]["device_type"]
    models, earlier = [], []
    for run in raw["models"]:
        run = {**run, "resident_bytes": None, "weight_bytes": None}
        if device_type == "cuda":
            run = _own_cuda_peaks(run, earlier, raw["models"])
            earlier.append(run)
        else:
            run = {**run, "points": [{**p, "model_peak_bytes": None} for p in run["points"]]}
        models.append(run)
    return {**raw, "models": models, "memory_counts": memory_counts(device_type), "schema_version": 4}


def _param_bytes(run: dict) -> int:
    from comparer import analytic

    return run["card"]["n_params"] * analytic.dtype_bytes(run["card"]["dtype"])


def _own_cuda_peaks(run: dict, earlier: list[dict], runs: list[dict]) -> dict:
    others_b = [_param_bytes(r) for r in runs if r is not run and r["model_id"] != run["model_id"]]
    resident_before = sum(max(p["baseline_allocated_bytes"] or 0 for p in r["points"]) for r in earlier)
    points = []
    for p in run["points"]:
        if p["status"] != "ok":
            points.append(p)
            continue
        extra_b = p["baseline_allocated_bytes"] - _param_bytes(run)
        if not others_b or extra_b < min(others_b):
            own = p["peak_allocated_bytes"]  # alone on the device
        elif earlier and p["baseline_allocated_bytes"] - resident_before >= _param_bytes(run):
            own = p["peak_allocated_bytes"] - resident_before  # an earlier model still resident
        else:
            raise SystemExit(f"{run['model_id']} @ {p['context_tokens']}: cannot tell its own memory")
        points.append({**p, "model_peak_bytes": own})
    notes = run["notes"]
    if earlier and others_b and any(p.get("model_peak_bytes") for p in run["points"]):
        notes = [*notes, "schema-4 migration: model_peak_bytes is now the device peak minus the earlier "
                 f"model's resident bytes ({resident_before / 2**30:.2f} GiB, its baseline before its own "
                 "points), so it counts this model's CUDA-graph pools too (it counted its tensors only)"]
    return {**run, "points": points, "notes": notes}


def main() -> None:
    for path in sorted(RECORDS_DIR.rglob("*.json")):
        raw = json.loads(path.read_text())
        path.write_text(json.dumps(migrate(raw), indent=1))
        print("migrated", path.relative_to(ROOT))


if __name__ == "__main__":
    main()
