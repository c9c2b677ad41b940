"""The larger Transformer over several GPUs: random weights at the Llama-3-70B config (141 GB in fp16,
more than one H200 holds with room for a cache), laid out by accelerate over the visible GPUs the way
from_pretrained(device_map="auto") lays out a checkpoint, run by comparer's fast Transformer engine
(eager decode: a graph cannot span GPUs). Writes a benchmark record (the Scaling tab reads it) whose
memory is the sum over the GPUs, with each GPU's peak in the model's notes.

    python scripts/multi_gpu_split.py --config llama-3-70b --contexts 512,8192 --out split.json
"""

from __future__ import annotations

import argparse
import collections

import torch

from comparer.bench.run import new_record, summary_table
from comparer.engines.loaded import load_model
from comparer.models.presets import ModelSpec
from comparer.bench.measure import sweep
from comparer.bench.records import Point


def layers_per_device(device_map: dict) -> dict[str, int]:
    """Decoder layers per device in accelerate's map (its values are GPU indices or 'cpu')."""
    counts = collections.Counter(str(where) for name, where in device_map.items() if ".layers." in name)
    return dict(sorted(counts.items()))


def _gpus() -> range:
    return range(torch.cuda.device_count()) if torch.cuda.is_available() else range(0)


class PerGpuMemory:
    """After each point: every GPU's peak into the notes, their sums into the point (allocated and
    reserved alike: the benchmark reads only the engine's first GPU, so reserved < allocated could
    result); the baseline is what every GPU held before the point (read at the reset that preceded
    it), not after. Then all peaks are reset and the next point's baseline read."""

    def __init__(self, notes: list[str]):
        self.notes = notes
        self._reset()

    def _reset(self) -> None:
        for i in _gpus():
            torch.cuda.reset_peak_memory_stats(i)
        self.baseline_b = sum(torch.cuda.memory_allocated(i) for i in _gpus())

    def __call__(self, point: Point) -> None:
        peaks = {i: torch.cuda.max_memory_allocated(i) for i in _gpus()}
        if peaks and point.status == "ok":
            point.peak_allocated_bytes = sum(peaks.values())
            point.peak_reserved_bytes = sum(torch.cuda.max_memory_reserved(i) for i in _gpus())
            point.baseline_allocated_bytes = self.baseline_b
            self.notes.append(f"{point.context_tokens} tokens: peak allocated per GPU " + ", ".join(
                f"cuda:{i} {b / 2**30:.2f} GiB" for i, b in peaks.items()) + " (the point's allocated, reserved "
                "and baseline figures are sums over the GPUs; the baseline is read before the point)")
        self._reset()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="llama-3-70b")
    parser.add_argument("--contexts", default="512,8192")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of this script with a small config")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    contexts = [int(c) for c in args.contexts.split(",")]
    dtype = torch.float16 if args.device == "cuda" else torch.float32
    record = new_record(f"split:{args.config}", "random (exact configs)", args.device, contexts, args.new_tokens,
                        args.repeats)
    loaded = load_model(ModelSpec(args.config, config_name=args.config, random_weights=True), args.device, dtype,
                        engine="fast", max_context_tokens=max(contexts) + args.new_tokens + 64)
    device_map = getattr(loaded.engine.model, "hf_device_map", None) or {}
    notes = [f"decoder layers per device: {layers_per_device(device_map) or 'all on ' + args.device}"]
    notes += [f"weights on cuda:{i}: {torch.cuda.memory_allocated(i) / 2**30:.2f} GiB" for i in _gpus()]
    run = sweep(loaded, contexts, args.new_tokens, args.repeats, PerGpuMemory(notes))
    run.notes.extend(notes)
    record.models.append(run)
    with open(args.out, "w") as f:
        f.write(record.to_json())
    print(summary_table(record))
    print("\n".join(run.notes))


if __name__ == "__main__":
    main()
