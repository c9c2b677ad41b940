"""The one measurement function, with the discipline of optimum-benchmark and vLLM bench latency.

Why it looks like this: decode at batch 1 is memory-bound and prefill compute-bound, so the two are
timed separately. TTFT is a 1-token generation (prefill + first sample). Decode tok/s comes from a
fixed-length generation ((n - 1) tokens over the span from the first to the last token), so an
early EOS cannot flatter it. A warm-up run per point is excluded (allocator growth, kernel
autotuning, lazy init). The device is synchronised before every timer starts, and the engine's
token timestamps are taken after ``.tolist()``, which waits for the device. Peak memory is reset
per point. Each point's ``model_peak_bytes`` counts only that model: what it holds between generations
(CUDA: the bytes torch allocated while it loaded and kept, graph pools included; CPU: its tensors) plus
the peak growth during the point above what the device held before it (CUDA: allocated bytes; CPU:
process RSS), so another loaded model and the rest of the process are not counted (records.memory_counts
says this in each record). An out-of-memory error is recorded and the sweep goes on.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
import time
from typing import Callable

import torch

from comparer import energy, memory
from comparer.bench import ceilings
from comparer.engines.base import Engine
from comparer.engines.loaded import LoadedModel
from comparer.bench.records import Environment, ModelRun, Point, Summary, python_version
from comparer.settings import GenerationSettings

WARMUP_NEW_TOKENS = 4


def random_prompt_ids(vocab_size: int, context_tokens: int, seed: int = 0) -> list[int]:
    """Token values do not change speed or memory; seeded for repeatability."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (context_tokens,), generator=generator).tolist()


def measure_point(engine: Engine, prompt_ids: list[int], new_tokens: int, repeats: int,
                  stop: threading.Event | None = None, own_before_b: int | None = None) -> Point | None:
    """TTFT and decode rate of one model at one context, alone on the device; None once ``stop`` is set
    (the generation in flight ends at its next token, the point is not kept). ``own_before_b``: what this
    model holds between generations (LoadedModel.own_bytes); by default the engine's own tensors."""
    context = len(prompt_ids)
    if memory.is_served(engine.device):
        return _measure_served(engine, prompt_ids, new_tokens, repeats, stop)
    if own_before_b is None:
        own_before_b = engine.own_tensor_bytes()
    try:
        _sync(engine.device)
        before_b = memory.current_bytes(engine.device)  # every loaded model's weights, the other's too
        memory.reset_peak(engine.device)
        ttfts, decodes = _timed_runs(engine, prompt_ids, new_tokens, repeats, stop)
        peak = memory.peak_bytes(engine.device)
        meter = energy.meter_for(engine.device)
        if meter is not None:  # after the timed runs, so counting never slows a timed one
            runs_j = [_energy_per_run(engine, prompt_ids, n, stop, meter) for n in (1, new_tokens)]
    except _Stopped:
        return None
    except torch.OutOfMemoryError as err:
        _recover(engine)
        return Point(context, new_tokens, status="oom", error=str(err).splitlines()[0][:300])
    peak_b = peak.get("allocated_bytes") or peak.get("rss_bytes")
    point = Point(context, new_tokens, "ok", Summary.from_values(ttfts), Summary.from_values(decodes),
                  peak.get("allocated_bytes"), peak.get("reserved_bytes"), peak.get("rss_bytes"),
                  before_b if memory.is_cuda(engine.device) else None,
                  model_peak_bytes=own_before_b + max(peak_b - before_b, _cache_floor(engine, context, new_tokens)))
    if meter is not None:
        point.prefill_j_per_token, point.decode_j_per_token = energy_per_token(*runs_j, context, new_tokens)
    return point


def _timed_runs(engine: Engine, prompt_ids: list[int], new_tokens: int, repeats: int,
                stop: threading.Event | None) -> tuple[list[float], list[float]]:
    """(TTFTs, decode rates) of ``repeats`` runs each, after a warm-up at the measured length (a shorter one
    left the first decode repeat the slowest: Pythia-6.9B eager on the H200, 16.9 then 58.6, 59.0 tok/s)."""
    _generate(engine, prompt_ids, new_tokens, stop)
    ttfts = [_generate(engine, prompt_ids, 1, stop).ttft_s for _ in range(repeats)]
    decodes = [_decode_rate(_generate(engine, prompt_ids, new_tokens, stop)) for _ in range(repeats)]
    return ttfts, decodes


ENERGY_SPAN_S = 1.0  # NVML's counter moves every few tens of ms: a 16 ms prefill alone read 0 J


