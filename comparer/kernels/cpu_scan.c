// The compiled Mamba prefill for the CPU: see cpu_scan.py for why and how it is built.
#include <stdint.h>
#include <string.h>
typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
#ifndef G
#define G 4  // state lanes advanced side by side (see exp2_lockstep)
#endif

static inline v8 splat(float x) { return (v8){x, x, x, x, x, x, x, x}; }
static inline v8i splati(int32_t x) { return (v8i){x, x, x, x, x, x, x, x}; }
// lanes < 8 only for the last block of a width that is not a multiple of 8
static inline v8 load(const float *p, int lanes) {
  v8 v = splat(0.f);
  if (lanes == 8) memcpy(&v, p, sizeof v);  // one unaligned vector load
  else for (int j = 0; j < lanes; ++j) v[j] = p[j];
  return v;
}
static inline void store(float *p, v8 v, int lanes) {
  if (lanes == 8) memcpy(p, &v, sizeof v);
  else for (int j = 0; j < lanes; ++j) p[j] = v[j];
}
static inline v8 pick(v8i mask, v8 a, v8 b) { return (v8)((mask & (v8i)a) | (~mask & (v8i)b)); }
static inline v8 vmax(v8 a, v8 b) { return pick(a > b, a, b); }
static inline v8 vmin(v8 a, v8 b) { return pick(a < b, a, b); }

// 2^v[i] for v[i] in [-126, 126], in place: v = k + f with k the nearest integer (the 1.5 * 2^23
// rounding trick, which also leaves k + 127 in the low bits, ready to become the exponent) and 2^f,
// |f| <= 0.5, by a degree-6 polynomial fitted for relative error (1e-7 in fp32, about expf's).
// Each stage runs for all g vectors before the next: g independent chains issued side by side let
// the core overlap their latencies (one exp at a time, the scan ran at a third of its throughput).
static inline void exp2_lockstep(v8 *v, const int g) {
  v8 t[G], f[G], p[G];
  for (int i = 0; i < g; ++i) t[i] = v[i] + 12583039.f;  // 1.5 * 2^23 + 127
  for (int i = 0; i < g; ++i) f[i] = v[i] - (t[i] - 12583039.f);
  for (int i = 0; i < g; ++i) p[i] = 1.5345805149991065e-4f * f[i] + 1.3399930903688073e-3f;
  for (int i = 0; i < g; ++i) p[i] = p[i] * f[i] + 9.618489071726799e-3f;
  for (int i = 0; i < g; ++i) p[i] = p[i] * f[i] + 5.550328642129898e-2f;
  for (int i = 0; i < g; ++i) p[i] = p[i] * f[i] + 2.4022646248340607e-1f;
  for (int i = 0; i < g; ++i) p[i] = p[i] * f[i] + 6.931471824645996e-1f;
  for (int i = 0; i < g; ++i) p[i] = p[i] * f[i] + 1.f;
  for (int i = 0; i < g; ++i) v[i] = p[i] * (v8)((v8u)t[i] << 23);
}
static const float LOG2E = 1.44269504088896341f;
static inline v8 expv(v8 x) {
  v8 v = vmin(vmax(x * LOG2E, splat(-126.f)), splat(126.f));
  exp2_lockstep(&v, 1);
  return v;
}
static inline v8 silu(v8 x) { return x / (1.f + expv(-x)); }
// log(1 + e^x) = max(x, 0) + log1p(y), y = e^-|x| in (0, 1]: log1p(y) = 2 atanh(s), s = y / (2 + y) <= 1/3,
// summed to s^15 (relative error < 1e-8).
static inline v8 softplus(v8 x) {
  const v8 ax = (v8)((v8i)x & splati(0x7fffffff));
  const v8 y = expv(-ax), s = y / (2.f + y), s2 = s * s;
  v8 p = splat(1.f / 15.f);
  p = p * s2 + 1.f / 13.f;
  p = p * s2 + 1.f / 11.f;
  p = p * s2 + 1.f / 9.f;
  p = p * s2 + 1.f / 7.f;
  p = p * s2 + 1.f / 5.f;
  p = p * s2 + 1.f / 3.f;
  p = p * s2 + 1.f;
  return vmax(x, splat(0.f)) + 2.f * s * p;
}

