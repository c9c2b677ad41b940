"""L2 warming's arithmetic and where it is on (the prefetch itself runs only on a Hopper GPU:
tests/test_gpu_mamba_fast.py checks there that it changes no bit and really compiles in)."""

import pytest
import torch

from comparer.kernels import l2_warm, mamba_decode


def test_warmed_bytes_are_whole_chunks_inside_the_tensor():
    out_proj_28b = 2560 * 5120 * 2
    assert l2_warm.warm_bytes(out_proj_28b, 1.0, 4096) == out_proj_28b
    assert l2_warm.warm_bytes(out_proj_28b, 0.25, 4096) == out_proj_28b // 4
    assert l2_warm.warm_bytes(10_000, 0.5, 4096) == 4096  # 5,000 bytes: one whole chunk
    assert l2_warm.warm_bytes(10_000, 3.0, 4096) == 8192  # never past the end
    assert l2_warm.warm_bytes(1_000, 1.0, 4096) == 0  # smaller than a chunk: nothing
    assert l2_warm.warm_bytes(out_proj_28b, 0.0, 4096) == 0
    with pytest.raises(ValueError, match="from 0"):
        l2_warm.warm_bytes(out_proj_28b, -0.5, 4096)


def test_nothing_is_warmed_off_a_hopper_gpu():
    weight = torch.zeros(256, 256, dtype=torch.float16)
    args = l2_warm.warm_args(weight, 1.0, weight)
    assert args["WARM"] is False and args["warm_bytes"] == 0


def test_only_weights_up_to_the_size_limit_are_warmed():
    """Mamba-130M's projections (2.4 and 4.7 MB) are warmed by default, Mamba-2.8B's (26 and 52 MB) are not:
    on the H200 warming them only slowed its step (h200-mamba-l2-warm.txt)."""
    settings = mamba_decode.DEFAULT
    small = torch.empty(768, 1536, dtype=torch.float16, device="meta")
    large = torch.empty(2560, 5120, dtype=torch.float16, device="meta")
    assert mamba_decode._warmable(small, settings) is small
    assert mamba_decode._warmable(large, settings) is None
    assert mamba_decode._warmable(None, settings) is None
