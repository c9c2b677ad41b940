"""A compiled selective scan for the CPU, where mamba-ssm's CUDA kernels do not exist.

Plain C built with the system compiler and loaded through ctypes (about a second; torch's
cpp_extension took ~52 s for the same loop because it compiles the torch headers).

transformers' reference path loops over every prompt token in Python (thousands of tiny tensor ops
per layer). This is the same recurrence as one C loop over time per block of eight channels
(OpenMP across blocks; the eight channels fill one AVX2 register, so the 16 state lanes are 16
independent vector FMA chains), cached under ~/.cache/comparer; the build time is on the card.
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
import torch.nn.functional as F

from comparer.engines.mamba_ops import TorchOps

_SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>
// exp for x <= 0 as a loop body the compiler vectorises (Cephes expf: Cody-Waite reduction and a
// degree-6 polynomial, within 2 ulp of expf). The scalar libm expf call per state lane was ~70 % of
// the scan's time on a 2-core AVX2 CPU; this keeps the 16 lanes in two vector registers.
static inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;  // exp(-87) ~ 1.6e-38: the state lane is gone either way
  const float n = nearbyintf(x * 1.44269504088896341f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
// One sequence, eight channels per step of the loop: every operation below is an 8-wide vertical
// SIMD op with no horizontal reduction, and the 16 state lanes are 16 independent dependency chains.
// u, delta (softplus applied), z, y: (d, L) channel-major; the eight rows a block reads stay in L1
// across 16 consecutive steps (one cache line each), so no transposed copies are needed.
// A: (n, d); B, C: (L, n); h: (n, d) in/out. d is a multiple of 8 (the caller pads).
#define W 8
void scan(const float *pu, const float *pdt, const float *pA, const float *pB, const float *pC,
          const float *pD, const float *pz, float *ph, float *py, int64_t d, int64_t L, int64_t n) {
  #pragma omp parallel for
  for (int64_t c0 = 0; c0 < d; c0 += W) {
    float hs[64][W], a[64][W], dd[W];
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < W; ++j) { hs[k][j] = ph[k * d + c0 + j]; a[k][j] = pA[k * d + c0 + j]; }
    for (int64_t j = 0; j < W; ++j) dd[j] = pD[c0 + j];
    for (int64_t t = 0; t < L; ++t) {
      const float *bt = pB + t * n, *ct = pC + t * n;
      float dt[W], uu[W], zz[W], x[W], acc[W];
      for (int64_t j = 0; j < W; ++j) {
        const int64_t at = (c0 + j) * L + t;
        dt[j] = pdt[at]; uu[j] = pu[at]; zz[j] = pz[at]; x[j] = dt[j] * uu[j]; acc[j] = 0.f;
      }
      for (int64_t k = 0; k < n; ++k) {
        const float b = bt[k], cc = ct[k];
        for (int64_t j = 0; j < W; ++j) {
          hs[k][j] = exp_nonpositive(dt[j] * a[k][j]) * hs[k][j] + x[j] * b;
          acc[j] += hs[k][j] * cc;
        }
      }
      for (int64_t j = 0; j < W; ++j) py[(c0 + j) * L + t] = (acc[j] + dd[j] * uu[j]) * (zz[j] / (1.f + expf(-zz[j])));
    }
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < W; ++j) ph[k * d + c0 + j] = hs[k][j];
  }
}
"""
_FLAGS = ["-O3", "-ffast-math", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c99"]
_MODULE = {"lib": None, "compile_s": None, "error": None}


def _library_path() -> Path:
    """Cache key: source, flags, compiler and CPU (the build uses -march=native)."""
    cpu = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    key = hashlib.sha256("|".join([_SOURCE, *_FLAGS, shutil.which("cc") or "", cpu]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "comparer"
    return cache / f"cpu_scan-{key}.so"


def compile_cpu_scan():
    """Build (about a second with cc) or load the cached library; None, with the reason kept, if no
    C compiler works."""
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
        source.write_text(_SOURCE)
        subprocess.run([shutil.which("cc") or "cc", *_FLAGS, str(source), "-o", str(built), "-lm"], check=True,
                       capture_output=True)
        os.replace(built, lib_path)  # atomic: a concurrent loader sees all of it or nothing
    return lib_path


def _load(lib_path: Path):
    lib = ctypes.CDLL(str(lib_path))
    lib.scan.argtypes = [ctypes.c_void_p] * 9 + [ctypes.c_int64] * 3
    lib.scan.restype = None
    return lib


class CScanOps(TorchOps):
    """TorchOps with the prefill scan in compiled C (exact fp32 recurrence, no Python loop)."""

    name = "compiled C scan (CPU)"
    compiled_what = "C scan"

    def __init__(self):
        self.lib = compile_cpu_scan()
        if self.lib is None:
            raise RuntimeError(f"the CPU scan could not be compiled: {_MODULE['error']}")
        self.compile_s = _MODULE["compile_s"]

    def scan(self, u, dt, A, B, C, D, z, dt_bias, h0, block: int = 32):
        """u, dt, z (b, d, seq); B, C (b, n, seq); A (d, n); h0 (b, d, n) or None -> y (b, d, seq), h (b, d, n).
        Channels are padded to a multiple of 8 for the kernel (a no-op for Mamba's widths)."""
        d, seq = u.shape[1], u.shape[2]
        if A.shape[1] > 64:
            raise ValueError("the CPU scan supports d_state up to 64")
        pad = -d % 8
        delta = F.softplus(dt.float() + dt_bias[:, None])  # (b, d, seq)
        ys, lasts = [], []
        for b in range(u.shape[0]):
            h = (h0[b] if h0 is not None else torch.zeros_like(A)).float()
            h_t = _rows(h, pad).t().contiguous()  # (n, d + pad)
            y = torch.empty(d + pad, seq, dtype=torch.float32)
            inputs = (_rows(u[b], pad), _rows(delta[b], pad), _rows(A, pad).t().contiguous(),
                      B[b].float().t().contiguous(), C[b].float().t().contiguous(), _rows(D[:, None], pad)[:, 0],
                      _rows(z[b], pad), h_t, y)  # kept referenced while the C code reads them
            self.lib.scan(*(t.data_ptr() for t in inputs), d + pad, seq, A.shape[1])
            ys.append(y[:d])
            lasts.append(h_t[:, :d].t())
        if len(ys) == 1:  # the engines run batch 1: no stacking copy
            return ys[0].unsqueeze(0).to(u.dtype), lasts[0].unsqueeze(0)
        return torch.stack(ys).to(u.dtype), torch.stack(lasts)


def _rows(x: torch.Tensor, pad: int) -> torch.Tensor:
    """(d, ...) -> contiguous fp32 (d + pad, ...), zero rows appended (a copy only where needed)."""
    x = x.float()
    if pad:
        x = torch.cat([x, x.new_zeros(pad, *x.shape[1:])])
    return x.contiguous()