def _energy_per_run(engine: Engine, prompt_ids: list[int], new_tokens: int, stop, meter) -> float:
    """Joules of one generation: as many as fill ENERGY_SPAN_S (at least two), counted together."""
    t0_s, e0_j, runs = time.perf_counter(), energy.read_synced(meter, engine.device), 0
    while runs < 2 or time.perf_counter() - t0_s < ENERGY_SPAN_S:
        _generate(engine, prompt_ids, new_tokens, stop)
        runs += 1
    return (energy.read_synced(meter, engine.device) - e0_j) / runs


def _cache_floor(engine: Engine, context: int, new_tokens: int) -> int:
    """On the CPU, what the model's cache must hold at its last token (the config's formula) when the engine
    keeps none of its own: memory the process freed and reused shows no RSS growth, so a Transformer's KV
    cache would be missing from its figure (the demo Llama read flat from 128 to 512 tokens)."""
    if memory.is_cuda(engine.device) or engine.cache_bytes() is not None:
        return 0
    return cache_formula_bytes(engine.card, context + new_tokens)


def cache_formula_bytes(card, tokens: int) -> int:
    return card.kv_bytes_per_token * tokens + card.ssm_state_bytes


def energy_per_token(ttft_run_j: float, decode_run_j: float, context: int,
                     new_tokens: int) -> tuple[float, float | None]:
    """(J per prompt token, J per generated token) from the energy of a 1-token run and of a full run:
    each full run also prefills the prompt, so one 1-token run is taken off before dividing by the tokens
    after the first."""
    per_generated = (decode_run_j - ttft_run_j) / (new_tokens - 1) if new_tokens > 1 else None
    if per_generated is not None and per_generated <= 0:
        per_generated = None  # within the counter's noise: not a measurement
    return ttft_run_j / context, per_generated


def _measure_served(engine: Engine, prompt_ids: list[int], new_tokens: int, repeats: int,
                    stop: threading.Event | None) -> Point | None:
    """A served model: the same warm-up and repeats, timed at the client; its memory is the server's,
    not seen from here, so none is recorded."""
    context = len(prompt_ids)
    try:
        ttfts, decodes = _timed_runs(engine, prompt_ids, new_tokens, repeats, stop)
    except _Stopped:
        return None
    point = Point(context, new_tokens, "ok", Summary.from_values(ttfts), Summary.from_values(decodes))
    point.error = served_counts_note(engine, prompt_ids, new_tokens)
    return point


def served_counts_note(engine, prompt_ids: list[int], new_tokens: int) -> str | None:
    """Text, not ids, reaches a server, which tokenizes it again: say when what it counted (its usage, else
    the local tokenizer on that text) differs from the context and new tokens the point names."""
    usage = getattr(engine, "last_usage", None) or {}
    prompt_n = usage.get("prompt_tokens") or engine.prompt_tokens_sent(prompt_ids)
    generated_n = usage.get("completion_tokens")
    said = []
    if prompt_n is not None and prompt_n != len(prompt_ids):
        said.append(f"the server got {prompt_n} prompt tokens for this context of {len(prompt_ids)} (the text "
                    "re-tokenized)")
    if generated_n is not None and generated_n != new_tokens:
        said.append(f"it counted {generated_n} generated tokens for {new_tokens} streamed pieces")
    return "; ".join(said) or None


class _Stopped(Exception):
    """A sweep's Stop reached a generation: its point is dropped."""


def _generate(engine: Engine, prompt_ids: list[int], new_tokens: int, stop: threading.Event | None = None):
    _sync(engine.device)
    if stop is not None and stop.is_set():
        raise _Stopped
    result = engine.generate(prompt_ids, GenerationSettings(max_new_tokens=new_tokens, fixed_length=True), stop=stop)
    if stop is not None and stop.is_set():
        raise _Stopped
    return result


def _decode_rate(result) -> float:
    times = result.token_times_s
    if len(times) < 2 or times[-1] <= times[0]:
        raise RuntimeError("decode rate needs at least 2 tokens; use --new-tokens >= 2")
    return (len(times) - 1) / (times[-1] - times[0])


def _sync(device: str) -> None:
    if memory.is_cuda(device):
        torch.cuda.synchronize(device)


def _recover(engine: Engine) -> None:
    engine.release()
    if memory.is_cuda(engine.device):
        torch.cuda.empty_cache()


def sweep(model: LoadedModel, contexts: list[int], new_tokens: int, repeats: int,
          on_point: Callable[[Point], None] | None = None, until: Callable[[], bool] | None = None,
          stop: threading.Event | None = None) -> ModelRun:
    """Measure one model at each context; the first warm-up (lazy init, compilation) is timed apart.
    ``until``: checked before each point; once true the sweep ends with the points measured so far.
    ``stop``: ends it at once, within the generation in flight."""
    vocab = model.engine.vocab_size()
    t0_s = time.perf_counter()
    _first_warmup(model, random_prompt_ids(vocab, min(contexts), seed=1))
    run = ModelRun(model.spec.model_id, model.card.to_dict(), model.load_s, time.perf_counter() - t0_s,
                   resident_bytes=model.resident_bytes, weight_bytes=model.engine.weight_bytes())
    for context in contexts:
        if until is not None and until():
            break
        point = measure_point(model.engine, random_prompt_ids(vocab, context), new_tokens, repeats, stop,
                              own_before_b=model.own_bytes())
        if point is None:
            break
        run.points.append(point)
        if on_point is not None:
            on_point(point)
    return run


