"""The device ceilings a bound divides by, and the provenance a record carries (commit, pins).

Why a datasheet: a bound must be what no run can beat, and a measured matmul rate is only what one
product reached (the committed Pythia-160M CPU record beat the old bound). Where the device is in
the table, the TTFT bound uses its datasheet peak for the dtype (dense, no sparsity); elsewhere the
measured rate, and the record says which (``matmul_rate_source``).
"""

from __future__ import annotations

from dataclasses import dataclass

import re
import subprocess
from pathlib import Path

from comparer.paths import ROOT

PINNED_PYTHON = "3.11"  # what CI and the development machine run (.ci/run)
# dense tensor-core peaks from NVIDIA's datasheets (FLOP/s, no sparsity)
DATASHEET_MATMUL_FLOPS = {
    "NVIDIA H200": {"float16": 989.4e12, "bfloat16": 989.4e12, "float32": 66.9e12},
    "NVIDIA H100 80GB HBM3": {"float16": 989.4e12, "bfloat16": 989.4e12, "float32": 66.9e12},
}


# HBM bandwidth from NVIDIA's datasheets (bytes/s): the decode bound's ceiling, since a measured copy
# rate is only what one kernel reached (the fast Pythia decodes at 0.93 of the H200's measured 4.2 TB/s)
DATASHEET_BANDWIDTH = {"NVIDIA H200": 4.8e12, "NVIDIA H100 80GB HBM3": 3.35e12}


def bandwidth_peak(device_name: str, measured_bytes_per_s: float | None) -> tuple[float | None, str]:
    """(bytes/s, where it came from) for the decode bound: the datasheet where known, never below the
    measurement; elsewhere the measured copy rate."""
    peak = DATASHEET_BANDWIDTH.get(device_name)
    if peak is not None:
        return max(peak, measured_bytes_per_s or 0), f"datasheet HBM bandwidth of the {device_name}"
    return measured_bytes_per_s, "measured copy rate (no datasheet entry)"


def matmul_peak(device_name: str, dtype: str, measured_flops_per_s: float,
                cpu: "CpuPeak | None" = None) -> tuple[float, str]:
    """(rate, where it came from) for the TTFT bound: the datasheet peak, never below the measurement; on a
    CPU (``cpu``: this machine's, read by cpu_peak) the most its vector units could issue, since a
    measured CPU rate is one that a quieter moment beats (a 2026-12-03 run beat its own measured bound)."""
    peak = DATASHEET_MATMUL_FLOPS.get(device_name, {}).get(dtype)
    if peak is not None:
        return max(peak, measured_flops_per_s), f"datasheet dense {dtype} peak of the {device_name}"
    if cpu is not None:
        return max(cpu.flops_per_s, measured_flops_per_s), cpu.source
    return measured_flops_per_s, "measured (best of the benchmark's matmul shapes; no datasheet entry)"


@dataclass(frozen=True)
class CpuPeak:
    flops_per_s: float
    source: str


CPU_MAX_CLOCK_HZ = 4.5e9  # above any x86 server part's boost clock (cloud CPUs report only a base clock)


def cpu_peak(cpuinfo: str | None = None, logical_cpus: int | None = None) -> CpuPeak:
    """fp32 FLOP/s no run on this CPU can exceed: logical CPUs x FLOP per cycle of its widest FMA (two
    units each: AVX-512 64, AVX2+FMA 32, else 16) x CPU_MAX_CLOCK_HZ. Loose, but a bound."""
    import os

    if cpuinfo is None:
        with open("/proc/cpuinfo") as f:
            cpuinfo = f.read()
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines()
                      if line.startswith("flags")), []))
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 16
    cpus = logical_cpus or os.cpu_count() or 1
    return CpuPeak(cpus * per_cycle * CPU_MAX_CLOCK_HZ,
                   f"upper bound: {cpus} logical CPUs x {per_cycle} fp32 FLOP/cycle x "
                   f"{CPU_MAX_CLOCK_HZ / 1e9:.1f} GHz (more than this CPU can issue)")


def git_commit() -> str:
    """The commit the run was made from, '+ changes' when the tree differs from it. COMPARER_GIT_COMMIT
    overrides it where the checkout's git is not the tree's (the lent GPU host copies the working tree
    onto an older base commit)."""
    import os

    if os.environ.get("COMPARER_GIT_COMMIT"):
        return os.environ["COMPARER_GIT_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not recorded (no git checkout)"
    return head + (" + uncommitted changes" if dirty else "")


def pins(path: Path = ROOT / "requirements.txt") -> dict[str, str]:
    """name -> version of every ``name==version`` line (comments and options ignored); also what the
    Space's requirements are written from (space.py)."""
    found = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        match = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def differing_pins(versions: dict[str, str | None]) -> dict[str, str]:
    """The pins this run's versions differ from (torch's local '+cpu' / '+cu130' tag ignored), so a
    record made on the GPU host (its own torch and Python) says it was not made with the pinned set."""
    pinned = {**pins(), "python": PINNED_PYTHON}
    differ = {}
    for name, version in versions.items():
        want = pinned.get(name)
        if want and version and version.split("+")[0] != want.split("+")[0] and not version.startswith(want + "."):
            differ[name] = f"pinned {want}, ran {version}"
    return differ
