"""Energy counters: NVML's total-energy counter on NVIDIA GPUs, RAPL (powercap) on a CPU that exposes it.

Why counters, not power samples: both are cumulative energy registers kept by the hardware, so the energy
of a span is the difference of two reads, with no sampling gaps. What they count is the whole board (NVML)
or the whole CPU package (RAPL), every process on it and its idle draw included: a figure is a model's
only while it runs alone, and each says its source. The NVML counter (millijoules) updates every few tens
of milliseconds, so a span should be long: benchmarks sum their repeats before dividing.
"""

from __future__ import annotations

import ctypes
import glob
import os
from dataclasses import dataclass
from typing import Callable

from comparer import memory


@dataclass(frozen=True)
class EnergyMeter:
    """``read_j``: cumulative joules now; ``source``: what it counts, for cards and records."""

    read_j: Callable[[], float]
    source: str


_NVML: list = []  # the loaded library, once


def _nvml():
    if not _NVML:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
        if lib.nvmlInit_v2() != 0:
            raise OSError("nvmlInit failed")
        _NVML.append(lib)
    return _NVML[0]


def nvml_meter(gpu_index: int, uuid: str | None = None) -> EnergyMeter | None:
    """NVML's counter of one GPU (Volta and later); None where there is no NVML or no counter. ``uuid``
    (from torch) finds the same board NVML numbers differently (CUDA_VISIBLE_DEVICES, fastest-first order)."""
    try:
        lib = _nvml()
        handle = ctypes.c_void_p()
        found = uuid is not None and lib.nvmlDeviceGetHandleByUUID(uuid.encode(), ctypes.byref(handle)) == 0
        if not found and lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(gpu_index), ctypes.byref(handle)) != 0:
            return None
        value = ctypes.c_ulonglong()

        def read_j() -> float:
            if lib.nvmlDeviceGetTotalEnergyConsumption(handle, ctypes.byref(value)) != 0:
                raise OSError("nvmlDeviceGetTotalEnergyConsumption failed")
            return value.value / 1000.0

        read_j()
    except OSError:
        return None
    return EnergyMeter(read_j, f"NVML total-energy counter of GPU {gpu_index} (the whole board"
                       + ("" if found else "; matched by index, not UUID") + ")")


def rapl_meter(root: str = "/sys/class/powercap") -> EnergyMeter | None:
    """The CPU packages' RAPL counters summed; None where the machine does not expose them (most VMs)."""
    zones = [z for z in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))) if z.count(":") == 1]
    readable = [z for z in zones if os.access(os.path.join(z, "energy_uj"), os.R_OK)]
    if not readable:
        return None
    last = {z: _uj(z) for z in readable}
    total = [0.0]

    def read_j() -> float:
        for zone in readable:  # the registers wrap at max_energy_range_uj
            now = _uj(zone)
            wrap = _uj(zone, "max_energy_range_uj") if now < last[zone] else 0
            total[0] += (now - last[zone] + wrap) / 1e6
            last[zone] = now
        return total[0]

    return EnergyMeter(read_j, f"RAPL package counters ({len(readable)} package(s), the whole CPU)")


def _uj(zone: str, name: str = "energy_uj") -> int:
    with open(os.path.join(zone, name)) as f:
        return int(f.read())


def meter_for(device: str) -> EnergyMeter | None:
    """The counter for what ``device`` computes on, or None ("not measured")."""
    if memory.is_served(device):
        return None  # the server's hardware is not seen from here
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else _current_gpu()
        return nvml_meter(index, _gpu_uuid(index))
    return rapl_meter()


def read_synced(meter: EnergyMeter, device: str) -> float:
    """The counter once the device has finished what was queued on it (work in flight is not yet spent)."""
    if memory.is_cuda(device):
        import torch

        torch.cuda.synchronize(device)
    return meter.read_j()


def _current_gpu() -> int:
    import torch

    return torch.cuda.current_device()


def _gpu_uuid(index: int) -> str | None:
    import torch

    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    return None if uuid is None else f"GPU-{uuid}"


NOT_MEASURED = "not measured (no NVML or RAPL counter here)"