def _first_warmup(model: LoadedModel, prompt_ids: list[int]) -> None:
    """Lazy init, compilation, an engine built on first use: what it keeps is this model's too."""
    model.keeping(lambda: _generate(model.engine, prompt_ids, WARMUP_NEW_TOKENS))
    _sync(model.engine.device)


def environment(device: str, dtype: torch.dtype = torch.float16) -> Environment:
    """Versions (and the pins they differ from), the commit, and the ceilings the plots' bounds use."""
    if memory.is_served(device):
        return served_environment(device)
    on_cuda = memory.is_cuda(device)
    name = torch.cuda.get_device_name(device) if on_cuda else _cpu_name()
    measured = measure_matmul_rate(device, dtype)
    peak, source = ceilings.matmul_peak(name, str(dtype).replace("torch.", ""), measured,
                                        None if on_cuda else ceilings.cpu_peak())
    versions = _versions()
    meter = energy.meter_for(device)
    return Environment(
        device_type=torch.device(device).type, device_name=name,
        torch_version=versions["torch"], transformers_version=versions["transformers"],
        python_version=versions["python"], cuda_version=torch.version.cuda if on_cuda else None,
        mamba_ssm_version=_version("mamba_ssm"), causal_conv1d_version=_version("causal_conv1d"),
        measured_bandwidth_bytes_per_s=measure_bandwidth(device),
        measured_matmul_flops_per_s=measured, cpu_threads=torch.get_num_threads(),
        energy_source=meter.source if meter is not None else energy.NOT_MEASURED,
        peak_matmul_flops_per_s=peak, matmul_rate_source=source, git_commit=ceilings.git_commit(),
        pinned_versions=ceilings.differing_pins(versions))


def served_environment(device: str) -> Environment:
    """A served model's record: the server is the device; its hardware is not seen from here, so no
    ceilings (and no bounds) are recorded; the versions are this client's."""
    versions = _versions()
    return Environment(device_type="remote", device_name="remote servers (each card names its own)",
                       torch_version=versions["torch"], transformers_version=versions["transformers"],
                       python_version=versions["python"], cuda_version=None, mamba_ssm_version=None,
                       causal_conv1d_version=None, matmul_rate_source="not known: a remote server",
                       git_commit=ceilings.git_commit(), pinned_versions=ceilings.differing_pins(versions))


def _versions() -> dict:
    return {"torch": torch.__version__, "transformers": _version("transformers"), "python": python_version()}


def measure_bandwidth(device: str, n_bytes: int | None = None, repeats: int = 10) -> float:
    """Device-memory copy rate, counting bytes read plus bytes written (METHOD.md's ceiling)."""
    n_bytes = n_bytes or (2 * 2**30 if memory.is_cuda(device) else 256 * 2**20)
    src = torch.empty(n_bytes // 2, dtype=torch.float16, device=device).normal_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    return 2 * n_bytes / _median_time(lambda: dst.copy_(src), device, repeats)


def measure_matmul_rate(device: str, dtype: torch.dtype | None = None, repeats: int = 5) -> float:
    """Sustained dense matmul FLOP/s in the benchmark's dtype, the best of a square product and one of a
    prefill's shapes (2,048 tokens x 1,024 -> 4,096, an MLP's up-projection) so the rate is not one that
    the real shapes beat."""
    dtype = dtype or (torch.float16 if memory.is_cuda(device) else torch.float32)
    shapes = [(8192, 8192, 8192)] if memory.is_cuda(device) else [(1024, 1024, 1024), (2048, 1024, 4096)]
    rates = []
    for m, k, n in shapes:
        a = torch.randn(m, k, dtype=dtype, device=device)
        b = torch.randn(k, n, dtype=dtype, device=device)
        a @ b
        rates.append(2 * m * k * n / _median_time(lambda: a @ b, device, repeats))
    return max(rates)


def _median_time(fn: Callable, device: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def _version(dist: str) -> str | None:
    for name in (dist, dist.replace("_", "-")):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def this_device_name() -> str:
    """The GPU this process computes on, else the CPU (as records name them). On ZeroGPU's main process,
    where no GPU is attached, whatever torch reports, or 'a GPU not attached yet'."""
    try:
        if torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except Exception:  # noqa: BLE001 (ZeroGPU: CUDA is emulated outside a GPU task)
        return "a GPU not attached yet"
    return _cpu_name()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"CPU ({os.cpu_count()} cores)"