// Causal depthwise conv + SiLU, time-major. x: rows of d channels at stride sx; state: (d, w) the
// last w inputs before this chunk (updated to the last w inputs after it); weight (d, w); bias (d) or
// NULL; out: (L, d) contiguous. Eight channels per vector; channel blocks in parallel.
void conv_silu(const float *x, int64_t sx, float *state, const float *weight, const float *bias, float *out,
               int64_t d, int64_t L, int64_t w) {
  #pragma omp parallel for schedule(static)
  for (int64_t c0 = 0; c0 < d; c0 += 8) {
    const int lanes = d - c0 < 8 ? (int)(d - c0) : 8;
    v8 wk[16], prev[16], b = splat(0.f);
    for (int64_t k = 0; k < w; ++k)
      for (int j = 0; j < lanes; ++j) { wk[k][j] = weight[(c0 + j) * w + k]; prev[k][j] = state[(c0 + j) * w + k]; }
    if (bias) b = load(bias + c0, lanes);
    // window[k] holds input t - (w - 1) + k; the oldest state entry is never used again
    for (int64_t t = 0; t < L; ++t) {
      for (int64_t k = 0; k + 1 < w; ++k) prev[k] = prev[k + 1];
      prev[w - 1] = load(x + t * sx + c0, lanes);
      v8 acc = b;
      for (int64_t k = 0; k < w; ++k) acc += wk[k] * prev[k];
      store(out + t * d + c0, silu(acc), lanes);
    }
    for (int64_t k = 0; k < w; ++k)
      for (int j = 0; j < lanes; ++j) state[(c0 + j) * w + k] = prev[k][j];
  }
}

// g state lanes (g <= G) advanced one step: h = exp(delta a) h + delta u b, acc += h c.
static inline void update(v8 *hs, const v8 *a, const float *b, const float *c, v8 delta, v8 x, v8 acc[G],
                          const int g) {
  v8 decay[G];
  for (int i = 0; i < g; ++i) decay[i] = vmax(delta * a[i], splat(-126.f));
  exp2_lockstep(decay, g);
  for (int i = 0; i < g; ++i) hs[i] = decay[i] * hs[i] + x * b[i];
  for (int i = 0; i < g; ++i) acc[i] += hs[i] * c[i];
}

static inline void scan_block(const float *u, int64_t su, const float *dt, int64_t sdt, const float *dt_bias,
                              const float *A, const float *B, const float *C, int64_t sbc, const float *D,
                              const float *z, int64_t sz, float *h, float *y, int64_t d, int64_t L, int64_t n,
                              int64_t c0) {
  const int lanes = d - c0 < 8 ? (int)(d - c0) : 8;
  v8 hs[64], a[64];
  for (int64_t k = 0; k < n; ++k) {
    hs[k] = a[k] = splat(0.f);
    for (int j = 0; j < lanes; ++j) { hs[k][j] = h[(c0 + j) * n + k]; a[k][j] = A[(c0 + j) * n + k] * LOG2E; }
  }
  const v8 bias = load(dt_bias + c0, lanes), dd = load(D + c0, lanes);
  for (int64_t t = 0; t < L; ++t) {
    const v8 delta = softplus(load(dt + t * sdt + c0, lanes) + bias), uu = load(u + t * su + c0, lanes);
    const v8 x = delta * uu;
    const float *bt = B + t * sbc, *ct = C + t * sbc;
    v8 acc[G];  // G accumulation chains, not one n-deep
    for (int i = 0; i < G; ++i) acc[i] = splat(0.f);
    int64_t k = 0;
    for (; k + G <= n; k += G) update(hs + k, a + k, bt + k, ct + k, delta, x, acc, G);
    for (int64_t r = n % G; r > 0; --r, ++k) update(hs + k, a + k, bt + k, ct + k, delta, x, acc, 1);
    v8 sum = dd * uu;
    for (int i = 0; i < G; ++i) sum += acc[i];
    store(y + t * d + c0, sum * silu(load(z + t * sz + c0, lanes)), lanes);
  }
  for (int64_t k = 0; k < n; ++k)
    for (int j = 0; j < lanes; ++j) h[(c0 + j) * n + k] = hs[k][j];
}

// Selective scan, time-major. u, dt, z: rows of d channels at strides su, sdt, sz; dt is before
// softplus and bias; A, h: (d, n) with h the state in and out; B, C: rows of n at stride sbc; y: (L, d).
// y_t = (C_t . h_t + D u_t) silu(z_t), h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t.
void scan(const float *u, int64_t su, const float *dt, int64_t sdt, const float *dt_bias, const float *A,
          const float *B, const float *C, int64_t sbc, const float *D, const float *z, int64_t sz, float *h,
          float *y, int64_t d, int64_t L, int64_t n) {
  #pragma omp parallel for schedule(static)
  for (int64_t c0 = 0; c0 < d; c0 += 8) {
    if (n == 16)  // Mamba's state size: the inner loop unrolled, its constants folded
      scan_block(u, su, dt, sdt, dt_bias, A, B, C, sbc, D, z, sz, h, y, d, L, 16, c0);
    else
      scan_block(u, su, dt, sdt, dt_bias, A, B, C, sbc, D, z, sz, h, y, d, L, n, c0);
  }
}
