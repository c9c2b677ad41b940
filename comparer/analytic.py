"""Pure arithmetic bounds for decoding and prefill; no GPU, no model, no torch.

Why these numbers matter: at batch 1, decoding one token must read every weight once plus the
whole KV cache (Transformer) or the fixed recurrent state (Mamba) from device memory, so memory
bandwidth, not arithmetic, sets the ceiling (nanochat's ``kv_bytes_per_token`` reasoning).
Prefill instead does 2 FLOPs per layer weight per prompt token plus attention's quadratic term, so
it is compute-bound. The plots draw these bounds next to the measurements.

A bound is what no run can beat, so each counts only what must happen: decode reads one row of an
untied input embedding, not the matrix; a prefill runs the LM head at the last position only (TTFT
samples from it alone); nothing counts the embedding lookup as FLOPs. tests/test_bounds.py checks
every committed record point against its bound.
"""

from __future__ import annotations

import math

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}
MIB = 1024**2
GIB = 1024**3


def dtype_bytes(dtype_name: str) -> int:
    """Bytes per element for a dtype name such as 'float16' or 'torch.bfloat16'."""
    key = str(dtype_name).replace("torch.", "")
    if key not in DTYPE_BYTES:
        raise ValueError(f"Unknown dtype {dtype_name!r}; use one of {sorted(DTYPE_BYTES)}.")
    return DTYPE_BYTES[key]


def weight_bytes(n_params: int, bytes_per_param: int) -> int:
    """Bytes of ``n_params`` parameters at ``bytes_per_param``."""
    return n_params * bytes_per_param


def kv_bytes_per_token(n_layers: int, n_kv_heads: int, head_dim: int, bytes_per_elem: int) -> int:
    """KV-cache bytes one context token adds: a key and a value vector per KV head per layer."""
    return 2 * n_layers * n_kv_heads * head_dim * bytes_per_elem


def ssm_state_bytes(n_layers: int, d_inner: int, d_state: int, d_conv: int, bytes_per_elem: int) -> int:
    """Recurrent state of a Mamba model: per layer, an SSM state (d_inner x d_state) and a conv
    window (d_inner x d_conv). It does not depend on context length."""
    return n_layers * d_inner * (d_state + d_conv) * bytes_per_elem


def cache_bytes(context_tokens: int, kv_per_token: int, state_bytes: int) -> int:
    """What decoding at ``context_tokens`` must hold and read besides the weights."""
    return kv_per_token * context_tokens + state_bytes


def decode_bound_tok_per_s(bandwidth_bytes_per_s: float, weights_b: int, kv_per_token: int,
                           context_tokens: int, state_b: int) -> float:
    """Upper bound on batch-1 decode speed: bandwidth / bytes read per token. ``weights_b``: the weight
    bytes a token must read (an untied input embedding contributes one row, not the matrix)."""
    per_token_b = weights_b + cache_bytes(context_tokens, kv_per_token, state_b)
    return bandwidth_bytes_per_s / per_token_b


def prefill_flops(layer_weight_params: int, context_tokens: int, head_params: int = 0, n_attn_layers: int = 0,
                  attn_width: int = 0) -> float:
    """FLOPs a prefill of ``context_tokens`` must do before its first token: 2 per layer weight
    (every matrix or filter of the repeated blocks, embeddings and head excluded) per token; the LM
    head at the last position only; causal attention's QK^T and AV over the T(T+1)/2 (query, key)
    pairs, 2 * width FLOPs each per product per layer -> 2 * L * width * T(T+1)."""
    dense = 2.0 * layer_weight_params * context_tokens
    attention = 2.0 * n_attn_layers * attn_width * context_tokens * (context_tokens + 1)
    return dense + 2.0 * head_params + attention


def prefill_bound_s(flops: float, flops_per_s: float) -> float:
    """Lower bound on prefill time (TTFT) at a given sustained matrix rate."""
    return flops / flops_per_s


def max_context_that_fits(device_bytes: int, weights_b: int, kv_per_token: int,
                          reserve_bytes: int = 0) -> float:
    """Longest context whose KV cache still fits beside the weights (inf for an SSM)."""
    free_b = device_bytes - weights_b - reserve_bytes
    if free_b <= 0:
        return 0
    if kv_per_token == 0:
        return math.inf
    return free_b // kv_per_token
