"""The benchmark record: one JSON schema, written by the benchmark and read by the plots.

Every figure carries how it was made: device, dtype, kernel path, random or trained weights,
warm-up excluded (and its time reported), each model measured alone.
"""

from __future__ import annotations

import json
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

# 2: each card carries the engine's structured ``path`` (models/arch.KernelPath) beside its text.
# 3: cards count what the bounds need (layer weights, head, decode-read parameters, attention width);
#    the environment holds the TTFT bound's rate and where it came from, the git commit and the pins;
#    the method says what was done on that device. scripts/migrate_records.py brought older ones over.
# 4: every point's model_peak_bytes counts only that model, and memory_counts says what each memory
#    figure counts on that device; runs keep the model's resident and weight bytes.
SCHEMA_VERSION = 4


@dataclass
class Summary:
    """Median with the 10th and 90th percentiles over repeats (optimum-benchmark's from_values)."""

    median: float
    p10: float
    p90: float
    values: list[float]

    @classmethod
    def from_values(cls, values: list[float]) -> "Summary":
        ordered = sorted(values)
        return cls(statistics.median(ordered), _percentile(ordered, 0.10), _percentile(ordered, 0.90), list(values))


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks."""
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Point:
    """One model at one context length. ``status`` is 'ok', 'oom' or 'error'."""

    context_tokens: int
    new_tokens: int
    status: str = "ok"
    ttft_s: Summary | None = None
    decode_tok_per_s: Summary | None = None
    peak_allocated_bytes: int | None = None
    peak_reserved_bytes: int | None = None
    peak_rss_bytes: int | None = None
    baseline_allocated_bytes: int | None = None
    error: str | None = None
    # this model's own memory (the figure the plots and tables show): what it holds between generations
    # plus the peak growth during the point, so another loaded model is not counted (memory_counts)
    model_peak_bytes: int | None = None
    # energy from the device's counter (environment.energy_source), the device running this model alone;
    # None: not measured. Per prompt token: 1-token runs; per generated token: full runs less one 1-token
    # run; each counted over >= 1 s of repeated runs after the timed ones (measure.ENERGY_SPAN_S).
    prefill_j_per_token: float | None = None
    decode_j_per_token: float | None = None


@dataclass
class ModelRun:
    model_id: str
    card: dict
    load_s: float
    warmup_s: float
    points: list[Point] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resident_bytes: int | None = None  # CUDA: allocated while it loaded and kept (LoadedModel.resident_bytes)
    weight_bytes: int | None = None  # the tensors it computes with (Engine.weight_bytes), dtype included


@dataclass
class Environment:
    device_type: str
    device_name: str
    torch_version: str
    transformers_version: str
    python_version: str
    cuda_version: str | None
    mamba_ssm_version: str | None
    causal_conv1d_version: str | None
    measured_bandwidth_bytes_per_s: float | None = None
    measured_matmul_flops_per_s: float | None = None
    cpu_threads: int | None = None
    # the rate the TTFT bound divides by: the datasheet peak where the device is known, else the
    # measured rate (matmul_rate_source says which)
    peak_matmul_flops_per_s: float | None = None
    matmul_rate_source: str = ""
    git_commit: str = "not recorded"
    # the repository's pins (requirements.txt) where this run's versions differ from them
    pinned_versions: dict = field(default_factory=dict)
    energy_source: str = "not measured (records before energy was measured)"


@dataclass
class BenchRecord:
    preset: str
    weights: str  # "random (exact configs)" or "trained"
    environment: Environment
    settings: dict
    models: list[ModelRun] = field(default_factory=list)
    method: str = ""  # what was done, true for the device (method_for)
    memory_counts: dict = field(default_factory=dict)  # field -> what it counts there (memory_counts)
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(self.to_json())

    @classmethod
    def from_dict(cls, raw: dict) -> "BenchRecord":
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"Benchmark record schema {raw.get('schema_version')} is not {SCHEMA_VERSION}; "
                             f"re-run the benchmark to produce a current record.")
        models = [ModelRun(**{**m, "points": [_point(p) for p in m["points"]]}) for m in raw["models"]]
        return cls(**{**raw, "environment": Environment(**raw["environment"]), "models": models})

    @classmethod
    def load(cls, path: str | Path) -> "BenchRecord":
        return cls.from_dict(json.loads(Path(path).read_text()))


def method_for(device_type: str, warmup: str = "one generation at the measured length and new tokens") -> str:
    """How the figures were made, said for the device they were made on."""
    if device_type == "remote":
        return (f"remote, timed at the client: each model on its own server, measured in turn; warm-up excluded "
                f"per point ({warmup}); token times when each streamed chunk reached the client, network "
                "included; TTFT = generate 1 token; decode tok/s = (n-1)/(t_last - t_first) with min_tokens "
                "or ignore_eos where the server takes them; median, p10, p90 over repeats; memory not seen")
    timers = ("torch.cuda.synchronize before each timer starts; token times after .tolist(), which waits "
              "for the device" if device_type == "cuda" else "CPU: timers on the host clock, no device to wait for")
    return (f"each model measured alone; warm-up excluded per point ({warmup}); {timers}; TTFT = generate 1 "
            "token; decode tok/s = (n-1)/(t_last - t_first) of a fixed-length generation (min = max new "
            "tokens); median, p10, p90 over repeats")


def memory_counts(device_type: str) -> dict:
    """What each memory field of a point counts on this device, stored in the record beside them."""
    if device_type == "remote":
        return {"model_peak_bytes": "this model only: not measured (its memory is on the server)"}
    if device_type == "cuda":
        return {"model_peak_bytes": "this model only: the bytes torch allocated while it loaded and kept "
                                    "(weights, derived tensors, state or preallocated KV cache, CUDA-graph "
                                    "pools) plus the peak growth of allocated bytes during the point",
                "peak_allocated_bytes": "device-wide: every tensor torch had allocated on the device",
                "peak_reserved_bytes": "device-wide: what torch's caching allocator held from the driver",
                "baseline_allocated_bytes": "device-wide allocated bytes before the point"}
    return {"model_peak_bytes": "this model only: its tensors (weights, derived tensors, state or cache) plus "
                                "the larger of the growth of the process's resident set during the point and "
                                "what its cache must hold at the last token by the config's formula (a lower "
                                "bound: memory the process had freed and reused is not seen; activations "
                                "beyond that growth are not counted)",
            "peak_rss_bytes": "the whole process's resident set (Python, torch, every loaded model)"}


def _point(raw: dict) -> Point:
    summaries = {k: Summary(**raw[k]) if raw.get(k) else None for k in ("ttft_s", "decode_tok_per_s")}
    return Point(**{**raw, **summaries})


def python_version() -> str:
    return platform.python_version()


CSV_COLUMNS = ("preset", "device", "dtype", "weights", "model_id", "family", "engine", "kernel_path", "context_tokens",
               "new_tokens", "status", "ttft_s_median", "ttft_s_p10", "ttft_s_p90", "decode_tok_per_s_median",
               "decode_tok_per_s_p10", "decode_tok_per_s_p90", "peak_allocated_bytes", "peak_reserved_bytes",
               "peak_rss_bytes", "model_peak_bytes", "prefill_j_per_token", "decode_j_per_token")


def to_csv(record: BenchRecord | list[BenchRecord]) -> str:
    """One row per (model, context) point, for spreadsheets."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for record, run in ((r, m) for r in _as_list(record) for m in r.models):
        for p in run.points:
            writer.writerow([record.preset, record.environment.device_name, record.settings.get("dtype"),
                             record.weights, run.model_id, run.card["family"], run.card["path"]["engine"],
                             run.card["kernel_path"],
                             p.context_tokens, p.new_tokens, p.status, *_summary_cells(p.ttft_s),
                             *_summary_cells(p.decode_tok_per_s), p.peak_allocated_bytes,
                             p.peak_reserved_bytes, p.peak_rss_bytes, p.model_peak_bytes,
                             p.prefill_j_per_token, p.decode_j_per_token])
    return out.getvalue()


def _as_list(record) -> list[BenchRecord]:
    return record if isinstance(record, list) else [record]


def _summary_cells(summary: Summary | None) -> list:
    return [summary.median, summary.p10, summary.p90] if summary else ["", "", ""]
