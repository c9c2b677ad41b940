import math

import pytest

from comparer import analytic
from comparer.models.arch import ArchShape
from comparer.models.loading import load_bundled_config

MIB = 2**20


def shape(name: str) -> ArchShape:
    return ArchShape.from_config(load_bundled_config(name))


def test_pythia_6_9b_fp16_kv_cache_is_half_a_mib_per_token():
    assert shape("pythia-6.9b").kv_bytes_per_token(2) == 0.5 * MIB  # 2 * 32 layers * 32 heads * 128 * 2 B


def test_llama_3_8b_uses_grouped_kv_heads():
    s = shape("llama-3-8b")
    assert (s.n_kv_heads, s.head_dim) == (8, 128)
    assert s.kv_bytes_per_token(2) == 2 * 32 * 8 * 128 * 2  # 128 KiB


def test_mamba_2_8b_state_is_hand_computed_and_has_no_kv():
    s = shape("mamba-2.8b")
    assert s.kv_bytes_per_token(2) == 0
    assert s.state_bytes(2) == 64 * 5120 * (16 + 4) * 2


def test_kv_bytes_grow_linearly_with_context_while_ssm_state_stays_flat():
    kv, state = shape("pythia-160m").kv_bytes_per_token(2), shape("mamba-130m").state_bytes(2)
    contexts = [512, 2048, 8192, 32768]
    transformer = [analytic.cache_bytes(c, kv, 0) for c in contexts]
    mamba = [analytic.cache_bytes(c, 0, state) for c in contexts]
    assert all(t == kv * c for t, c in zip(transformer, contexts))
    assert transformer[-1] == 64 * transformer[0]
    assert len(set(mamba)) == 1 and mamba[0] == state


def test_decode_bound_matches_hand_computation():
    # 13.7e9 B of weights + 0.5 MiB * 512 tokens at 4.3e12 B/s
    bound = analytic.decode_bound_tok_per_s(4.3e12, 13_700_000_000, MIB // 2, 512, 0)
    assert bound == pytest.approx(4.3e12 / (13.7e9 + 512 * MIB / 2))
    assert 300 < bound < 320


def test_prefill_flops_adds_quadratic_attention_term():
    assert analytic.prefill_flops(1000, 10) == 20_000
    assert analytic.prefill_flops(1000, 10, n_attn_layers=2, attn_width=4) == 20_000 + 2 * 2 * 4 * 10 * 11


def test_max_context_that_fits_and_is_infinite_for_ssm():
    assert analytic.max_context_that_fits(100 * MIB, 50 * MIB, MIB // 2) == 100
    assert math.isinf(analytic.max_context_that_fits(100 * MIB, 50 * MIB, 0))
    assert analytic.max_context_that_fits(10 * MIB, 50 * MIB, MIB) == 0


def test_unknown_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown dtype"):
        analytic.dtype_bytes("float8")
