"""A compiled selective scan for the CPU, where mamba-ssm's CUDA kernels do not exist.

transformers' reference path loops over every prompt token in Python (thousands of tiny tensor ops
per layer). This is the same recurrence as one C++ loop per channel (OpenMP across channels, the 16
state lanes vectorised by the compiler), built once with torch's cpp_extension and cached under
~/.cache/torch_extensions (about a minute the first time, reported on the card).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from comparer.engines.mamba_ops import TorchOps

_SOURCE = r"""
#include <torch/extension.h>
#include <cmath>
// One sequence. u, delta (softplus applied), z: (d, L); A: (d, n); B, C: (L, n); h: (d, n) in/out; y: (d, L)
void scan(torch::Tensor u, torch::Tensor delta, torch::Tensor A, torch::Tensor B, torch::Tensor C,
          torch::Tensor D, torch::Tensor z, torch::Tensor h, torch::Tensor y) {
  const int64_t d = u.size(0), L = u.size(1), n = A.size(1);
  TORCH_CHECK(n <= 256, "d_state above 256 is not supported");
  const float *pu = u.data_ptr<float>(), *pdt = delta.data_ptr<float>(), *pA = A.data_ptr<float>();
  const float *pB = B.data_ptr<float>(), *pC = C.data_ptr<float>(), *pD = D.data_ptr<float>();
  const float *pz = z.data_ptr<float>();
  float *ph = h.data_ptr<float>(), *py = y.data_ptr<float>();
  #pragma omp parallel for
  for (int64_t i = 0; i < d; ++i) {
    float hs[256], a[256], e[256];
    for (int64_t k = 0; k < n; ++k) { hs[k] = ph[i * n + k]; a[k] = pA[i * n + k]; }
    for (int64_t t = 0; t < L; ++t) {
      const float dt = pdt[i * L + t], x = dt * pu[i * L + t];
      const float *bt = pB + t * n, *ct = pC + t * n;
      for (int64_t k = 0; k < n; ++k) e[k] = expf(dt * a[k]);
      float acc = 0.f;
      for (int64_t k = 0; k < n; ++k) { hs[k] = e[k] * hs[k] + x * bt[k]; acc += hs[k] * ct[k]; }
      const float zz = pz[i * L + t];
      py[i * L + t] = (acc + pD[i] * pu[i * L + t]) * (zz / (1.f + expf(-zz)));
    }
    for (int64_t k = 0; k < n; ++k) ph[i * n + k] = hs[k];
  }
}
"""
_MODULE = {"mod": None, "compile_s": None, "error": None}


def compile_cpu_scan():
    """Build (or load from cache) the extension; None, with the reason kept, if no compiler works."""
    if _MODULE["mod"] is None and _MODULE["error"] is None:
        t0 = time.perf_counter()
        try:
            from torch.utils.cpp_extension import load_inline

            _MODULE["mod"] = load_inline("comparer_cpu_scan", cpp_sources=_SOURCE, functions=["scan"],
                                         extra_cflags=["-O3", "-ffast-math", "-march=native", "-fopenmp"],
                                         extra_ldflags=["-fopenmp"], verbose=False)
            _MODULE["compile_s"] = time.perf_counter() - t0
        except Exception as err:  # no compiler or ninja: the caller falls back to PyTorch ops
            _MODULE["error"] = f"{type(err).__name__}: {err}"[:300]
    return _MODULE["mod"]


class CppScanOps(TorchOps):
    """TorchOps with the prefill scan in compiled C++ (exact fp32 recurrence, no Python loop)."""

    name = "compiled C++ scan (CPU)"
    compiled_what = "C++ scan"

    def __init__(self):
        self.mod = compile_cpu_scan()
        if self.mod is None:
            raise RuntimeError(f"the CPU scan could not be compiled: {_MODULE['error']}")
        self.compile_s = _MODULE["compile_s"]

    def scan(self, u, dt, A, B, C, D, z, dt_bias, h0, block: int = 32):
        delta = F.softplus(dt.float() + dt_bias[:, None])  # (b, d, seq)
        ys, lasts = [], []
        for b in range(u.shape[0]):
            h = (h0[b] if h0 is not None else torch.zeros_like(A)).float().contiguous().clone()
            y = torch.empty(u.shape[1:], dtype=torch.float32)
            self.mod.scan(u[b].float().contiguous(), delta[b].contiguous(), A.contiguous(),
                          B[b].float().t().contiguous(), C[b].float().t().contiguous(), D.contiguous(),
                          z[b].float().contiguous(), h, y)
            ys.append(y)
            lasts.append(h)
        return torch.stack(ys).to(u.dtype), torch.stack(lasts)
