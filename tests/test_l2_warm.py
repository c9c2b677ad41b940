"""L2 warming's arithmetic and where it is on (the prefetch itself runs only on a Hopper GPU:
tests/test_gpu_mamba_fast.py checks there that it changes no bit and really compiles in)."""

import importlib.util
import os
import subprocess
import sys

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


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton (requirements-dev.txt)")
@pytest.mark.parametrize("capability", [(9, 0), (12, 0)])
def test_the_warming_state_update_kernel_builds_with_the_prefetch_for_hopper_and_the_space_gpu(capability):
    """The state update with warming on assembles for the H200 (sm_90, where it runs) and for the Space's
    RTX Pro 6000 Blackwell (sm_120, where it stays off until timed there), its PTX holding the prefetch."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel = mamba_decode._ssm_step_kernel
    pointers = {"acc_ptr": "*i64", "dtw_ptr": "*fp16", "dtb_ptr": "*fp32", "a_ptr": "*fp32", "d_ptr": "*fp32",
                "xconv_ptr": "*fp16", "z_ptr": "*fp16", "state_ptr": "*fp32", "y_ptr": "*fp16", "warm_ptr": "*fp16"}
    constants = {"DIM": 5120, "R": 160, "N": 16, "BD": 16, "BR": 256, "WARM": True, "CHUNK": l2_warm.CHUNK_BYTES,
                 "PDL": False}
    signature = {name: pointers.get(name, "i32" if name == "warm_bytes" else "constexpr") for name in kernel.arg_names}
    src = ASTSource(kernel, signature, constants)
    built = triton.compile(src, target=GPUTarget("cuda", capability[0] * 10 + capability[1], 32),
                           options={"num_warps": 4})
    assert "cp.async.bulk.prefetch.L2.global" in built.asm["ptx"]
    assert built.asm["cubin"]


def test_a_weight_on_another_device_is_never_warmed(monkeypatch):
    """A model split over GPUs has its next layer on another device: its address means nothing to this one."""
    monkeypatch.setattr(l2_warm, "supported", lambda t: True)  # as on a Hopper GPU
    here = torch.zeros(64, 1024, dtype=torch.float16)
    elsewhere = torch.empty(64, 1024, dtype=torch.float16, device="meta")
    assert l2_warm.warm_args(elsewhere, 1.0, here)["WARM"] is False
    same = l2_warm.warm_args(here, 1.0, here)
    assert same["WARM"] is True and same["warm_bytes"] == 64 * 1024 * 2 and same["warm_ptr"] is here


def test_a_misspelt_warming_kernel_is_refused():
    with pytest.raises(ValueError, match="'conv'.*'step'"):
        mamba_decode.DecodeSettings(warm_out_proj_from="state")


SHARES = """
import torch
import triton
import triton.language as tl
from comparer.kernels.l2_warm import share

@triton.jit
def record(out_ptr, nbytes, CHUNK: tl.constexpr):
    first, last = share(nbytes, CHUNK)
    pid = tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)
    tl.store(out_ptr + 2 * pid, first)
    tl.store(out_ptr + 2 * pid + 1, last)

for grid, nbytes, chunk in [((96,), 2560 * 768 * 2, 4096), ((1280, 1), 52428800 // 10 // 4096 * 4096, 4096),
                            ((7, 3), 5 * 4096, 4096), ((5, 4), 123 * 1024, 1024)]:
    programs = grid[0] * (grid[1] if len(grid) > 1 else 1)
    out = torch.full((programs, 2), -1, dtype=torch.int64)
    record[grid](out, nbytes, CHUNK=chunk)
    chunks = -(-nbytes // chunk)
    covered = []
    for first, last in out.tolist():
        assert first >= 0 and (last <= first or last <= chunks), (grid, first, last)
        covered += range(first, last)
    assert sorted(covered) == list(range(chunks)), grid  # every chunk once, none past the end
    print("ok", grid)
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton (requirements-dev.txt)")
def test_the_programs_shares_cover_every_chunk_once_and_nothing_past_the_end_under_the_interpreter():
    """The prefetch addresses come from ``share``: over 1-D and 2-D grids, with more programs than chunks
    and a count that does not divide, every chunk belongs to exactly one program and none lies past the end."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", SHARES], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ok ") == 4


def _layer(hidden: int, d_inner: int):
    from types import SimpleNamespace

    meta = {"dtype": torch.float16, "device": "meta"}
    return SimpleNamespace(in_proj=torch.empty(2 * d_inner, hidden, **meta), out_proj=torch.empty(hidden, d_inner, **meta),
                           A=torch.empty(d_inner, 16, **meta), conv_w=torch.empty(d_inner, 4, **meta),
                           x_proj=torch.empty(hidden // 16 + 32, d_inner, **meta),
                           dt_proj=torch.empty(d_inner, hidden // 16, **meta))


def test_the_card_names_warming_by_the_rules_the_launches_use(monkeypatch):
    """``warms`` (the card) answers from the same rules as the launches: on for Mamba-130M's sizes, off for
    Mamba-2.8B's, off where only in_proj would be warmed but out_proj runs through cuBLAS (nothing launches
    the prefetch), and off where the fused kernels do not apply at all."""
    from dataclasses import replace

    monkeypatch.setattr(l2_warm, "supported", lambda t: True)  # as on a Hopper GPU
    state = torch.empty(1, 1536, 16, device="meta")
    small, large = _layer(768, 1536), _layer(2560, 5120)
    settings = mamba_decode.DEFAULT
    assert mamba_decode.warms(small, state, settings)
    assert not mamba_decode.warms(large, torch.empty(1, 5120, 16, device="meta"), settings)
    in_only = replace(settings, warm_out_proj=0.0)
    assert mamba_decode.warms(small, state, in_only)  # the one-wave GEMV of out_proj warms it
    assert not mamba_decode.warms(small, state, replace(in_only, gemv_out_proj=False))  # cuBLAS: nothing does
    odd_state = torch.empty(1, 1536, 12, device="meta")  # a state size the kernels do not take
    small.A = torch.empty(1536, 12, dtype=torch.float16, device="meta")
    assert not mamba_decode.warms(small, odd_state, settings)
