"""A compiled Mamba prefill for the CPU, where mamba-ssm's CUDA kernels do not exist.

Plain C built with the system compiler and loaded through ctypes (under a second; torch's
cpp_extension took ~52 s for the same loop because it compiles the torch headers).

transformers' reference path loops over every prompt token in Python (thousands of tiny tensor ops
per layer). Here the depthwise conv + SiLU and the selective scan (softplus, decay, state update,
D skip and SiLU gate included) are two C loops over time per block of eight channels: GCC/Clang
vector types fill one 256-bit register with eight channels (no horizontal sums), OpenMP spreads the
blocks over cores, and the exp is a polynomial the compiler keeps in registers. It works time-major,
(seq, channels), the layout the matrix products produce and consume, so no transposed copies are
made. Cached under ~/.cache/comparer; the build time is on the card.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch

_SOURCE_FILE = Path(__file__).with_name("cpu_scan.c")
# no -ffast-math: the exp relies on IEEE rounding of (v + 1.5 * 2^23) - 1.5 * 2^23
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp", "-shared", "-fPIC",
          "-std=gnu11"]
_MODULE = {"lib": None, "compile_s": None, "error": None}


def _library_path() -> Path:
    """Cache key: source, flags, compiler and CPU (the build uses -march=native)."""
    cpu = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    key = hashlib.sha256("|".join([_SOURCE_FILE.read_text(), *_FLAGS, shutil.which("cc") or "", cpu]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "comparer"
    return cache / f"cpu_scan-{key}.so"


def compile_cpu_scan():
    """Build (about a second with cc) or load the cached library; None, with the reason kept
    (``build_error()``), if no C compiler works."""
    if _MODULE["lib"] is None and _MODULE["error"] is None:
        t0 = time.perf_counter()
        try:
            _MODULE["lib"] = _load(_build_if_missing(_library_path()))
            _MODULE["compile_s"] = time.perf_counter() - t0
        except (OSError, subprocess.CalledProcessError) as err:  # no compiler: the caller falls back
            _MODULE["error"] = f"{type(err).__name__}: {err}"[:300]
    return _MODULE["lib"]


def _build_if_missing(lib_path: Path) -> Path:
    if lib_path.exists():
        return lib_path
    lib_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source, built = Path(tmp) / "cpu_scan.c", Path(tmp) / "cpu_scan.so"
        shutil.copyfile(_SOURCE_FILE, source)
        command = [shutil.which("cc") or "cc", *_FLAGS, str(source), "-o", str(built), "-lm"]
        try:
            subprocess.run(command, check=True, capture_output=True)
        except subprocess.CalledProcessError:  # e.g. Apple clang has no OpenMP: one core, same result
            subprocess.run([f for f in command if f != "-fopenmp"], check=True, capture_output=True)
        os.replace(built, lib_path)  # atomic: a concurrent loader sees all of it or nothing
    return lib_path


def _load(lib_path: Path):
    lib = ctypes.CDLL(str(lib_path))
    ptr, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.scan.argtypes = [ptr, i64, ptr, i64, ptr, ptr, ptr, ptr, i64, ptr, ptr, i64, ptr, ptr, i64, i64, i64]
    lib.conv_silu.argtypes = [ptr, i64, ptr, ptr, ptr, ptr, i64, i64, i64]
    lib.scan.restype = lib.conv_silu.restype = None
    return lib


def build_error() -> str | None:
    return _MODULE["error"]


def build_s() -> float | None:
    """Seconds the first compile_cpu_scan() of this process took (a cache hit: load time only)."""
    return _MODULE["compile_s"]


def conv_silu(lib, xz: torch.Tensor, conv_state: torch.Tensor, conv_w: torch.Tensor, conv_b, u: torch.Tensor):
    """Depthwise causal conv + SiLU of x (the first d columns of time-major xz (seq, 2d)), from and
    into conv_state (1, d, width); writes u (seq, d). fp32, unit column stride."""
    d, seq = u.shape[1], u.shape[0]
    lib.conv_silu(xz.data_ptr(), xz.stride(0), conv_state.data_ptr(), conv_w.data_ptr(),
                  conv_b.data_ptr() if conv_b is not None else None, u.data_ptr(), d, seq, conv_w.shape[1])


def scan(lib, u, dt, b_c, z, A, D, dt_bias, h, y):
    """The selective scan on time-major fp32 views (row strides read from them, unit column stride):
    u, dt, z (seq, d); b_c (seq, 2n), B then C; A (d, n); h (d, n) updated in place; y (seq, d)."""
    d, n = A.shape
    lib.scan(u.data_ptr(), u.stride(0), dt.data_ptr(), dt.stride(0), dt_bias.data_ptr(), A.data_ptr(),
             b_c.data_ptr(), b_c[:, n:].data_ptr(), b_c.stride(0), D.data_ptr(), z.data_ptr(), z.stride(0),
             h.data_ptr(), y.data_ptr(), d, y.shape[0], n)
